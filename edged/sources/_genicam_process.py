"""The daemon's handle on one acquisition child process.

Everything here runs on the event loop and never blocks it: the child's event
pipe and its process sentinel are watched with ``loop.add_reader``; commands go
out through a non-blocking pipe (a child too stuck to read them is killed by the
watchdog rather than stalling the daemon). Starting the process (which forks and
pickles its arguments) runs in one long-lived spawner thread (see ``_spawner``).
Events and commands are the dataclasses of ``_genicam_messages``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

from edged.sources._genicam_messages import (
    Command,
    Fatal,
    FaultHook,
    Opened,
    Release,
    Started,
    StateReport,
    Stop,
    TriggerDone,
    UseRing,
)
from edged.sources._shm_ring import FrameMeta, Ring

log = logging.getLogger(__name__)

_SPAWNER: ThreadPoolExecutor | None = None
_SPAWNER_LOCK = threading.Lock()


def _spawner() -> ThreadPoolExecutor:
    """The one long-lived thread that starts acquisition processes.

    The child asks Linux to kill it when its parent dies (``PR_SET_PDEATHSIG``),
    and Linux means the parent *thread*: a short-lived thread would take its
    children with it. This thread lives as long as the daemon.
    """
    global _SPAWNER
    with _SPAWNER_LOCK:
        if _SPAWNER is None:
            _SPAWNER = ThreadPoolExecutor(1, thread_name_prefix="edged-spawner")
        return _SPAWNER


def _child_entry(
    camera: str,
    cfg: dict[str, Any],
    events: Connection,
    commands: Connection,
    faults: FaultHook | None,
) -> None:
    """Spawn target; imports harvesters only in the child."""
    from edged.sources._genicam_child import main

    main(camera, cfg, events, commands, faults)


class ChildHandle:
    """One spawned acquisition process, its pipes and its ring.

    ``on_frame(handle, meta)``, ``on_state(handle, state)``, ``on_trigger(token,
    error)`` and ``on_exit(handle)`` are called on the event loop. ``faults`` is
    the test-only hook handed to the child (None in production).
    """

    def __init__(
        self,
        camera: str,
        cfg: dict[str, Any],
        *,
        on_frame: Callable[[ChildHandle, FrameMeta], None],
        on_state: Callable[[ChildHandle, StateReport], None],
        on_trigger: Callable[[int, str | None], None],
        on_exit: Callable[[ChildHandle], None],
        faults: FaultHook | None = None,
    ) -> None:
        self.camera = camera
        self._cfg = cfg
        self._faults = faults
        self._on_frame = on_frame
        self._on_state = on_state
        self._on_trigger = on_trigger
        self._on_exit = on_exit
        self._loop = asyncio.get_running_loop()
        self.ring: Ring | None = None
        self.process: Any = None
        self.opened: asyncio.Future[Opened] = self._loop.create_future()
        self.started: asyncio.Future[None] = self._loop.create_future()
        self.exited: asyncio.Future[int] = self._loop.create_future()
        self.fatal: Fatal | None = None
        self.last_message = time.monotonic()
        self.state = StateReport()
        self.leased = 0  # ring slots the daemon holds as leased frames (loop-owned)
        self._events: Connection | None = None
        self._commands: Connection | None = None
        self._readers: list[int] = []

    # ------------------------------------------------------------------ start

    async def spawn(self) -> None:
        ctx = mp.get_context("spawn")
        events_r, events_w = ctx.Pipe(duplex=False)
        commands_r, commands_w = ctx.Pipe(duplex=False)
        self.process = ctx.Process(
            target=_child_entry,
            args=(self.camera, self._cfg, events_w, commands_r, self._faults),
            name=f"edged-genicam-{self.camera}",
            daemon=True,
        )
        try:
            await self._loop.run_in_executor(_spawner(), self.process.start)
        finally:
            events_w.close()
            commands_r.close()
        self._events = events_r
        self._commands = commands_w
        os.set_blocking(commands_w.fileno(), False)
        self.last_message = time.monotonic()
        self._watch(events_r.fileno(), self._read_events)
        self._watch(self.process.sentinel, self._process_ended)

    async def handshake(self, slots: int, min_slot_bytes: int, timeout_s: float) -> Opened:
        """Wait for the device to open, create the ring, wait for streaming.

        Raises ChildFailed with the child's message on any failure.
        """
        info: Opened = await self._wait(self.opened, timeout_s, "open the camera")
        slot_bytes = max(info.slot_bytes, min_slot_bytes)
        self.ring = Ring(slots, slot_bytes)
        self.send(UseRing(self.ring.name, self.ring.slots, self.ring.slot_bytes))
        await self._wait(self.started, timeout_s, "start streaming")
        self.ring.unlink()  # the child has attached: no name left behind in /dev/shm
        return info

    async def _wait(self, fut: asyncio.Future[Any], timeout_s: float, what: str) -> Any:
        done, _ = await asyncio.wait(
            {fut, self.exited}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        if fut in done:
            return fut.result()
        if self.fatal is not None:
            raise ChildFailed(self.fatal.kind, self.fatal.message)
        if self.exited.done():
            code = self.exited.result()
            raise ChildFailed(
                "exit",
                f"acquisition process exited ({describe_exit(code)}) before it could {what}",
            )
        raise ChildFailed("timeout", f"acquisition process did not {what} within {timeout_s:g} s")

    # ------------------------------------------------------------------ events

    def _watch(self, fd: int, callback: Callable[[], None]) -> None:
        self._loop.add_reader(fd, callback)
        self._readers.append(fd)

    def _unwatch(self, fd: int) -> None:
        if fd in self._readers:
            self._readers.remove(fd)
            self._loop.remove_reader(fd)

    def _read_events(self) -> None:
        conn = self._events
        if conn is None:
            return
        try:
            while conn.poll():
                self._dispatch(conn.recv())
        except (EOFError, OSError):
            self._unwatch(conn.fileno())

    def _dispatch(self, msg: object) -> None:
        """One event from the child; any event is a sign of life."""
        self.last_message = time.monotonic()
        match msg:
            case FrameMeta():
                self._on_frame(self, msg)
            case StateReport():
                self.state = msg
                self._on_state(self, msg)
            case TriggerDone(token=token, error=error):
                self._on_trigger(token, error)
            case Opened():
                if not self.opened.done():
                    self.opened.set_result(msg)
            case Started():
                if not self.started.done():
                    self.started.set_result(None)
            case Fatal():
                self.fatal = msg
            case _:  # not an event: the daemon and the child always ship together
                log.warning("camera %s: ignored an unknown event %r", self.camera, msg)

    def _process_ended(self) -> None:
        code = self.process.exitcode if self.process is not None else None
        if code is None:
            self.process.join(0)
            code = self.process.exitcode
        if code is None:  # closed its sentinel but not reaped yet: look again shortly
            self._loop.call_later(0.01, self._process_ended)
            return
        self._unwatch(self.process.sentinel)
        self._read_events()  # whatever it said last (fatal reasons)
        if not self.exited.done():
            self.exited.set_result(code)
            self._on_exit(self)

    # ------------------------------------------------------------------ commands

    def send(self, msg: Command) -> bool:
        """Send a command; False when the child cannot take it (gone or stuck)."""
        if self._commands is None or self.exited.done():
            return False
        try:
            self._commands.send(msg)
        except (BlockingIOError, BrokenPipeError, OSError, ValueError):
            return False
        return True

    def release(self, slot: int) -> None:
        self.send(Release(slot))

    @property
    def alive(self) -> bool:
        return self.process is not None and not self.exited.done()

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def kill(self) -> None:
        if self.alive and self.process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)

    async def stop(self, timeout_s: float = 3.0) -> None:
        """Ask the child to stop; kill it after ``timeout_s``; release everything."""
        if self.alive:
            self.send(Stop())
            try:
                await asyncio.wait_for(asyncio.shield(self.exited), timeout_s)
            except TimeoutError:
                self.kill()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self.exited), timeout_s)
        self.close()

    def close(self) -> None:
        for fd in list(self._readers):
            self._unwatch(fd)
        for conn in (self._events, self._commands):
            if conn is not None:
                conn.close()
        self._events = self._commands = None


class ChildFailed(Exception):
    """The child could not open or start the camera. ``kind``: a :class:`Fatal`
    kind, or ``exit`` / ``timeout`` when the child said nothing."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
