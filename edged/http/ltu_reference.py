"""LTU image services that compare two images: differences, alignmentMatrix, distance.

``POST /v2/services/image/differences`` — ``image1`` (reference) and ``image2``
(query) as multipart file parts or base64 fields; options ``preset`` (1-5, default
3), ``fic_settings`` (JSON: ``threshold``, ``smooth``, ``margin``, ``resolution``
<= 900, ``behaviors`` (letters of ``HSV``, plus edged's ``L`` luma, the default),
``weight``), ``transform``, ``image1_roi`` (a mask image the size of image1:
non-zero is compared, zero is excluded), ``mask_type`` binary | contours | none,
``mask_thickness``, ``mask_color``, ``vertices``; edged extras ``motion_model``
(default auto: a homography when the part tilts, else the simplest model that fits)
and ``min_area_px``. Result: see
:mod:`edged.checks.ltu_differences`; ``details.score`` is the differing area in
percent of the compared area, ``details.info.count`` the number of regions.

``POST /v2/services/image/alignmentMatrix`` — ``image1``, ``image2``, ``resolution``
(<= 900), ``return_image``, ``motion_model`` (default auto): ``matrix1``
(image1 -> image2) and ``matrix2`` (image2 -> image1), 3x3 row-major, and with
``return_image`` the aligned image (image2 resampled onto image1, base64 PNG).

``POST /v2/services/image/distance`` — ``refImage`` and ``queryImage`` (``image1`` /
``image2`` accepted too): ``distance``, ``decision``, sub-scores and matching boxes.

A pair that does not register answers 422 with the reason; bad input 400. Input
parsing, the analysis gate and the envelope are the image services'
(:mod:`edged.http._input`, :mod:`edged.http._envelope`); the API key is the app's.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import cv2
import numpy as np
from aiohttp import web

from edged.checks.align import MOTION_MODELS, Alignment, align
from edged.checks.difference import PRESETS, DifferenceResult, DifferenceSettings, differences
from edged.checks.distance import distance
from edged.checks.ltu_differences import MASK_TYPES, ltu_differences, parse_color
from edged.core.errors import InputError
from edged.http._envelope import LTU_FAMILY, LtuAnswer, ltu_endpoint
from edged.http._families import register_family
from edged.http._form_values import field_value, image_of, optional_image, parse_bool, parse_int
from edged.http._input import RequestForm, read_form, run_pixels

PREFIX = "/v2/services/image"
MAX_RESOLUTION = 900
_FIC_KEYS = frozenset({"threshold", "smooth", "margin", "resolution", "behaviors", "weight"})

routes = web.RouteTableDef()


def _motion_model(form: RequestForm) -> Any:
    value = str(field_value(form, "motion_model", "auto")).strip().lower()
    if value not in MOTION_MODELS:
        msg = f"motion_model: expected one of {list(MOTION_MODELS)}, got {value!r}"
        raise InputError(msg)
    return value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool):
        msg = f"fic_settings.{name}: expected a number, got {value!r}"
        raise InputError(msg)
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        msg = f"fic_settings.{name}: expected a number, got {value!r}"
        raise InputError(msg) from exc


def difference_options(form: RequestForm) -> tuple[DifferenceSettings, int]:
    """(settings, resolution) from ``preset``, ``fic_settings`` and the edged extras.

    fic_settings values override the preset's; unknown fic_settings keys are errors.
    """
    preset = parse_int(field_value(form, "preset", 3), "preset", 1, 5)
    threshold, smooth, min_area = PRESETS[preset]
    values: dict[str, Any] = {"threshold": threshold, "smooth": smooth, "min_area": min_area}
    resolution = MAX_RESOLUTION
    raw = field_value(form, "fic_settings")
    if raw not in (None, ""):
        try:
            fic = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError as exc:
            msg = f"fic_settings: expected a JSON object, got invalid JSON ({exc})"
            raise InputError(msg) from exc
        if not isinstance(fic, dict):
            msg = f"fic_settings: expected a JSON object, got {type(fic).__name__}"
            raise InputError(msg)
        unknown = sorted(set(fic) - _FIC_KEYS)
        if unknown:
            msg = f"fic_settings: expected keys from {sorted(_FIC_KEYS)}, got unknown {unknown}"
            raise InputError(msg)
        for key in ("threshold", "smooth", "weight"):
            if key in fic:
                values[key] = _number(fic[key], key)
        if "margin" in fic:
            values["margin_px"] = int(_number(fic["margin"], "margin"))
        if "behaviors" in fic:
            b = fic["behaviors"]
            values["behaviors"] = tuple(b) if isinstance(b, list) else str(b)
        if "resolution" in fic:
            resolution = int(_number(fic["resolution"], "resolution"))
            if not 64 <= resolution <= MAX_RESOLUTION:
                msg = (
                    f"fic_settings.resolution: expected 64..{MAX_RESOLUTION} pixels, "
                    f"got {resolution}"
                )
                raise InputError(msg)
    min_area_px = field_value(form, "min_area_px")
    if min_area_px not in (None, ""):
        values["min_area_px"] = float(parse_int(min_area_px, "min_area_px", 0, 10**9))
    values["motion_model"] = _motion_model(form)
    if isinstance(values.get("behaviors"), str):
        values["behaviors"] = tuple(values["behaviors"])
    return DifferenceSettings(**values), resolution


def _wh(image: np.ndarray) -> tuple[int, int]:
    return image.shape[1], image.shape[0]


@routes.post(f"{PREFIX}/differences", name="ltu.differences")
@ltu_endpoint("differences")
async def differences_service(request: web.Request) -> LtuAnswer:
    form = await read_form(request)
    settings, resolution = difference_options(form)
    mask_type = str(field_value(form, "mask_type", "binary")).strip().lower()
    if mask_type not in MASK_TYPES:
        msg = f"mask_type: expected one of {list(MASK_TYPES)}, got {mask_type!r}"
        raise InputError(msg)
    thickness = parse_int(field_value(form, "mask_thickness", 2), "mask_thickness", 1, 50)
    color = parse_color(field_value(form, "mask_color", "255,255,255"))
    vertices = parse_bool(field_value(form, "vertices", True), "vertices")
    transform = parse_bool(field_value(form, "transform", False), "transform")
    image1 = await image_of(request, "image1")
    image2 = await image_of(request, "image2")
    roi = await optional_image(request, "image1_roi")
    if roi is not None:
        roi = roi if roi.ndim == 2 else cv2.cvtColor(roi, cv2.COLOR_BGR2GRAY)
        if roi.shape != image1.shape[:2]:
            msg = (
                "image1_roi: expected a mask of image1's size "
                f"{image1.shape[1]}x{image1.shape[0]}, "
                f"got {roi.shape[1]}x{roi.shape[0]}"
            )
            raise InputError(msg)

    def work() -> tuple[DifferenceResult, dict[str, Any]]:
        res = differences(image1, image2, settings=settings, resolution=resolution, roi=roi)
        body = ltu_differences(
            res,
            image1_wh=_wh(image1),
            image2_wh=_wh(image2),
            mask_type=mask_type,  # type: ignore[arg-type]
            mask_thickness=thickness,
            mask_color=color,
            vertices=vertices,
            transform=transform,
        )
        return res, body

    res, body = await run_pixels(request, work)
    info = {
        "count": res.count,
        "area_px": res.area_px,
        "compared_px": res.compared_px,
        "not_inspected_px": res.not_inspected_px,
        "channels": "".join(res.channels),
        "model": res.model,
        "registration": {**res.motion.to_dict(), **res.registration.to_dict()},
        "settings": settings.to_dict(),
        "resolution": resolution,
        "image1_wh": list(_wh(image1)),
        "image2_wh": list(_wh(image2)),
    }
    return LtuAnswer(body, score=round(res.score, 4), info=info)


def _png_b64(image: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:  # pragma: no cover
        msg = "PNG encoding failed"
        raise InputError(msg)
    return base64.b64encode(buf.tobytes()).decode("ascii")


@routes.post(f"{PREFIX}/alignmentMatrix", name="ltu.alignmentMatrix")
@ltu_endpoint("alignmentMatrix")
async def alignment_service(request: web.Request) -> LtuAnswer:
    form = await read_form(request)
    resolution = parse_int(
        field_value(form, "resolution", MAX_RESOLUTION), "resolution", 64, MAX_RESOLUTION
    )
    return_image = parse_bool(field_value(form, "return_image", False), "return_image")
    model = _motion_model(form)
    image1 = await image_of(request, "image1")
    image2 = await image_of(request, "image2")

    def work() -> tuple[Alignment, str | None]:
        al = align(image1, image2, model=model, resolution=resolution)
        aligned = None
        if return_image:
            warped = cv2.warpPerspective(
                image2, al.matrix1, _wh(image1), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
            )
            aligned = _png_b64(warped)
        return al, aligned

    al, aligned = await run_pixels(request, work)
    d = al.to_dict()
    result = {"matrix1": d["matrix1"], "matrix2": d["matrix2"], "image": aligned}
    info = {"motion": d["motion"], "registration": d["registration"], "resolution": resolution}
    return LtuAnswer(result, score=round(al.registration.correlation, 4), info=info)


@routes.post(f"{PREFIX}/distance", name="ltu.distance")
@ltu_endpoint("distance")
async def distance_service(request: web.Request) -> LtuAnswer:
    ref = await image_of(request, "refImage", "image1")
    query = await image_of(request, "queryImage", "image2")
    d = await run_pixels(request, distance, ref, query)
    out = d.to_dict()
    return LtuAnswer(out, score=out["distance"], info={"decision": d.decision})


def setup(app: web.Application) -> None:
    """Add differences, alignmentMatrix and distance; their errors take the LTU envelope."""
    register_family(app, LTU_FAMILY)
    app.add_routes(routes)
