"""Helpers for the acquisition tests: the viky.cti producer, configs, loop lag."""

from __future__ import annotations

import asyncio
import http.server
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import genicam
import numpy as np

from edged.config import CameraConfig

VIKY_CTI = Path(genicam.__file__).parent / "viky.cti"


def genicam_camera(
    *,
    serial: str | None = "0",
    features: dict[str, Any] | None = None,
    on_full: str = "drop_oldest",
    **genicam_options: Any,
) -> CameraConfig:
    """A camera on the viky producer; small frames by default so tests stay fast."""
    feats = {"Width": 128, "Height": 100, "PixelFormat": "Mono8", "AcquisitionFrameRate": 50.0}
    feats.update(features or {})
    return CameraConfig.model_validate(
        {
            "source": "genicam",
            "recipe": "r",
            "on_full": on_full,
            "genicam": {
                "cti": [str(VIKY_CTI)],
                "serial": serial,
                "features": feats,
                "timeout_s": 1.0,
                "backoff_min_s": 0.2,
                "backoff_max_s": 1.0,
                **genicam_options,
            },
        }
    )


class LoopLag:
    """Measures how late the event loop wakes a 5 ms sleep, while it runs."""

    def __init__(self, period_s: float = 0.005) -> None:
        self.period_s = period_s
        self.samples_s: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def __enter__(self) -> LoopLag:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag-probe")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(self.period_s)
            self.samples_s.append(time.perf_counter() - t0 - self.period_s)

    def p99_ms(self) -> float:
        return float(np.percentile(np.asarray(self.samples_s) * 1e3, 99))


async def read_n(source: Any, n: int, timeout_s: float = 10.0) -> list[Any]:
    return [await asyncio.wait_for(source.read(), timeout_s) for _ in range(n)]


class MjpegServer:
    """A real HTTP MJPEG camera (multipart/x-mixed-replace) on 127.0.0.1.

    Frame ``i`` is a uniform grey image of level ``(10 * i) % 250``; ``stop()`` closes
    every connection (the client sees the stream end) and ``start()`` serves again
    on the same port.
    """

    def __init__(self, size_wh: tuple[int, int] = (64, 48), period_s: float = 0.02) -> None:
        self.size_wh = size_wh
        self.period_s = period_s
        self.port = 0
        self._server: Any = None
        self._stop = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def start(self) -> None:
        owner = self
        self._stop = threading.Event()
        stop = self._stop

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                w, h = owner.size_wh
                while not stop.is_set():
                    img = np.full((h, w, 3), (10 * i) % 250, np.uint8)
                    _, jpg = cv2.imencode(".jpg", img)
                    part = (
                        b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                        + str(jpg.size).encode()
                        + b"\r\n\r\n"
                        + jpg.tobytes()
                        + b"\r\n"
                    )
                    try:
                        self.wfile.write(part)
                        self.wfile.flush()
                    except OSError:
                        return
                    i += 1
                    time.sleep(owner.period_s)

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = int(server.server_address[1])
        self._server = server
        threading.Thread(target=server.serve_forever, name="mjpeg-server", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
