"""The acquisition child process for one GenICam camera.

Started by :class:`edged.sources.genicam.GenicamSource` with the ``spawn`` context.
It owns the process's only Harvester and ImageAcquirer, applies the config's
features while the device is stopped, and copies each frame (inside the buffer's
``with`` block — the driver reuses the memory afterwards) into a slot of the
shared-memory ring.

Retry layer 1 of 2 (layer 2 is the daemon's fresh process, see
``edged.sources.genicam``): after ``max_consecutive_timeouts`` consecutive
timeouts or GenTL errors the camera is reopened by serial inside this process,
up to ``reconnect_attempts`` times with a :class:`~edged.core.backoff.Backoff`
(``backoff_min_s`` doubling to ``backoff_max_s``, no jitter). When every attempt
fails the process exits with :data:`EXIT_GAVE_UP` and the daemon starts a fresh
one (some producers only recover that way).

Messages: events go to the daemon on the ``events`` pipe, commands come on the
``commands`` pipe; both are the frozen dataclasses of ``_genicam_messages``.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from edged.config import GenicamConfig
from edged.core.backoff import Backoff
from edged.core.errors import InputError
from edged.imaging.pixfmt import pixel_format
from edged.sources import _gentl
from edged.sources._genicam_features import FeatureReport, Value, apply_features, ordered
from edged.sources._genicam_messages import (
    Event,
    Fatal,
    FatalKind,
    FaultHook,
    Opened,
    Release,
    Started,
    StateReport,
    Stop,
    Trigger,
    TriggerDone,
    UseRing,
)
from edged.sources._shm_ring import FrameMeta, RingWriter

EXIT_OK = 0
EXIT_DEVICE = 3  # the device could not be found or opened
EXIT_CONFIG = 4  # the config was refused: restarting will not help
EXIT_GAVE_UP = 5  # in-process recovery failed: a fresh process may help

HEARTBEAT_S = 0.5
FETCH_SLICE_S = 0.1


class _Fatal(Exception):
    def __init__(self, kind: FatalKind, message: str, code: int, slot_bytes: int = 0) -> None:
        super().__init__(message)
        self.kind: FatalKind = kind
        self.code = code
        self.slot_bytes = slot_bytes


class _Link:
    """The events pipe, shared by the acquisition and command threads."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def send(self, msg: Event) -> None:
        with self._lock, contextlib.suppress(OSError):
            self._conn.send(msg)


class Acquisition:
    """One camera's acquisition loop (the child's main thread).

    ``faults`` is the test-only :class:`FaultHook` (None in production), polled
    once per pass of the loop.
    """

    def __init__(
        self,
        camera: str,
        cfg: GenicamConfig,
        link: _Link,
        *,
        fps: float | None = None,
        faults: FaultHook | None = None,
    ) -> None:
        self.camera = camera
        self.cfg = cfg
        self.fps = fps
        self.link = link
        self.stop_event = threading.Event()
        self.ring_event = threading.Event()
        self.ring_args: UseRing | None = None
        self.ring: RingWriter | None = None
        self._faults = faults
        self._node_lock = threading.Lock()
        self._harvester: Any = None
        self._ia: Any = None
        self._cti = ""
        self.serial = ""
        self.device = ""
        self.connected = False
        self.frames = 0
        self.timeouts = 0
        self.errors = 0
        self.reconnects = 0
        self.skipped = 0
        self.last_error: str | None = None
        self._last_frame_id: int | None = None
        self._free_running = cfg.trigger == "off"

    # ------------------------------------------------------------------ lifecycle

    def run(self) -> int:
        try:
            report = self._open(self.cfg.serial, self.cfg.user_name, self.cfg.model, self.cfg.index)
            slot_bytes = self._slot_bytes()
            self.link.send(Opened(self.device, self.serial, slot_bytes, report.to_dict()))
            if not self._wait_for_ring():
                return EXIT_OK
            args = self.ring_args
            assert args is not None
            self.ring = RingWriter(args.name, args.slots, args.slot_bytes)
            self._ia.start()
            self.connected = True
            self._send_state()
            self.link.send(Started())
            self._loop()
            return EXIT_OK
        except _Fatal as exc:
            self.last_error = str(exc)
            self.link.send(Fatal(exc.kind, str(exc), exc.slot_bytes))
            return exc.code
        except Exception as exc:  # the producer failed in a way we did not foresee
            msg = f"camera {self.camera!r}: {type(exc).__name__}: {exc}"
            self.last_error = msg
            self.link.send(Fatal("device", msg))
            return EXIT_DEVICE
        finally:
            self._close()

    def _wait_for_ring(self) -> bool:
        deadline = time.monotonic() + 60.0
        while not self.ring_event.wait(0.1):
            if self.stop_event.is_set() or time.monotonic() > deadline:
                return False
        return not self.stop_event.is_set()

    def _close(self) -> None:
        self.connected = False
        self._destroy_acquirer()
        if self._harvester is not None:
            with contextlib.suppress(Exception):
                self._harvester.reset()
        if self.ring is not None:
            self.ring.close()

    # ------------------------------------------------------------------ opening

    def _open(
        self, serial: str | None, user_name: str | None, model: str | None, index: int
    ) -> FeatureReport:
        """Load the producers, select and open the device, apply the config."""
        from harvesters.core import Harvester

        if self._harvester is None:
            try:
                ctis = _gentl.resolve_cti([str(p) for p in self.cfg.cti])
            except _gentl.SelectionError as exc:
                raise _Fatal("config", str(exc), EXIT_CONFIG) from exc
            self._harvester = Harvester()
            for path in ctis:
                self._harvester.add_file(str(path))
            self._cti = ", ".join(str(p) for p in ctis)
        # update() destroys every acquirer of this Harvester: this process has one.
        self._harvester.update()
        infos = list(self._harvester.device_info_list)
        devices = [_gentl.describe(i) for i in infos]
        try:
            chosen = _gentl.select(
                devices, serial=serial, user_name=user_name, model=model, index=index
            )
        except _gentl.SelectionError as exc:
            raise _Fatal("device", f"camera {self.camera!r}: {exc}", EXIT_DEVICE) from exc
        self._ia = self._create_acquirer(infos[chosen])
        self.serial = devices[chosen].serial
        self.device = devices[chosen].label()
        report = self._configure()
        if report.refused:
            reasons = "; ".join(str(r) for r in report.refused)
            msg = f"camera {self.camera!r} ({self.device}) refused settings: {reasons}"
            raise _Fatal("config", msg, EXIT_CONFIG)
        return report

    def _create_acquirer(self, info: Any) -> Any:
        """Create the ImageAcquirer off the main thread (harvesters #463 would
        otherwise replace the SIGINT handler)."""
        result: dict[str, Any] = {}

        def create() -> None:
            try:
                result["ia"] = self._harvester.create(info)
            except Exception as exc:  # GenTL access denied, device busy ...
                result["error"] = exc

        thread = threading.Thread(target=create, name=f"edged-open-{self.camera}")
        thread.start()
        thread.join()
        if "error" in result:
            exc = result["error"]
            msg = f"camera {self.camera!r}: cannot open {_gentl.describe(info).label()}: {exc}"
            raise _Fatal("device", msg, EXIT_DEVICE)
        return result["ia"]

    def _configure(self) -> FeatureReport:
        ia = self._ia
        node_map = ia.remote_device.node_map
        if self.cfg.num_buffers is not None:
            ia.num_buffers = self.cfg.num_buffers
        steps: list[tuple[str, Value]] = []
        if self.cfg.trigger == "off":
            if _has(node_map, "TriggerMode"):
                if _has(node_map, "TriggerSelector"):
                    steps.append(("TriggerSelector", "FrameStart"))
                steps.append(("TriggerMode", "Off"))
        else:
            if _has(node_map, "TriggerSelector"):
                steps.append(("TriggerSelector", "FrameStart"))
            source = "Software" if self.cfg.trigger == "software" else self.cfg.trigger_source
            steps += [("TriggerMode", "On"), ("TriggerSource", source)]
        steps += ordered(self.cfg.features)
        if (
            self.cfg.trigger == "off"
            and self.fps is not None
            and "AcquisitionFrameRate" not in self.cfg.features
            and _has(node_map, "AcquisitionFrameRate")
        ):
            # A free-running camera runs at the line's fps unless features say otherwise.
            if _has(node_map, "AcquisitionFrameRateEnable") and (
                "AcquisitionFrameRateEnable" not in self.cfg.features
            ):
                steps.append(("AcquisitionFrameRateEnable", True))
            steps.append(("AcquisitionFrameRate", float(self.fps)))
        if self.cfg.chunks:
            steps.append(("ChunkModeActive", True))
            for name in self.cfg.chunks:
                steps += [("ChunkSelector", name), ("ChunkEnable", True)]
        report = apply_features(node_map, steps)
        stream = apply_features(
            ia.data_streams[0].node_map, [("StreamBufferHandlingMode", self.cfg.buffer_handling)]
        )
        return FeatureReport({**report.applied, **stream.applied}, report.refused + stream.refused)

    def _slot_bytes(self) -> int:
        """A ring slot big enough for a frame as harvesters hands it over."""
        node_map = self._ia.remote_device.node_map
        width = int(node_map.Width.value)
        height = int(node_map.Height.value)
        name = str(node_map.PixelFormat.value)
        payload = int(node_map.PayloadSize.value) if _has(node_map, "PayloadSize") else 0
        try:
            fmt = pixel_format(name)
        except InputError:
            return max(payload * 2, width * height * 8)
        # harvesters unpacks packed formats to uint16; rows may keep padding.
        per_px = fmt.channels * (1 if fmt.bits == 8 else 2)
        return width * height * per_px + height * 64

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> None:
        assert self.ring is not None
        cfg = self.cfg
        next_state = 0.0
        last_frame = time.monotonic()
        consecutive = 0
        while not self.stop_event.is_set():
            now = time.monotonic()
            if now >= next_state:
                self._send_state()
                next_state = now + HEARTBEAT_S
            if self._faults is not None:
                self._faults.poll(self)
            slot = self.ring.acquire(FETCH_SLICE_S)
            if slot is None:
                continue  # the daemon holds every slot: wait, the driver keeps buffering
            try:
                frame = self._fetch(slot)
            except _Fatal:
                raise
            except Exception as exc:  # GenTL errors, a destroyed acquirer, bad buffers
                self.ring.give_back(slot)
                self.errors += 1
                consecutive += 1
                self.last_error = f"GenTL error: {type(exc).__name__}: {exc}"
                if consecutive >= cfg.max_consecutive_timeouts:
                    self._recover()
                    consecutive = 0
                    last_frame = time.monotonic()
                continue
            if frame is None:
                self.ring.give_back(slot)
                waited = time.monotonic() - last_frame
                if self._free_running and waited > cfg.timeout_s:
                    self.timeouts += 1
                    consecutive += 1
                    last_frame = time.monotonic()
                    self.last_error = (
                        f"no frame for {cfg.timeout_s:g} s "
                        f"({consecutive}/{cfg.max_consecutive_timeouts})"
                    )
                    if consecutive >= cfg.max_consecutive_timeouts:
                        self._recover()
                        consecutive = 0
                        last_frame = time.monotonic()
                continue
            self.frames += 1
            consecutive = 0
            last_frame = time.monotonic()

    def _fetch(self, slot: int) -> FrameMeta | None:
        """One frame copied into ``slot`` and announced to the daemon, or None on
        timeout. The daemon is told as soon as the copy is done: everything else
        about the frame is read before it, and the buffer is requeued after."""
        assert self.ring is not None
        buffer = self._ia.try_fetch(timeout=FETCH_SLICE_S)
        if buffer is None:
            return None
        sent = False
        try:
            with buffer:
                data, meta = self._describe(buffer, slot)
                self.ring.write(slot, data)  # the one copy, inside the with block
                self.link.send(meta)
                sent = True
        except Exception as exc:
            if not sent:
                raise
            # The frame is the daemon's now (its slot too); only the requeue failed.
            self.errors += 1
            self.last_error = f"GenTL error on requeue: {type(exc).__name__}: {exc}"
        if meta.frame_id is not None and self._last_frame_id is not None:
            self.skipped += max(0, meta.frame_id - self._last_frame_id - 1)
        self._last_frame_id = meta.frame_id
        return meta

    def _describe(self, buffer: Any, slot: int) -> tuple[np.ndarray, FrameMeta]:
        """The image component of a fetched buffer and everything about it."""
        assert self.ring is not None
        host_ts_ns = time.time_ns()
        payload = buffer.payload
        components = payload.components if payload is not None else []
        if not components or components[0] is None or components[0].data is None:
            msg = "buffer without an image component"
            raise ValueError(msg)
        comp = components[0]
        data: np.ndarray = comp.data
        width, height = int(comp.width), int(comp.height)
        if data.nbytes > self.ring.slot_bytes:
            # Only a fresh ring fits: the daemon restarts this process with one.
            msg = (
                f"camera {self.camera!r}: a {data.nbytes}-byte frame does not fit a "
                f"{self.ring.slot_bytes}-byte ring slot"
            )
            raise _Fatal("resize", msg, EXIT_GAVE_UP, slot_bytes=int(data.nbytes))
        meta = FrameMeta(
            slot=slot,
            nbytes=int(data.nbytes),
            dtype=str(data.dtype),
            shape=_shape(data.size, width, height),
            pixel_format=str(comp.data_format),
            width=width,
            height=height,
            host_ts_ns=host_ts_ns,
            device_ts_ns=_device_ts_ns(buffer),
            frame_id=_frame_id(buffer),
            chunks=self._read_chunks(),
        )
        return data, meta

    def _read_chunks(self) -> dict[str, Any]:
        if not self.cfg.chunks:
            return {}
        node_map = self._ia.remote_device.node_map
        out: dict[str, Any] = {}
        for name in self.cfg.chunks:
            try:
                value = node_map.get_node(f"Chunk{name}").value
            except Exception:  # a chunk missing from this frame
                continue
            out[name] = value if isinstance(value, int | float | bool) else str(value)[:256]
        return out

    # ------------------------------------------------------------------ recovery

    def _recover(self) -> None:
        """Retry layer 1: reopen the camera by serial, ``reconnect_attempts`` times
        with backoff; then exit :data:`EXIT_GAVE_UP` so the daemon starts a fresh
        process (layer 2)."""
        self.connected = False
        self._send_state()
        self._destroy_acquirer()
        backoff = Backoff(self.cfg.backoff_min_s, self.cfg.backoff_max_s)
        for attempt in range(1, self.cfg.reconnect_attempts + 1):
            if self.stop_event.wait(backoff.next_delay_s()):
                return
            try:
                self._open(self.serial, None, None, 0)
                self._ia.start()
            except _Fatal as exc:
                self.last_error = f"reconnect {attempt}/{self.cfg.reconnect_attempts}: {exc}"
                self._destroy_acquirer()
                self._send_state()
                if exc.kind == "config":
                    raise
                continue
            except Exception as exc:
                self.last_error = (
                    f"reconnect {attempt}/{self.cfg.reconnect_attempts}: "
                    f"{type(exc).__name__}: {exc}"
                )
                self._destroy_acquirer()
                self._send_state()
                continue
            self.reconnects += 1
            self.connected = True
            self._last_frame_id = None
            self._send_state()
            return
        msg = (
            f"camera {self.camera!r}: in-process reconnect failed "
            f"{self.cfg.reconnect_attempts} times ({self.last_error})"
        )
        raise _Fatal("gave_up", msg, EXIT_GAVE_UP)

    def _destroy_acquirer(self) -> None:
        with self._node_lock:
            ia, self._ia = self._ia, None
        if ia is not None:
            with contextlib.suppress(Exception):
                ia.stop()
            with contextlib.suppress(Exception):
                ia.destroy()

    @property
    def acquirer(self) -> Any:
        """The harvesters ImageAcquirer (None while reconnecting), for a FaultHook."""
        return self._ia

    # ------------------------------------------------------------------ commands

    def trigger(self, token: int) -> None:
        with self._node_lock:
            ia = self._ia
            error: str | None = None
            if ia is None:
                error = "camera is reconnecting"
            else:
                try:
                    ia.remote_device.node_map.TriggerSoftware.execute()
                except Exception as exc:
                    error = f"TriggerSoftware failed: {type(exc).__name__}: {exc}"
        self.link.send(TriggerDone(token, error))

    def _send_state(self) -> None:
        self.link.send(
            StateReport(
                connected=self.connected,
                frames=self.frames,
                timeouts=self.timeouts,
                errors=self.errors,
                reconnects=self.reconnects,
                skipped=self.skipped,
                last_error=self.last_error,
                device=self.device,
            )
        )


def _has(node_map: Any, name: str) -> bool:
    try:
        node_map.get_node(name)
    except Exception:
        return False
    return True


def _frame_id(buffer: Any) -> int | None:
    try:
        return int(buffer.module.frame_id)
    except Exception:
        return None


def _device_ts_ns(buffer: Any) -> int | None:
    module = buffer.module
    try:
        return int(module.timestamp_ns) or None
    except Exception:
        pass
    try:
        ticks = int(module.timestamp)
        freq = int(buffer.timestamp_frequency)
    except Exception:
        return None
    return ticks * 1_000_000_000 // freq if ticks and freq else None


def _shape(size: int, width: int, height: int) -> tuple[int, ...]:
    """(H, W) or (H, W, C) when the element count says so; else 1-D."""
    px = width * height
    if px and size == px:
        return (height, width)
    if px and size % px == 0 and size // px in (2, 3, 4):
        return (height, width, size // px)
    return (size,)


def _commands(conn: Connection, acq: Acquisition) -> None:
    """The command thread: slot releases, the ring, triggers, stop; EOF = parent gone."""
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            acq.stop_event.set()
            return
        match msg:
            case Release(slot=slot):
                if acq.ring is not None:
                    acq.ring.release(slot)
            case UseRing():
                acq.ring_args = msg
                acq.ring_event.set()
            case Trigger(token=token):
                acq.trigger(token)
            case Stop():
                acq.stop_event.set()
                return
            case _:  # not a command: the daemon and this child always ship together
                acq.last_error = f"ignored an unknown command: {type(msg).__name__}"


def _detach_signals() -> None:
    """The daemon decides when this process stops: ignore terminal/systemd signals
    (it stops on ``stop`` or when the daemon's pipe closes) and die with the daemon."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def main(
    camera: str,
    cfg: dict[str, Any],
    events: Connection,
    commands: Connection,
    faults: FaultHook | None = None,
) -> None:
    """Entry point of the spawned process. ``cfg``: ``{"genicam": {...}, "fps": float}``;
    ``faults``: the test-only hook (None in production)."""
    _detach_signals()
    link = _Link(events)
    gcfg = GenicamConfig.model_validate(cfg["genicam"])
    acq = Acquisition(camera, gcfg, link, fps=cfg.get("fps"), faults=faults)
    thread = threading.Thread(
        target=_commands, args=(commands, acq), name=f"edged-cmd-{camera}", daemon=True
    )
    thread.start()
    sys.exit(acq.run())
