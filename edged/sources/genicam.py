"""GenICam cameras (GigE Vision, USB3 Vision, any GenTL producer) through harvesters.

Each camera is acquired by its own child process (``multiprocessing``, spawn
context), which hands frames to the daemon through a small ring of shared-memory
slots. Why a process, and why one per camera rather than one per ``.cti``:

* harvesters holds the GIL in its native waits: a thread in ``fetch()`` costs the
  asyncio loop milliseconds of lag. In a child it costs nothing.
* ``Harvester.update()`` destroys every acquirer of its Harvester, and a second
  Harvester on the same ``.cti`` in one process sees no devices. With one camera
  per process, reopening a lost camera (which needs ``update()``) cannot disturb
  the others, and each process has exactly one Harvester.
* Some producers only recover from a real unplug in a fresh process, and
  create/destroy cycles leak native memory: killing and restarting one camera's
  process fixes both without touching the other cameras or the daemon.
* The cost is one interpreter per camera (~110 MB RSS with viky's driver buffers,
  0.5-1 s to start), which an edge PC running a handful of cameras affords.

Settings: ``genicam.features`` are written while the camera is stopped, in a safe
order (pixel format and binning, then the ROI, then triggers, then the rest), each
checked against the device's range/entries and read back; ``trigger`` sets the
FrameStart trigger (``software`` -> ``TriggerSource=Software``); a free-running
camera's ``AcquisitionFrameRate`` is the line's ``fps`` unless features set it.

Back-pressure (``CameraConfig.on_full``): with ``drop_oldest`` the daemon keeps at
most ``ring_slots - 1`` undelivered frames and drops (counts) the oldest when a
new one arrives; the driver itself should run ``NewestOnly``. With ``block`` no
frame is dropped here: when the daemon holds every slot the child stops fetching
and frames wait in the driver's buffers (``num_buffers``, ``OldestFirst``) —
for triggered lines where every part matters.

Hand-over: a frame reaches the daemon as a read-only view of its ring slot (no
copy; the child's one copy out of the driver's buffer is the only one), and the
slot goes back to the child when the pipeline drops the last view of it. So that
a pipeline holding many frames (a deep queue, teaching) cannot starve the child,
the daemon leases only while the child keeps at least one free slot, and copies
the frame out and returns the slot at once otherwise (``details()`` counts both).

Faults are retried in two layers, each with a :class:`~edged.core.backoff.Backoff`
from ``backoff_min_s`` doubling to ``backoff_max_s`` (no jitter):

1. in the camera's process (``_genicam_child``): ``max_consecutive_timeouts``
   timeouts or GenTL errors in a row reopen the camera by serial, up to
   ``reconnect_attempts`` times; then the process exits;
2. here (:meth:`GenicamSource._supervise`): a process that exited, or showed no
   sign of life for ``watchdog_s`` (killed), is replaced by a fresh one, for as
   long as the source runs; the backoff resets after 30 s of streaming.

``read()`` raises only for what neither layer can fix — a config the camera
refuses (``state().last_error`` names every refusal) or a bug in layer 2 — and
``start()`` raises when the first open fails, before any layer runs. Only then
does the daemon's supervisor restart the line's acquire task (with
``pipeline.restart_backoff_*``), so no fault meets more than two retry layers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from edged.config import CameraConfig, GenicamConfig
from edged.core.backoff import Backoff
from edged.core.errors import ConfigError, SourceError
from edged.core.frames import Frame
from edged.sources._genicam_messages import FaultHook, StateReport, Trigger
from edged.sources._genicam_process import ChildFailed, ChildHandle, describe_exit
from edged.sources._shm_ring import FrameMeta, Ring
from edged.sources.base import FrameSource, SourceState

log = logging.getLogger(__name__)

_INLINE_COPY_BYTES = 256 * 1024  # smaller frames are copied on the loop (cheaper than a hop)
_FPS_WINDOW_S = 2.0
_EXIT_CONFIG = 4  # _genicam_child.EXIT_CONFIG (not imported: keeps harvesters out)
_STABLE_S = 30.0  # a child that ran this long resets the restart backoff


class GenicamSource(FrameSource):
    """One GenICam camera, acquired in its own process. See the module docstring.

    ``faults`` is a test-only hook passed to every acquisition process (see
    ``_genicam_messages.FaultHook``); production builds the source without one.
    """

    def __init__(self, camera: str, cfg: CameraConfig, *, faults: FaultHook | None = None) -> None:
        super().__init__(camera)
        self._faults = faults
        if cfg.genicam is None:
            msg = f"camera {camera!r}: expected a 'genicam' section, got none"
            raise ConfigError(msg)
        self._cfg = cfg
        self._gcfg: GenicamConfig = cfg.genicam
        slots = self._gcfg.ring_slots
        self._capacity = slots - 1 if cfg.on_full == "drop_oldest" else slots
        self._child: ChildHandle | None = None
        self._ready: deque[tuple[ChildHandle, Ring, FrameMeta]] = deque()
        self._retired: list[Ring] = []
        self._wake = asyncio.Event()
        self._running = False
        self._fatal: str | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._copier: ThreadPoolExecutor | None = None
        self._triggers: dict[int, asyncio.Future[str | None]] = {}
        self._tokens = itertools.count(1)
        self._min_slot_bytes = 0
        self._seq = 0
        self._received = 0
        self._delivered = 0
        self._dropped = 0
        self._leased = 0  # frames handed over as views of their ring slot
        self._copied = 0  # frames copied out because the child was short of slots
        self._restarts = 0
        self._past_reconnects = 0  # reconnects counted by children that have exited
        self._past_skipped = 0
        self._arrivals: deque[float] = deque()
        self._last_error: str | None = None
        self._device = ""
        self._features: dict[str, Any] = {}

    # ------------------------------------------------------------------ lifecycle

    @property
    def triggerable(self) -> bool:
        return self._gcfg.trigger == "software"

    async def start(self) -> None:
        """Spawn the acquisition process, open and configure the camera, stream.

        Raises ConfigError when the camera refuses a setting (each named with what
        it allows) and SourceError when it cannot be found or opened.
        """
        if self._running:
            return
        self._fatal = None
        self._copier = ThreadPoolExecutor(1, thread_name_prefix=f"edged-copy-{self.camera}")
        try:
            await self._spawn()
        except ChildFailed as exc:
            self._last_error = str(exc)
            self._shutdown_copier()
            if exc.kind == "config":
                raise ConfigError(str(exc)) from exc
            text = str(exc)
            if not text.startswith("camera "):
                text = f"camera {self.camera!r}: {text}"
            raise SourceError(text) from exc
        self._running = True
        self._supervisor = asyncio.create_task(
            self._supervise(), name=f"genicam-supervisor-{self.camera}"
        )
        self._supervisor.add_done_callback(self._supervisor_done)

    def _supervisor_done(self, task: asyncio.Task[None]) -> None:
        """A supervisor that crashed must not leave a source that silently stalls:
        read() raises, and the camera line restarts the source."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        log.error("camera %s: supervisor failed", self.camera, exc_info=exc)
        self._fatal = f"supervisor failed: {type(exc).__name__}: {exc}"
        self._wake.set()

    async def stop(self) -> None:
        self._running = False
        task, self._supervisor = self._supervisor, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        child, self._child = self._child, None
        if child is not None:
            await child.stop()
            self._retire(child)
        self._ready.clear()
        self._collect_rings(force=True)
        for fut in self._triggers.values():
            if not fut.done():
                fut.set_result("source stopped")
        self._triggers.clear()
        self._shutdown_copier()
        self._wake.set()

    def _shutdown_copier(self) -> None:
        copier, self._copier = self._copier, None
        if copier is not None:
            copier.shutdown(wait=False)

    async def _spawn(self) -> None:
        child = ChildHandle(
            self.camera,
            {"genicam": self._gcfg.model_dump(mode="json"), "fps": self._cfg.fps},
            on_frame=self._on_frame,
            on_state=self._on_state,
            on_trigger=self._on_trigger,
            on_exit=self._on_exit,
            faults=self._faults,
        )
        self._child = child
        try:
            await child.spawn()
            info = await child.handshake(
                self._gcfg.ring_slots, self._min_slot_bytes, self._gcfg.start_timeout_s
            )
        except BaseException:
            self._child = None
            await child.stop(timeout_s=1.0)
            self._retire(child)
            raise
        self._device = info.device
        self._features = dict(info.features)
        log.info("camera %s: streaming from %s (pid %s)", self.camera, self._device, child.pid)

    async def _supervise(self) -> None:
        """Retry layer 2: a fresh process when the child exits or stalls, with backoff.

        Never gives up while the source runs (a refused config ends it: retrying
        cannot help), so the daemon's supervisor does not retry these faults again.
        """
        backoff = Backoff(self._gcfg.backoff_min_s, self._gcfg.backoff_max_s)
        while self._running:
            child = self._child
            if child is not None and child.alive:
                started = time.monotonic()
                while child.alive and self._running:
                    await asyncio.wait({child.exited}, timeout=1.0)
                    silent = time.monotonic() - child.last_message
                    if child.alive and silent > self._gcfg.watchdog_s:
                        self._last_error = f"acquisition process silent for {silent:.1f} s: killed"
                        log.warning("camera %s: %s", self.camera, self._last_error)
                        child.kill()
                if time.monotonic() - started > _STABLE_S:
                    backoff.reset()
                if not self._running:
                    return
                self._note_exit(child)
                await child.stop(timeout_s=1.0)
                self._retire(child)
                self._child = None
                if self._fatal is not None:
                    self._wake.set()
                    return
            await asyncio.sleep(backoff.next_delay_s())
            if not self._running:
                return
            self._restarts += 1
            try:
                await self._spawn()
            except (ChildFailed, OSError) as exc:  # OSError: no process or no shared memory
                self._last_error = f"restart {self._restarts}: {exc}"
                log.warning("camera %s: %s", self.camera, self._last_error)
                if isinstance(exc, ChildFailed) and exc.kind == "config":
                    self._fatal = str(exc)
                    self._wake.set()
                    return

    def _note_exit(self, child: ChildHandle) -> None:
        code = child.exited.result() if child.exited.done() else -9
        fatal = child.fatal
        reason = fatal.message if fatal is not None else None
        if fatal is not None and fatal.kind == "resize":
            self._min_slot_bytes = max(self._min_slot_bytes, fatal.slot_bytes)
        if code == _EXIT_CONFIG and reason:
            self._fatal = reason
        suffix = f": {reason}" if reason else ""
        self._last_error = f"acquisition process exited ({describe_exit(code)}){suffix}"
        log.warning("camera %s: %s", self.camera, self._last_error)

    # ------------------------------------------------------------------ frames

    def _on_frame(self, child: ChildHandle, meta: FrameMeta) -> None:
        ring = child.ring
        if ring is None or child is not self._child:
            child.release(meta.slot)
            return
        self._received += 1
        now = time.monotonic()
        self._arrivals.append(now)
        while self._arrivals and now - self._arrivals[0] > _FPS_WINDOW_S:
            self._arrivals.popleft()
        self._ready.append((child, ring, meta))
        while len(self._ready) > self._capacity:
            old_child, _, old = self._ready.popleft()
            self._dropped += 1
            old_child.release(old.slot)
        self._wake.set()

    async def read(self) -> Frame:
        """The next frame (waits). Raises SourceError when the source has stopped or
        the camera's config was refused on a restart."""
        while True:
            if self._ready:
                return await self._take(*self._ready.popleft())
            if self._fatal is not None:
                raise SourceError(f"camera {self.camera!r}: {self._fatal}")
            if not self._running:
                msg = f"camera {self.camera!r}: expected a started source, got a stopped one"
                raise SourceError(msg)
            self._wake.clear()
            await self._wake.wait()

    async def _take(self, child: ChildHandle, ring: Ring, meta: FrameMeta) -> Frame:
        """Lease the slot (no copy) while the child keeps a free slot; else copy out."""
        held = child.leased + len(self._ready) + 1  # slots the daemon holds with this one
        try:
            if held < ring.slots:
                ended = functools.partial(
                    _lease_ended, asyncio.get_running_loop(), threading.get_ident(), self, child
                )
                data = ring.lease(meta, ended)
                child.leased += 1
                self._leased += 1
            else:
                data = await self._copy_out(ring, meta)
                child.release(meta.slot)
                self._copied += 1
        except BaseException:
            child.release(meta.slot)
            raise
        finally:
            self._collect_rings()
        frame = _frame(data, meta, self.camera, self._seq)
        self._seq += 1
        self._delivered += 1
        return frame

    async def _copy_out(self, ring: Ring, meta: FrameMeta) -> np.ndarray:
        if meta.nbytes <= _INLINE_COPY_BYTES or self._copier is None:
            return ring.copy_out(meta)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._copier, ring.copy_out, meta)

    def _lease_returned(self, child: ChildHandle, slot: int) -> None:
        """On the loop: the last view of a leased frame is gone; the slot goes back."""
        child.leased -= 1
        child.release(slot)

    # ------------------------------------------------------------------ rings

    def _retire(self, child: ChildHandle) -> None:
        self._past_reconnects += child.state.reconnects
        self._past_skipped += child.state.skipped
        child.state = StateReport()
        if child.ring is not None:
            self._retired.append(child.ring)
        self._collect_rings()

    def _collect_rings(self, *, force: bool = False) -> None:
        """Close retired rings no undelivered frame points into any more."""
        in_use = {id(ring) for _, ring, _ in self._ready}
        keep = []
        for ring in self._retired:
            if force or id(ring) not in in_use:
                ring.close()
            else:
                keep.append(ring)
        self._retired = keep

    # ------------------------------------------------------------------ state

    def _on_state(self, child: ChildHandle, state: StateReport) -> None:
        if state.last_error:
            self._last_error = state.last_error
        if state.device:
            self._device = state.device

    def state(self) -> SourceState:
        child = self._child
        child_state = child.state if child is not None else StateReport()
        connected = self._running and child is not None and child.alive and child_state.connected
        return SourceState(
            connected=connected,
            frames=self._delivered,
            fps=self._fps(),
            reconnects=self._past_reconnects + child_state.reconnects + self._restarts,
            dropped=self._dropped + self._past_skipped + child_state.skipped,
            last_error=self._fatal or self._last_error,
            device=self._device,
        )

    def details(self) -> dict[str, Any]:
        """Counters behind :meth:`state`, for the admin API and debugging."""
        child = self._child
        child_state = child.state if child is not None else StateReport()
        return {
            "pid": child.pid if child is not None else None,
            "received": self._received,
            "delivered": self._delivered,
            "dropped_queue_full": self._dropped,
            "frames_leased": self._leased,
            "frames_copied": self._copied,
            "slots_leased_now": child.leased if child is not None else 0,
            "skipped_by_driver": self._past_skipped + child_state.skipped,
            "timeouts": child_state.timeouts,
            "gentl_errors": child_state.errors,
            "process_restarts": self._restarts,
            "features": self._features,
        }

    def _fps(self) -> float:
        arrivals = self._arrivals
        if not self._running or len(arrivals) < 2:
            return 0.0
        if time.monotonic() - arrivals[-1] > _FPS_WINDOW_S:
            return 0.0
        span = arrivals[-1] - arrivals[0]
        return (len(arrivals) - 1) / span if span > 0 else 0.0

    # ------------------------------------------------------------------ trigger

    async def trigger(self) -> None:
        """Fire ``TriggerSoftware``; raises SourceError when the camera refuses."""
        if not self.triggerable:
            await super().trigger()
        child = self._child
        token = next(self._tokens)
        fut: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._triggers[token] = fut
        try:
            if child is None or not child.send(Trigger(token)):
                msg = f"camera {self.camera!r}: expected a connected camera, got none"
                raise SourceError(msg)
            try:
                error = await asyncio.wait_for(fut, self._gcfg.timeout_s)
            except TimeoutError as exc:
                msg = (
                    f"camera {self.camera!r}: software trigger not confirmed within "
                    f"{self._gcfg.timeout_s:g} s"
                )
                raise SourceError(msg) from exc
        finally:
            self._triggers.pop(token, None)
        if error is not None:
            raise SourceError(f"camera {self.camera!r}: {error}")

    def _on_trigger(self, token: int, error: str | None) -> None:
        fut = self._triggers.get(token)
        if fut is not None and not fut.done():
            fut.set_result(error)

    def _on_exit(self, child: ChildHandle) -> None:
        self._wake.set()

    @property
    def pid(self) -> int | None:
        """The acquisition process id (None when stopped)."""
        return self._child.pid if self._child is not None else None


def _lease_ended(
    loop: asyncio.AbstractEventLoop,
    loop_thread: int,
    source: GenicamSource,
    child: ChildHandle,
    slot: int,
) -> None:
    """A leased frame's finalizer (any thread, at any point of its code): hand the
    slot back from a fresh loop callback, never from inside the finalizer."""
    with contextlib.suppress(RuntimeError):  # the loop has closed: the child is gone too
        if threading.get_ident() == loop_thread:
            loop.call_soon(source._lease_returned, child, slot)  # no self-pipe wake-up
        else:
            loop.call_soon_threadsafe(source._lease_returned, child, slot)


def _frame(data: np.ndarray, meta: FrameMeta, camera: str, seq: int) -> Frame:
    return Frame(
        data=data,
        pixel_format=meta.pixel_format,
        width=meta.width,
        height=meta.height,
        camera=camera,
        seq=seq,
        host_ts_ns=meta.host_ts_ns,
        device_ts_ns=meta.device_ts_ns,
        frame_id=meta.frame_id,
        chunks=dict(meta.chunks),
    )
