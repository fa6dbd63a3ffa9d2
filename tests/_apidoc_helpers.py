"""Shared by the API-document tests: a local file server standing in for the vendors'
image URLs, edged's real app behind a key, and images with known answers."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

import cv2
import numpy as np
from _http_helpers import ServerThread
from aiohttp import web

from edged.config import Settings
from edged.runtime.shared import Runtime

TOKEN = "doc-token-1234"


class FileServer:
    """``GET /<name>`` serves ``files[name]`` from ``127.0.0.1:<free port>`` (own thread)."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
        self.files = dict(files)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="doc-files")
        self._runner: web.AppRunner | None = None
        self.port = 0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    async def _serve(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.files:
            raise web.HTTPNotFound
        ctype = "image/png" if name.endswith(".png") else "image/jpeg"
        return web.Response(body=self.files[name], content_type=ctype)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/{name}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    def _call(self, coro: Any) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(timeout=30)

    def __enter__(self) -> FileServer:
        self._thread.start()
        self._call(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            self._call(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@contextmanager
def edged_server(**http: Any) -> Iterator[ServerThread]:
    """edged's app with the API key ``TOKEN`` and URL fetches allowed from 127.0.0.1."""
    settings = Settings(
        http={"api_key": TOKEN, "url_fetch_hosts": ["127.0.0.1"], **http},
        recipes={"q": {"checks": {"quality": {}}}},
    )
    with ServerThread(Runtime.build(settings)) as server:
        yield server


def encode(image: np.ndarray, ext: str) -> bytes:
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return buf.tobytes()


def decode_image_object(obj: Any) -> np.ndarray:
    """An LTU image object ``{"encoding": "base64", "format": "image/png", "value"}``."""
    assert isinstance(obj, dict), obj
    assert obj["encoding"] == "base64"
    assert obj["format"] == "image/png"
    data = base64.b64decode(obj["value"])
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None
    return image


# RGB (164, 21, 54), the first colour of the document's colorPalette example.
DISK_BGR = (54, 21, 164)
DISK_CENTER = (150, 120)
DISK_RADIUS = 60


def nobita() -> tuple[np.ndarray, np.ndarray]:
    """A 320×240 BGR picture: a red disk on a light grey background, and the disk's
    0/1 mask."""
    img = np.full((240, 320, 3), 215, np.uint8)
    truth = np.zeros((240, 320), np.uint8)
    cv2.circle(truth, DISK_CENTER, DISK_RADIUS, 1, -1)
    img[truth == 1] = DISK_BGR
    noise = np.random.default_rng(3).integers(-3, 4, img.shape)
    return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8), truth


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    return float(np.count_nonzero(a & b) / max(np.count_nonzero(a | b), 1))
