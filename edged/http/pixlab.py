"""PixLab-compatible ``POST /imgdiff``: mean square error between two images.

``src`` and ``target`` come as multipart file parts or base64 fields (multipart,
urlencoded, JSON). Answer ``{"status": 200, "diff": MSE, "id": ..., "link": null}``
(PixLab returns a link to the stored difference image; edged stores nothing and
returns it inline instead with ``blob=true``: the absolute difference as a PNG
body, with the MSE in the ``X-Imgdiff-Mse`` header). Errors are
``{"status": CODE, "error": reason}`` with that HTTP status: two images of different
sizes are 400 (rendered by the app's error middleware through :data:`PIXLAB_FAMILY`).
Protected by the API key like the other image services.
"""

from __future__ import annotations

import uuid

import cv2
from aiohttp import web

from edged.checks.imgdiff import ImgDiff, imgdiff
from edged.core.errors import InputError
from edged.http._families import ApiFamily, HttpError, JsonBody, register_family
from edged.http._form_values import field_value, image_of, parse_bool
from edged.http._gate import gated
from edged.http._input import RequestForm, read_form, run_pixels

PATH = "/imgdiff"

routes = web.RouteTableDef()


def pixlab_error_body(request: web.Request, error: HttpError) -> JsonBody:
    """PixLab's error shape: ``{"status": code, "error": reason}``."""
    return {"status": error.status, "error": error.message}


PIXLAB_FAMILY = ApiFamily("PixLab", pixlab_error_body, paths=frozenset({PATH}))


@routes.post(PATH, name="pixlab.imgdiff")
async def imgdiff_service(request: web.Request) -> web.Response:
    """Under the analysis gate, like every pixel-heavy route (issue 20: twelve
    concurrent 7000² imgdiffs took 8 GB outside it)."""

    async def receive() -> RequestForm:
        return await read_form(request)

    async def work(form: RequestForm) -> tuple[bool, ImgDiff]:
        blob = parse_bool(field_value(form, "blob", False), "blob")
        src = await image_of(request, "src")
        target = await image_of(request, "target")
        return blob, await run_pixels(request, imgdiff, src, target)

    blob, res = await gated(request, receive, work)
    if blob:
        ok, buf = cv2.imencode(".png", res.diff, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:  # pragma: no cover
            raise InputError("the difference image could not be encoded")
        return web.Response(
            body=buf.tobytes(),
            content_type="image/png",
            headers={"X-Imgdiff-Mse": repr(res.mse)},
        )
    return web.json_response({"status": 200, "diff": res.mse, "id": uuid.uuid4().hex, "link": None})


def setup(app: web.Application) -> None:
    """Add ``POST /imgdiff``; its errors take PixLab's shape."""
    register_family(app, PIXLAB_FAMILY)
    app.add_routes(routes)
