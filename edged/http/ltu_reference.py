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

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import cv2
import numpy as np
from aiohttp import web

from edged.checks.align import MOTION_MODELS, Alignment, align
from edged.checks.difference import PRESETS, DifferenceResult, DifferenceSettings, compare
from edged.checks.distance import distance
from edged.checks.ltu_differences import MASK_TYPES, ltu_differences, parse_color
from edged.checks.prepared import PreparedReference, ReferenceParams, prepare_reference
from edged.core.errors import InputError
from edged.http._envelope import LTU_FAMILY, LtuAnswer, ltu_endpoint
from edged.http._families import register_family
from edged.http._form_values import (
    field_value,
    image_of,
    images_of,
    optional_image_bytes,
    parse_bool,
    parse_int,
)
from edged.http._input import (
    RequestForm,
    decode_field,
    limits_of,
    read_form,
    read_image_bytes,
    run_pixels,
)
from edged.http._keys import RUNTIME
from edged.http._refcache import PreparedCache, digest

PREFIX = "/v2/services/image"
MAX_RESOLUTION = 900
_FIC_KEYS = frozenset({"threshold", "smooth", "margin", "resolution", "behaviors", "weight"})

routes = web.RouteTableDef()
A = TypeVar("A")
B = TypeVar("B")

REFERENCE_CACHE = web.AppKey("edged.http.reference_cache", PreparedCache[PreparedReference])
"""The app's prepared-reference cache for ``differences`` (see :mod:`edged.http._refcache`)."""


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
    params = ReferenceParams(  # exactly as checks.difference.differences prepares image1
        resolution=resolution,
        behaviors=settings.behaviors,
        motion_model=settings.motion_model,
        colour=settings.colour,
    )
    image1_data = await read_image_bytes(request, "image1")
    roi_data = await optional_image_bytes(request, "image1_roi")
    max_pixels = limits_of(request.app).max_pixels

    def work(prepared: PreparedReference, image2: np.ndarray) -> _Compared:
        res = compare(prepared, image2, settings)
        body = ltu_differences(
            res,
            image1_wh=prepared.size_wh,
            image2_wh=_wh(image2),
            mask_type=mask_type,  # type: ignore[arg-type]
            mask_thickness=thickness,
            mask_color=color,
            vertices=vertices,
            transform=transform,
        )
        return _Compared(res, body, prepared.size_wh, _wh(image2))

    def decode_and_work(prepared: PreparedReference, image2_data: bytes) -> _Compared:
        return work(prepared, decode_field(image2_data, max_pixels, "image2"))

    async def prepare() -> PreparedReference:
        return await run_pixels(request, _prepare, image1_data, roi_data, params, max_pixels)

    cache = request.app.get(REFERENCE_CACHE)
    key = _cache_key(image1_data, roi_data, params)  # SHA-256: ~0.7 ms per MB
    cached = cache.lookup(key) if cache is not None else None
    if cached is not None:  # the common case: one job, image2 decoded and compared
        image2_data = await read_image_bytes(request, "image2")
        done = await run_pixels(request, decode_and_work, cached, image2_data)
        from_cache = True
    else:  # image1 prepared while image2 is decoded, then compared; image1's error first
        reference = cache.get(key, prepare) if cache is not None else _fresh(prepare)
        (prepared, from_cache), query = await _both(reference, image_of(request, "image2"))
        done = await run_pixels(request, work, prepared, query)
    res = done.result
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
        "image1_wh": list(done.image1_wh),
        "image2_wh": list(done.image2_wh),
        "reference": "cached" if from_cache else "prepared",
    }
    return LtuAnswer(done.body, score=round(res.score, 4), info=info)


@dataclass(frozen=True, slots=True)
class _Compared:
    result: DifferenceResult
    body: dict[str, Any]
    image1_wh: tuple[int, int]
    image2_wh: tuple[int, int]


async def _fresh(
    prepare: Callable[[], Awaitable[PreparedReference]],
) -> tuple[PreparedReference, bool]:
    return await prepare(), False


async def _both(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """Both awaited at once; when both fail, the first one's error is raised."""
    a, b = await asyncio.gather(first, second, return_exceptions=True)
    if isinstance(a, BaseException):
        raise a
    if isinstance(b, BaseException):
        raise b
    return a, b


def _cache_key(
    data: bytes, roi_data: bytes | None, params: ReferenceParams
) -> tuple[str, str | None, ReferenceParams]:
    """What shapes a prepared reference: image1's bytes, the ROI's bytes, the params."""
    return digest(data), (digest(roi_data) if roi_data is not None else None), params


def _prepare(
    data: bytes, roi_data: bytes | None, params: ReferenceParams, max_pixels: int
) -> PreparedReference:
    """Decode image1 (and its ROI mask) and prepare it as ``differences`` does."""
    image1 = decode_field(data, max_pixels, "image1")
    roi = None
    if roi_data is not None:
        roi = decode_field(roi_data, max_pixels, "image1_roi")
        roi = roi if roi.ndim == 2 else cv2.cvtColor(roi, cv2.COLOR_BGR2GRAY)
        if roi.shape != image1.shape[:2]:
            msg = (
                "image1_roi: expected a mask of image1's size "
                f"{image1.shape[1]}x{image1.shape[0]}, "
                f"got {roi.shape[1]}x{roi.shape[0]}"
            )
            raise InputError(msg)
    return prepare_reference([image1], params=params, roi=roi)


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
    image1, image2 = await images_of(request, ("image1",), ("image2",))

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
    ref, query = await images_of(request, ("refImage", "image1"), ("queryImage", "image2"))
    d = await run_pixels(request, distance, ref, query)
    out = d.to_dict()
    return LtuAnswer(out, score=out["distance"], info={"decision": d.decision})


def setup(app: web.Application) -> None:
    """Add differences, alignmentMatrix and distance; their errors take the LTU envelope.

    With a runtime, ``differences`` keeps prepared references in a cache bounded by
    ``http.reference_cache_entries`` and ``http.reference_cache_bytes``.
    """
    register_family(app, LTU_FAMILY)
    runtime = app.get(RUNTIME)
    if runtime is not None:
        http = runtime.settings.http
        app[REFERENCE_CACHE] = PreparedCache(
            max_entries=http.reference_cache_entries,
            max_bytes=http.reference_cache_bytes,
            metrics=runtime.metrics,
        )
    app.add_routes(routes)
