"""LTU-compatible image services under ``/v2/services/image/``.

``POST /v2/services/image/{imageQuality,objectMaskDetection,contours,edges,
colorPalette,heatMap}`` take an image (see :mod:`edged.http._input`) and the
check's options as form fields or query parameters, run the check in the worker
pool and answer the LTU envelope (:mod:`edged.http._envelope`) with the check's
``to_dict()`` (PNGs included) as ``result``. Other services (references) add
their routes to the same table with the same helpers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from aiohttp import web

from edged.checks._options import (
    ContoursOptions,
    EdgesOptions,
    HeatmapOptions,
    MaskOptions,
    PaletteOptions,
    QualityOptions,
    _Options,
)
from edged.checks.contours import find_contours
from edged.checks.edges import detect_edges
from edged.checks.heatmap import interest_heatmap
from edged.checks.mask import object_mask
from edged.checks.palette import color_palette
from edged.checks.quality import image_quality
from edged.core.errors import InputError
from edged.http._envelope import LTU_FAMILY, Handler, LtuAnswer, ltu_endpoint
from edged.http._families import register_family
from edged.http._input import read_image_field, read_options, run_pixels

PREFIX = "/v2/services/image"

Compute = Callable[[np.ndarray, Any], dict[str, Any]]

# service name -> (options model, image + options -> result JSON)
SERVICES: dict[str, tuple[type[_Options], Compute]] = {
    "imageQuality": (QualityOptions, lambda im, o: image_quality(im, **o.kwargs()).to_dict()),
    "objectMaskDetection": (MaskOptions, lambda im, o: object_mask(im, **o.kwargs()).to_dict()),
    "contours": (ContoursOptions, lambda im, o: find_contours(im, **o.kwargs()).to_dict()),
    "edges": (EdgesOptions, lambda im, o: detect_edges(im, **o.kwargs()).to_dict()),
    "colorPalette": (PaletteOptions, lambda im, o: color_palette(im, **o.kwargs()).to_dict()),
    "heatMap": (HeatmapOptions, lambda im, o: interest_heatmap(im, **o.kwargs()).to_dict()),
}


def _checked(compute: Compute, image: np.ndarray, options: Any) -> dict[str, Any]:
    try:
        return compute(image, options)
    except ValueError as exc:  # an option combination the function refuses
        raise InputError(str(exc)) from exc


def _service(name: str, model: type[_Options], compute: Compute) -> Handler:
    @ltu_endpoint(name)
    async def handler(request: web.Request) -> LtuAnswer:
        options = await read_options(request, model)
        image = await read_image_field(request, "image")
        result = await run_pixels(request, _checked, compute, image, options)
        h, w = image.shape[:2]
        info = {"resolution_wh": [w, h], "options": options.model_dump()}
        return LtuAnswer(result, info=info)

    return handler


def _route_table() -> web.RouteTableDef:
    table = web.RouteTableDef()
    for name, (model, compute) in SERVICES.items():
        table.post(f"{PREFIX}/{name}", name=f"ltu.{name}")(_service(name, model, compute))
    return table


routes = _route_table()
"""The LTU image-service routes: ``app.add_routes(routes)``."""


def setup(app: web.Application) -> None:
    """Add the LTU image services to ``app``; their errors take the LTU envelope."""
    register_family(app, LTU_FAMILY)
    app.add_routes(routes)
