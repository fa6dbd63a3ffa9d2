"""USB/UVC cameras, video files, image folders and RTSP/HTTP streams through OpenCV.

``opencv.device`` selects the input:

* an index (``0``) or a V4L2 path — prefer ``/dev/v4l/by-id/usb-...-video-index0``,
  which stays the same across reboots and USB re-enumeration;
* a video file (replayed at the camera's ``fps``; ``loop: true`` to repeat);
* a folder of images (name order, replayed at ``fps``; Mono8, Mono16, BGR8, BGRa8
  frames as the files are), or a single image file;
* an ``rtsp://``, ``http(s)://``, ``rtmp://`` or ``udp://`` stream (FFmpeg backend,
  5 s open/read timeouts).

Devices get ``fourcc``, ``width``, ``height``, the camera's ``fps`` and
``exposure`` (backend units; on V4L2 it switches to manual exposure, 100 µs steps)
where the backend allows; what the device actually runs is in ``details()``, and a
mode it would not take is reported in ``state().last_error`` (UVC cameras pick
their nearest mode instead of failing). Devices and streams that stop delivering
are reopened every ``reconnect_s`` until they answer again; the source stays up.

Reads run in one thread per camera (OpenCV releases the GIL while it waits and
decodes); frames reach the event loop through ``call_soon_threadsafe``.
Back-pressure follows ``CameraConfig.on_full``: ``drop_oldest`` keeps the newest two
frames (drops counted); ``block`` makes the reader wait, so a replay loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from typing import Any

from edged.config import CameraConfig, OpenCVConfig
from edged.core.backoff import Backoff
from edged.core.errors import ConfigError, SourceError
from edged.core.frames import Frame
from edged.sources._opencv_readers import (
    FolderReader,
    Grab,
    OpenFailed,
    Reader,
    ReadFailed,
    make_reader,
)
from edged.sources.base import EndOfStream, FrameSource, SourceState

log = logging.getLogger(__name__)

_CAPACITY = 2
_FPS_WINDOW_S = 2.0


class OpenCVSource(FrameSource):
    """One OpenCV input. See the module docstring."""

    def __init__(self, camera: str, cfg: CameraConfig) -> None:
        super().__init__(camera)
        if cfg.opencv is None:
            msg = f"camera {camera!r}: expected an 'opencv' section, got none"
            raise ConfigError(msg)
        self._cfg = cfg
        self._ocfg: OpenCVConfig = cfg.opencv
        self._block = cfg.on_full == "block"
        self._reader: Reader | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._space = threading.Semaphore(_CAPACITY)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._buf: deque[Frame] = deque()
        self._wake = asyncio.Event()
        self._running = False
        self._ended = False
        self._fatal: str | None = None
        self._connected = False
        self._seq = 0
        self._delivered = 0
        self._dropped = 0
        self._reconnects = 0
        self._arrivals: deque[float] = deque()
        self._last_error: str | None = None

    @property
    def device(self) -> str:
        return str(self._ocfg.device)

    async def start(self) -> None:
        """Open the input (in a thread) and start reading.

        Raises SourceError when it cannot be opened (missing file or folder, no
        such device, unreachable stream).
        """
        if self._running:
            return
        reader = make_reader(self._ocfg, self._cfg.fps)
        try:
            await asyncio.to_thread(reader.open)
        except OpenFailed as exc:
            self._last_error = str(exc)
            raise SourceError(f"camera {self.camera!r}: {exc}") from exc
        if reader.refused:
            self._last_error = "device mode differs from config: " + "; ".join(reader.refused)
            log.warning("camera %s: %s", self.camera, self._last_error)
        self._reader = reader
        self._loop = asyncio.get_running_loop()
        self._stop.clear()
        self._space = threading.Semaphore(_CAPACITY)
        self._buf.clear()
        self._ended = False
        self._fatal = None
        self._connected = True
        self._running = True
        self._thread = threading.Thread(
            target=self._run, name=f"edged-opencv-{self.camera}", daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        self._running = False
        self._stop.set()
        self._space.release()  # wake a reader blocked on a full buffer
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.to_thread(thread.join, 10.0)
            if thread.is_alive():
                log.warning("camera %s: reader thread still busy after stop", self.camera)
        reader, self._reader = self._reader, None
        if reader is not None and (thread is None or not thread.is_alive()):
            reader.close()
        self._connected = False
        self._buf.clear()
        self._wake.set()

    # ------------------------------------------------------------------ reader thread

    def _run(self) -> None:
        reader = self._reader
        assert reader is not None
        reported = 0
        try:
            while not self._stop.is_set():
                if self._block and not self._acquire_space():
                    return
                try:
                    grab = reader.read()
                except ReadFailed as exc:
                    if self._block:
                        self._space.release()
                    self._reconnect(reader, str(exc))
                    continue
                if isinstance(reader, FolderReader) and len(reader.errors) > reported:
                    reported = len(reader.errors)
                    self._post(self._on_error, reader.errors[-1])
                if grab is None:
                    if self._block:
                        self._space.release()
                    if self._ocfg.loop and reader.rewind():
                        continue
                    self._post(self._on_end)
                    return
                self._post(self._on_grab, grab, time.time_ns())
        except Exception as exc:  # an OpenCV error we did not foresee: report, do not die silently
            log.exception("camera %s: reader failed", self.camera)
            self._post(self._on_fatal, f"reader failed: {type(exc).__name__}: {exc}")

    def _acquire_space(self) -> bool:
        while not self._space.acquire(timeout=0.2):
            if self._stop.is_set():
                return False
        return not self._stop.is_set()

    def _reconnect(self, reader: Reader, reason: str) -> None:
        """Reopen a live input every ``reconnect_s`` until it answers or we stop.

        The source's only retry layer: a constant :class:`Backoff` (``min_s ==
        max_s``, no jitter), so ``read()`` never raises for a lost device and the
        daemon's supervisor does not retry it on top."""
        self._post(self._on_lost, reason)
        reader.close()
        interval = self._ocfg.reconnect_s
        backoff = Backoff(interval, interval)
        while not self._stop.wait(backoff.next_delay_s()):
            try:
                reader.open()
            except OpenFailed as exc:
                self._post(self._on_error, f"reconnect: {exc}")
                continue
            self._post(self._on_reconnected)
            return

    def _post(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: we are shutting down
            loop.call_soon_threadsafe(fn, *args)

    # ------------------------------------------------------------------ loop side

    def _on_grab(self, grab: Grab, host_ts_ns: int) -> None:
        if not self._running:
            return
        image = grab.image
        frame = Frame(
            data=image,
            pixel_format=grab.pixel_format,
            width=int(image.shape[1]),
            height=int(image.shape[0]),
            camera=self.camera,
            seq=self._seq,
            host_ts_ns=host_ts_ns,
            device_ts_ns=grab.media_ts_ns,
            frame_id=grab.frame_id,
        )
        self._seq += 1
        now = time.monotonic()
        self._arrivals.append(now)
        while self._arrivals and now - self._arrivals[0] > _FPS_WINDOW_S:
            self._arrivals.popleft()
        self._buf.append(frame)
        if not self._block:
            while len(self._buf) > _CAPACITY:
                self._buf.popleft()
                self._dropped += 1
        self._wake.set()

    def _on_end(self) -> None:
        self._ended = True
        self._wake.set()

    def _on_lost(self, reason: str) -> None:
        self._connected = False
        self._last_error = reason
        log.warning(
            "camera %s: %s; reconnecting every %g s", self.camera, reason, self._ocfg.reconnect_s
        )

    def _on_reconnected(self) -> None:
        self._connected = True
        self._reconnects += 1
        log.info("camera %s: reconnected to %s", self.camera, self.device)

    def _on_error(self, message: str) -> None:
        self._last_error = message

    def _on_fatal(self, message: str) -> None:
        self._fatal = message
        self._last_error = message
        self._wake.set()

    async def read(self) -> Frame:
        """The next frame; EndOfStream after the last frame of a file or folder."""
        while True:
            if self._buf:
                frame = self._buf.popleft()
                if self._block:
                    self._space.release()
                self._delivered += 1
                return frame
            if self._fatal is not None:
                raise SourceError(f"camera {self.camera!r}: {self._fatal}")
            if self._ended:
                raise EndOfStream(f"camera {self.camera!r}: end of {self.device!r}")
            if not self._running:
                msg = f"camera {self.camera!r}: expected a started source, got a stopped one"
                raise SourceError(msg)
            self._wake.clear()
            await self._wake.wait()

    # ------------------------------------------------------------------ state

    def state(self) -> SourceState:
        return SourceState(
            connected=self._running and self._connected,
            frames=self._delivered,
            fps=self._fps(),
            reconnects=self._reconnects,
            dropped=self._dropped,
            last_error=self._last_error,
            device=self.device,
        )

    def details(self) -> dict[str, Any]:
        reader = self._reader
        return {
            "kind": reader.kind if reader is not None else None,
            "applied": dict(reader.applied) if reader is not None else {},
            "refused": list(reader.refused) if reader is not None else [],
            "skipped_files": list(reader.errors) if isinstance(reader, FolderReader) else [],
            "dropped_queue_full": self._dropped,
        }

    def _fps(self) -> float:
        a = self._arrivals
        if not self._running or len(a) < 2 or time.monotonic() - a[-1] > _FPS_WINDOW_S:
            return 0.0
        span = a[-1] - a[0]
        return (len(a) - 1) / span if span > 0 else 0.0
