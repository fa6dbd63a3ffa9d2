"""PixLab-compatible ``POST /imgdiff``: mean square error between two images.

``src`` and ``target`` come as multipart file parts or base64 fields (multipart,
urlencoded, JSON). Answer ``{"status": 200, "diff": MSE, "id": ..., "link": null}``
(PixLab returns a link to the stored difference image; edged stores nothing and
returns it inline instead with ``blob=true``: the absolute difference as a PNG
body, with the MSE in the ``X-Imgdiff-Mse`` header). Errors are
``{"status": CODE, "error": reason}`` with that HTTP status: two images of different
sizes are 400. Protected by the API key like the other image services.
"""

from __future__ import annotations

import uuid

import cv2
from aiohttp import web

from edged.checks.imgdiff import ImgDiff, imgdiff
from edged.core.errors import BusyError, EdgedError, InputError
from edged.http._auth import check_api_key
from edged.http._form_values import field_value, image_of, parse_bool
from edged.http._input import read_form, run_pixels
from edged.http._keys import RUNTIME

routes = web.RouteTableDef()


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"status": status, "error": message}, status=status)


@routes.post("/imgdiff", name="pixlab.imgdiff")
async def imgdiff_service(request: web.Request) -> web.Response:
    try:
        if RUNTIME in request.app:
            check_api_key(request)
        form = await read_form(request)
        blob = parse_bool(field_value(form, "blob", False), "blob")
        src = await image_of(request, "src")
        target = await image_of(request, "target")
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
