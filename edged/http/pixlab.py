"""PixLab-compatible ``/imgdiff``: mean square error between two images.

As PixLab documents it: ``GET /imgdiff?src=URL&target=URL&key=KEY`` (the key may
instead come in the ``WWW-Authenticate`` header, or edged's usual ways); edged also
takes ``POST`` with ``src`` and ``target`` as multipart file parts, base64 fields
or URLs (URLs are fetched only from ``http.url_fetch_hosts``). The answer is
``{"status": 200, "diff": MSE, "id": ID, "link": URL}``: ``link`` is an absolute URL
on edged itself, ``GET /imgdiff/results/{id}.png``, serving the reconstructed
difference image ``|src - target|`` as PNG. Those images are kept in memory for
:data:`RESULT_TTL_S` seconds, at most :data:`MAX_RESULTS` of them and
:data:`MAX_RESULT_BYTES` in all (the oldest go first); the id is 128 random bits and
the link needs no key, like PixLab's storage links. With ``blob=true`` the PNG is
the body itself (the MSE in the ``X-Imgdiff-Mse`` header). Errors are
``{"status": CODE, "error": reason}`` with that HTTP status: two images of different
sizes are 400 (rendered by the app's error middleware through :data:`PIXLAB_FAMILY`).
Protected by the API key, and bounded by the analysis gate, like the other image
services; the two images are decoded at the same time.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict

from aiohttp import web

from edged.checks.imgdiff import ImgDiff, imgdiff
from edged.core.errors import NotFoundError
from edged.http._families import ApiFamily, HttpError, JsonBody, register_family
from edged.http._form_values import field_value, images_of, parse_bool
from edged.http._gate import gated
from edged.http._input import RequestForm, read_form, run_pixels
from edged.imaging.png_write import encode_png

PATH = "/imgdiff"
RESULT_PATH = "/imgdiff/results/{name}"
RESULT_TTL_S = 600.0
MAX_RESULTS = 64
MAX_RESULT_BYTES = 64 * 1024 * 1024


class ResultImages:
    """The last difference images, bounded in age, count and bytes (oldest out first)."""

    def __init__(
        self,
        *,
        ttl_s: float = RESULT_TTL_S,
        max_items: int = MAX_RESULTS,
        max_bytes: int = MAX_RESULT_BYTES,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0

    def _expire(self, now: float) -> None:
        while self._items:
            key, (born, data) = next(iter(self._items.items()))
            full = len(self._items) > self.max_items or self._bytes > self.max_bytes
            if not full and now - born <= self.ttl_s:
                return
            del self._items[key]
            self._bytes -= len(data)

    def put(self, data: bytes, *, now: float | None = None) -> str:
        """Keep ``data``; its new id (32 hex digits)."""
        now = time.monotonic() if now is None else now
        key = uuid.uuid4().hex
        self._items[key] = (now, data)
        self._bytes += len(data)
        self._expire(now)
        return key

    def get(self, key: str, *, now: float | None = None) -> bytes | None:
        """The image kept under ``key``, or None when unknown or expired."""
        self._expire(time.monotonic() if now is None else now)
        item = self._items.get(key)
        return None if item is None else item[1]

    def __len__(self) -> int:
        return len(self._items)


RESULTS = web.AppKey("edged.http.pixlab.results", ResultImages)


def pixlab_error_body(request: web.Request, error: HttpError) -> JsonBody:
    """PixLab's error shape: ``{"status": code, "error": reason}``."""
    return {"status": error.status, "error": error.message}


PIXLAB_FAMILY = ApiFamily(
    "PixLab", pixlab_error_body, paths=frozenset({PATH}), prefixes=("/imgdiff/",)
)


def _png(res: ImgDiff) -> bytes:
    return encode_png(res.diff)


async def imgdiff_service(request: web.Request) -> web.Response:
    """Under the analysis gate, like every pixel-heavy route (issue 20: twelve
    concurrent 7000² imgdiffs took 8 GB outside it)."""

    async def receive() -> RequestForm:
        return await read_form(request)

    async def work(form: RequestForm) -> tuple[bool, ImgDiff, bytes]:
        blob = parse_bool(field_value(form, "blob", False), "blob")
        src, target = await images_of(request, ("src",), ("target",))
        res = await run_pixels(request, imgdiff, src, target)
        return blob, res, await run_pixels(request, _png, res)

    blob, res, png = await gated(request, receive, work)
    if blob:
        return web.Response(
            body=png, content_type="image/png", headers={"X-Imgdiff-Mse": repr(res.mse)}
        )
    key = request.app[RESULTS].put(png)
    link = f"{request.scheme}://{request.host}/imgdiff/results/{key}.png"
    return web.json_response({"status": 200, "diff": res.mse, "id": key, "link": link})


async def result_image(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    key = name.removesuffix(".png")
    data = request.app[RESULTS].get(key) if name.endswith(".png") else None
    if data is None:
        msg = (
            f"imgdiff result {name!r}: expected the id of a result of the last "
            f"{RESULT_TTL_S:g} s, got none kept"
        )
        raise NotFoundError(msg)
    return web.Response(body=data, content_type="image/png")


def setup(app: web.Application) -> None:
    """Add ``GET``/``POST /imgdiff`` and the result links; errors take PixLab's shape."""
    register_family(app, PIXLAB_FAMILY)
    app[RESULTS] = ResultImages()
    app.router.add_get(PATH, imgdiff_service, name="pixlab.imgdiff.get", allow_head=False)
    app.router.add_post(PATH, imgdiff_service, name="pixlab.imgdiff")
    app.router.add_get(RESULT_PATH, result_image, name="pixlab.result", allow_head=False)
