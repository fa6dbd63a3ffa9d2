"""PixLab-compatible ``POST /imgdiff``: mean square error between two images.

``src`` and ``target`` come as multipart file parts or base64 fields (multipart,
urlencoded, JSON). Answer ``{"status": 200, "diff": MSE, "id": ..., "link": null}``
(PixLab returns a link to the stored difference image; edged stores nothing and
returns it inline instead with ``blob=true``: the absolute difference as a PNG
body, with the MSE in the ``X-Imgdiff-Mse`` header). Errors are
``{"status": CODE, "error": reason}`` with that HTTP status: two images of different
sizes are 400.
"""

from __future__ import annotations

import uuid

import cv2
from aiohttp import web

from edged.checks.imgdiff import ImgDiff, imgdiff
from edged.errors import BusyError, EdgedError, InputError
from edged.http._refs_input import field_value, parse_bool, read_form, read_image_field, run_pixels

routes = web.RouteTableDef()


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"status": status, "error": message}, status=status)


@routes.post("/imgdiff", name="pixlab.imgdiff")
async def imgdiff_service(request: web.Request) -> web.Response:
    try:
        form = await read_form(request)
        blob = parse_bool(field_value(form, "blob", False), "blob")
        src = await read_image_field(request, "src")
        target = await read_image_field(request, "target")
        assert src is not None
        assert target is not None
        res: ImgDiff = await run_pixels(request, imgdiff, src, target)
        if blob:
            ok, buf = cv2.imencode(".png", res.diff, [cv2.IMWRITE_PNG_COMPRESSION, 1])
            if not ok:  # pragma: no cover
                raise InputError("the difference image could not be encoded")
            return web.Response(
                body=buf.tobytes(),
                content_type="image/png",
                headers={"X-Imgdiff-Mse": repr(res.mse)},
            )
        return web.json_response(
            {"status": 200, "diff": res.mse, "id": uuid.uuid4().hex, "link": None}
        )
    except BusyError as exc:
        resp = _error(exc.http_status, str(exc))
        resp.headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
        return resp
    except EdgedError as exc:
        return _error(exc.http_status, str(exc))
    except web.HTTPClientError as exc:
        return _error(exc.status, exc.text or exc.reason)
