"""LTU-compatible image services under ``/v2/services/image/``, one per check.

Every check whose spec declares an LTU service (:attr:`edged.checks.CheckSpec.ltu`:
``imageQuality``, ``objectMaskDetection``, ``contours``, ``edges``, ``colorPalette``,
``heatMap``) answers ``POST`` and ``GET /v2/services/image/{service}`` (the
document accepts both; GET takes its fields from the query): it takes an image (see
:mod:`edged.http._input`) and the service's options as form fields or query
parameters, runs the check in the worker pool and answers the LTU envelope
(:mod:`edged.http._envelope`) with the check's LTU reply (the document's result and
details, :class:`edged.checks.LtuReply`) or its ``to_dict()``. The routes are
generated from the check registry; nothing here names a check.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from aiohttp import web

from edged.checks import LtuReply, LtuService, registry
from edged.core.errors import InputError
from edged.http._envelope import LTU_FAMILY, Handler, LtuAnswer, ltu_endpoint
from edged.http._families import register_family
from edged.http._input import read_image_field, read_options, run_pixels

PREFIX = "/v2/services/image"


def services() -> dict[str, LtuService]:
    """The LTU image services of the registered checks, by service name."""
    return {spec.ltu.name: spec.ltu for spec in registry().values() if spec.ltu is not None}


def _checked(service: LtuService, image: np.ndarray, options: Any) -> dict[str, Any] | LtuReply:
    try:
        return service.compute(image, options)
    except ValueError as exc:  # an option combination the function refuses
        raise InputError(str(exc)) from exc


def _handler(service: LtuService) -> Handler:
    @ltu_endpoint(service.name)
    async def handler(request: web.Request) -> LtuAnswer:
        options = await read_options(request, service.options)
        image = await read_image_field(request, "image")
        result = await run_pixels(request, _checked, service, image, options)
        h, w = image.shape[:2]
        info = {"resolution_wh": [w, h], "options": options.model_dump()}
        if isinstance(result, LtuReply):
            info = {**result.info, **info}
            return LtuAnswer(
                result.result,
                score=result.score,
                info=info,
                message=result.message,
                name=result.name,
                extra=result.extra,
            )
        return LtuAnswer(result, info=info)

    return handler


def route_table() -> web.RouteTableDef:
    """The LTU image-service routes of the registered checks."""
    table = web.RouteTableDef()
    for name, service in services().items():
        handler = _handler(service)
        table.post(f"{PREFIX}/{name}", name=f"ltu.{name}")(handler)
        table.get(f"{PREFIX}/{name}", name=f"ltu.{name}.get", allow_head=False)(handler)
    return table


def setup(app: web.Application) -> None:
    """Add the LTU image services to ``app``; their errors take the LTU envelope."""
    register_family(app, LTU_FAMILY)
    app.add_routes(route_table())
