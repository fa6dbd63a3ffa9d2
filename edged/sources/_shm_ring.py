"""A ring of shared-memory slots that carries frames from an acquisition child
process to the daemon.

Ownership of a slot moves only through pipe messages, never through flags in
shared memory, so every hand-over is ordered by a system call (a full memory
barrier on every architecture) and no lock can be left held by a killed process:

* the child owns the free slots; it copies a frame into one and sends a
  :class:`FrameMeta` naming the slot — the slot now belongs to the daemon;
* the daemon copies the frame out (or drops it) and sends ``release`` back.

The daemon creates the shared memory and unlinks its name as soon as the child
has attached, so nothing is left in ``/dev/shm`` whichever process dies. Which
frames are dropped when the daemon falls behind is the daemon's policy (see
``edged.sources.genicam``); the child blocks when it owns no free slot.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from multiprocessing import shared_memory
from typing import Any

import numpy as np

PAGE = 4096


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
    """The daemon's side: owns the shared memory; copies frames out of slots.

    ``close()`` waits for no one: a copy in progress holds a reference (see
    :meth:`copy_out`), and the memory is released when the last one ends.
    """

    def __init__(self, slots: int, slot_bytes: int) -> None:
        self.slots = slots
        self.slot_bytes = slot_size(slot_bytes)
        self._shm: shared_memory.SharedMemory | None = shared_memory.SharedMemory(
            create=True, size=self.slots * self.slot_bytes
        )
        self.name = self._shm.name
        self._linked = True
        self._users = 0
        self._closing = False
        self._lock = threading.Lock()

    def unlink(self) -> None:
        """Remove the name (the mapping lives on in both processes). Idempotent."""
        if self._linked and self._shm is not None:
            self._linked = False
            self._shm.unlink()

    def copy_out(self, meta: FrameMeta) -> np.ndarray:
        """A new array owning a copy of the frame in ``meta.slot``.

        Safe to run in a worker thread (NumPy releases the GIL for the copy).
        """
        with self._lock:
            if self._shm is None:
                msg = "shared-memory ring already closed"
                raise RuntimeError(msg)
            self._users += 1
            shm = self._shm
        try:
            out = np.empty(meta.shape, dtype=meta.dtype)
            src = np.frombuffer(
                _buf(shm), dtype=np.uint8, count=meta.nbytes, offset=meta.slot * self.slot_bytes
            )
            np.copyto(out.reshape(-1).view(np.uint8), src)
            del src
            return out
        finally:
            with self._lock:
                self._users -= 1
                if self._closing and self._users == 0:
                    self._close_now()

    def close(self) -> None:
        """Unlink and unmap (now, or when the last copy in progress ends)."""
        self.unlink()
        with self._lock:
            self._closing = True
            if self._users == 0:
                self._close_now()

    def _close_now(self) -> None:
        if self._shm is not None:
            self._shm.close()
            self._shm = None


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
