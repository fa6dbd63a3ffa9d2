"""A ring of shared-memory slots that carries frames from an acquisition child
process to the daemon.

Ownership of a slot moves only through pipe messages, never through flags in
shared memory, so every hand-over is ordered by a system call (a full memory
barrier on every architecture) and no lock can be left held by a killed process:

* the child owns the free slots; it copies a frame into one and sends a
  :class:`FrameMeta` naming the slot — the slot now belongs to the daemon;
* the daemon either *leases* the slot (:meth:`Ring.lease`: the frame is a
  read-only view of shared memory, no copy) and sends ``release`` back when the
  last view of it is gone, or copies the frame out (:meth:`Ring.copy_out`) and
  sends ``release`` at once.

The daemon creates the shared memory and unlinks its name as soon as the child
has attached, so nothing is left in ``/dev/shm`` whichever process dies. Its
mapping is an ``mmap`` object that every leased view keeps alive: closing the
ring drops only the ring's own reference, and the memory is unmapped when the
last frame viewing it is gone — never under a frame still in use. Which frames
are dropped when the daemon falls behind, and when it leases rather than copies,
is the daemon's policy (see ``edged.sources.genicam``); the child blocks when it
owns no free slot.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing import shared_memory
from typing import Any

import numpy as np

PAGE = 4096
_SHM_DIR = "/dev/shm"  # where Linux keeps POSIX shared memory (shm_open) by name


@dataclass(frozen=True, slots=True)
class FrameMeta:
    """Everything about a frame in a slot except its pixels (pickled over a pipe)."""

    slot: int
    nbytes: int
    dtype: str
    shape: tuple[int, ...]
    pixel_format: str
    width: int
    height: int
    host_ts_ns: int
    device_ts_ns: int | None = None
    frame_id: int | None = None
    chunks: dict[str, Any] = field(default_factory=dict)


def _buf(shm: shared_memory.SharedMemory) -> memoryview:
    buf = shm.buf
    if buf is None:
        msg = "shared memory already closed"
        raise RuntimeError(msg)
    return buf


def slot_size(nbytes: int) -> int:
    """``nbytes`` rounded up to whole pages."""
    return max(PAGE, -(-nbytes // PAGE) * PAGE)


class Ring:
    """The daemon's side: owns the shared memory; leases or copies frames out of slots.

    Thread-safe for :meth:`lease` and :meth:`copy_out` against :meth:`close`: each
    holds its own reference to the mapping while it uses it.
    """

    def __init__(self, slots: int, slot_bytes: int) -> None:
        self.slots = slots
        self.slot_bytes = slot_size(slot_bytes)
        size = self.slots * self.slot_bytes
        self._shm = shared_memory.SharedMemory(create=True, size=size)
        self.name = self._shm.name
        self._linked = True
        try:
            # Our own mapping of the same memory, so leased views can outlive the
            # ring (SharedMemory.close() refuses while any view of its buffer exists).
            fd = os.open(os.path.join(_SHM_DIR, self.name.lstrip("/")), os.O_RDWR)
            try:
                self._map: mmap.mmap | None = mmap.mmap(fd, size)
            finally:
                os.close(fd)
        except BaseException:
            self.unlink()
            self._shm.close()
            raise
        self._shm.close()

    def unlink(self) -> None:
        """Remove the name (the mapping lives on in both processes). Idempotent."""
        if self._linked:
            self._linked = False
            self._shm.unlink()

    def _mapping(self) -> mmap.mmap:
        mapping = self._map
        if mapping is None:
            msg = "shared-memory ring already closed"
            raise RuntimeError(msg)
        return mapping

    def _slot_bytes(self, meta: FrameMeta) -> np.ndarray:
        if not 0 <= meta.slot < self.slots or not 0 <= meta.nbytes <= self.slot_bytes:
            msg = (
                f"expected slot < {self.slots} and at most {self.slot_bytes} bytes, "
                f"got slot {meta.slot} with {meta.nbytes} bytes"
            )
            raise ValueError(msg)
        return np.frombuffer(
            self._mapping(), dtype=np.uint8, count=meta.nbytes, offset=meta.slot * self.slot_bytes
        )

    def lease(self, meta: FrameMeta, on_release: Callable[[int], None]) -> np.ndarray:
        """The frame in ``meta.slot`` as a read-only array over shared memory (no copy).

        The slot stays the daemon's while any array derived from the returned one
        exists; when the last is gone, ``on_release(meta.slot)`` runs — in whichever
        thread dropped that last reference, so it must be thread-safe and quick.
        """
        root = self._slot_bytes(meta)
        done = weakref.finalize(root, on_release, meta.slot)
        done.atexit = False
        view = root.view(meta.dtype).reshape(meta.shape)
        view.flags.writeable = False
        return view

    def copy_out(self, meta: FrameMeta) -> np.ndarray:
        """A new array owning a copy of the frame in ``meta.slot``.

        Safe to run in a worker thread (NumPy releases the GIL for the copy).
        """
        src = self._slot_bytes(meta)
        out = np.empty(meta.shape, dtype=meta.dtype)
        np.copyto(out.reshape(-1).view(np.uint8), src)
        return out

    def close(self) -> None:
        """Unlink, and drop the ring's reference to the mapping: it is unmapped now,
        or when the last leased frame still viewing it is gone."""
        self.unlink()
        self._map = None


class RingWriter:
    """The child's side: attaches to the ring, hands out free slots, writes frames.

    ``acquire()`` waits (up to a timeout) for a slot the daemon released;
    ``release()`` is called by the command thread when a ``release`` arrives.
    """

    def __init__(self, name: str, slots: int, slot_bytes: int) -> None:
        self._shm = shared_memory.SharedMemory(name=name, create=False)
        self.slots = slots
        self.slot_bytes = slot_bytes
        self._free = list(range(slots))
        self._cond = threading.Condition()

    def acquire(self, timeout_s: float) -> int | None:
        """A free slot, or None when none was released within ``timeout_s``."""
        with self._cond:
            if not self._free:
                self._cond.wait(timeout_s)
            return self._free.pop(0) if self._free else None

    def release(self, slot: int) -> None:
        with self._cond:
            if 0 <= slot < self.slots and slot not in self._free:
                self._free.append(slot)
                self._cond.notify()

    def give_back(self, slot: int) -> None:
        """Return a slot that was acquired but not used."""
        self.release(slot)

    @property
    def free(self) -> int:
        with self._cond:
            return len(self._free)

    def write(self, slot: int, data: np.ndarray) -> int:
        """Copy ``data`` (any contiguous array) into ``slot``; return its byte count.

        Raises ValueError when the frame does not fit a slot.
        """
        src = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        if src.size > self.slot_bytes:
            msg = f"frame of {src.size} bytes does not fit a ring slot of {self.slot_bytes} bytes"
            raise ValueError(msg)
        dst = np.frombuffer(
            _buf(self._shm), dtype=np.uint8, count=src.size, offset=slot * self.slot_bytes
        )
        np.copyto(dst, src)
        del dst
        return int(src.size)

    def close(self) -> None:
        with contextlib.suppress(BufferError):  # a view alive at exit: the OS unmaps it
            self._shm.close()
