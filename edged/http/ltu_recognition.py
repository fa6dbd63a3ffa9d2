"""LTU ``classification`` and ``objectDetection`` backed by recognition models.

``POST /v2/services/image/classification`` and ``.../objectDetection`` take an image
(as every LTU service) and answer the LTU envelope whose ``result`` is the
document's object::

    classification   {"content": {"labelAnnotations": [{score, topicality, mid,
                      description}]}, "message": "ok", "code": "0"}
    objectDetection  {"content": {"localizedObjectAnnotations": [{score, mid, name,
                      boundingPoly: {normalizedVertices: [{x, y} x 4]}}]},
                      "message": "ok", "code": "0"}

The model is ``recognition.classification`` / ``recognition.object_detection`` from
the settings (a version id or a public model name), or the request's ``model``
option (an edged addition). ``mid`` is the label id as text; vertices run
clockwise from the top-left corner, normalised to [0, 1].
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from edged.core.errors import InputError, NotFoundError
from edged.http._envelope import LTU_FAMILY, Handler, LtuAnswer, ltu_endpoint
from edged.http._errors import UnavailableError
from edged.http._families import register_family
from edged.http._input import read_image_field, read_options, run_pixels
from edged.http._keys import RUNTIME
from edged.models import Prediction, Recognition, Recognizer

PREFIX = "/v2/services/image"
Service = Literal["classification", "objectDetection"]


class RecognitionServiceOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: int | str | None = Field(
        default=None, description="a version id or public model name; default: from settings"
    )
    max_predictions: int = Field(default=100, ge=1, le=10_000)


def _label(p: Prediction) -> dict[str, Any]:
    return {
        "score": p.score,
        "topicality": p.score,
        "mid": str(p.label_id),
        "description": p.label_name,
    }


def _object(p: Prediction) -> dict[str, Any]:
    b = p.bbox
    corners = [(b.xmin, b.ymin), (b.xmax, b.ymin), (b.xmax, b.ymax), (b.xmin, b.ymax)]
    return {
        "score": p.score,
        "mid": str(p.label_id),
        "name": p.label_name,
        "boundingPoly": {"normalizedVertices": [{"x": x, "y": y} for x, y in corners]},
    }


def _content(service: Service, rec: Recognition) -> dict[str, Any]:
    if service == "classification":
        return {"labelAnnotations": [_label(p) for p in rec.predicted]}
    return {"localizedObjectAnnotations": [_object(p) for p in rec.predicted]}


def _recognize(recognizer: Recognizer, image: np.ndarray, cap: int) -> Recognition:
    return recognizer.recognize(image, max_predictions=cap)


def _service(service: Service) -> Handler:
    setting = "classification" if service == "classification" else "object_detection"

    @ltu_endpoint(service)
    async def handler(request: web.Request) -> LtuAnswer:
        runtime = request.app[RUNTIME]
        options = await read_options(request, RecognitionServiceOptions)
        ref = options.model
        if ref is None:
            ref = getattr(runtime.settings.recognition, setting)
        if ref is None:
            msg = (
                f"{service}: expected a model: set recognition.{setting} (a version id or a "
                "public model name) or send model=..., got none"
            )
            raise NotFoundError(msg)
        models = runtime.models
        if models is None:
            msg = f"{service}: expected a model repository (models_dir), got none"
            raise UnavailableError(msg)
        image = await read_image_field(request, "image")
        recognizer: Recognizer = await run_pixels(request, models.resolve, ref)
        if (recognizer.kind == "detection") != (service == "objectDetection"):
            want = "a detection" if service == "objectDetection" else "a classification or tagging"
            msg = f"{service}: expected {want} model, got {ref!r}, a {recognizer.kind} model"
            raise InputError(msg)
        rec = await run_pixels(request, _recognize, recognizer, image, options.max_predictions)
        result = {"content": _content(service, rec), "message": "ok", "code": "0"}
        h, w = image.shape[:2]
        top = rec.top
        info = {"resolution_wh": [w, h], "model": str(ref), "kind": rec.kind}
        # The document's answer is {content, message, code} at the top level: given
        # there (code the document's string "0"), and kept in ``result`` too.
        return LtuAnswer(result, score=top.score if top else None, info=info, extra=result)

    return handler


def _route_table() -> web.RouteTableDef:
    table = web.RouteTableDef()
    services: tuple[Service, ...] = ("classification", "objectDetection")
    for name in services:
        handler = _service(name)
        table.post(f"{PREFIX}/{name}", name=f"ltu.{name}")(handler)
        table.get(f"{PREFIX}/{name}", name=f"ltu.{name}.get", allow_head=False)(handler)
    return table


routes = _route_table()
"""The routes: ``app.add_routes(routes)``."""


def setup(app: web.Application) -> None:
    """Add classification and objectDetection; their errors take the LTU envelope."""
    register_family(app, LTU_FAMILY)
    app.add_routes(routes)
