"""LTU image services that compare two images: differences, alignmentMatrix, distance.

``POST /v2/services/image/differences`` (also ``imagesDifferences``, the path of the
document's example) — ``image1`` (reference) and ``image2`` (query) as multipart
file parts, base64 fields or URLs; options ``preset`` (1-5, default 3),
``fic_settings`` (JSON: ``threshold`` on the document's scale — default 0.6, higher
is stricter; edged maps it to grey levels ``preset's threshold * 0.6 / threshold``,
and takes grey levels directly as its own ``threshold_grey`` —, ``smooth``,
``margin``, ``resolution`` (default 400, at most 900), ``behaviors`` (letters of
``HSV``, plus edged's ``L`` luma, the default), ``weight``), ``transform``,
``image1_roi`` (a mask image the size of image1: non-zero is compared, zero is
excluded), ``mask_type`` binary | contours | none, ``mask_thickness``,
``mask_color`` (``R,G,B`` or ``R,G,B,A``), ``vertices``; edged extras
``motion_model`` (default auto: a homography when the part tilts, else the
simplest model that fits) and ``min_area_px``. Result: see
:mod:`edged.checks.ltu_differences`; ``details.score`` is the distance between the
two images (``2 * sqrt(1 - correlation)`` of the registered pair, as the distance
service), ``details.info.count`` the number of regions, ``info.area_per`` the
differing area in percent of the compared area.

``POST /v2/services/image/alignmentMatrix`` — ``image1``, ``image2``, ``resolution``
(default 400; any size from 64 to 4096), ``return_image``, ``motion_model`` (default
auto): ``matrix1`` (apply to image 1 to align it on image 2) and ``matrix2``
(image 2 on image 1), flat row-major lists of 9, and with ``return_image`` the
aligned image (image2 resampled onto image1, an image object); ``details.info.reference``
says whether image1 was prepared or came from the cache that ``differences`` uses.

``POST /v2/services/image/distance`` — ``refImage`` and ``queryImage`` (``image1`` /
``image2``, or two parts both named ``image`` as the document's cUrl sends them):
the document's ``distance``, ``scores``, ``query``/``reference`` and
``details.info`` ``{distance, decision}`` (``Match`` below 1); a repeated reference
image is prepared once (``details.info.reference``: ``cached`` or ``prepared``).

Every service also answers GET (fields from the query), as the document says.

A pair that does not register answers 422 with the reason; bad input 400. Input
parsing, the analysis gate and the envelope are the image services'
(:mod:`edged.http._input`, :mod:`edged.http._envelope`); the API key is the app's.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

import cv2
import numpy as np
from aiohttp import web

from edged.checks import image_object
from edged.checks.align import (
    MOTION_MODELS,
    Alignment,
    AlignmentReference,
    align_prepared,
    prepare_alignment,
)
from edged.checks.difference import PRESETS, DifferenceResult, DifferenceSettings, compare
from edged.checks.distance import DistanceReference, distance_prepared, prepare_distance
from edged.checks.ltu_differences import MASK_TYPES, flat_matrix, ltu_differences, parse_color
from edged.checks.ltu_distance import ltu_distance
from edged.checks.prepared import PreparedReference, ReferenceParams, prepare_reference
from edged.core.errors import InputError
from edged.http._envelope import LTU_FAMILY, LtuAnswer, ltu_endpoint
from edged.http._families import register_family
from edged.http._form_values import (
    field_value,
    image_bytes_of,
    image_of,
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
    read_image_field,
    run_pixels,
)
from edged.http._keys import RUNTIME
from edged.http._refcache import PreparedCache, digest
from edged.imaging.png_write import encode_png

PREFIX = "/v2/services/image"
MAX_RESOLUTION = 900
DEFAULT_RESOLUTION = 400
MAX_ALIGN_RESOLUTION = 4096
DOC_THRESHOLD = 0.6
"""The document's default ``fic_settings.threshold``; it maps to the preset's grey levels."""
_FIC_KEYS = frozenset(
    {"threshold", "threshold_grey", "smooth", "margin", "resolution", "behaviors", "weight"}
)

A = TypeVar("A")
B = TypeVar("B")

Prepared = PreparedReference | AlignmentReference | DistanceReference
"""What the cache keeps: image1 prepared for ``differences``, ``alignmentMatrix`` or
``distance``."""
REFERENCE_CACHE = web.AppKey("edged.http.reference_cache", PreparedCache[Prepared])
"""The app's prepared-reference cache for ``differences``, ``alignmentMatrix`` and ``distance`` (see
:mod:`edged.http._refcache`); each key starts with its service's name."""
P = TypeVar("P", PreparedReference, AlignmentReference, DistanceReference)


def _kept(value: Prepared | None, kind: type[P]) -> P | None:
    """``value`` as the kind its key promises (keys carry the service's name)."""
    if value is None:
        return None
    if not isinstance(value, kind):  # pragma: no cover - keys differ per service
        msg = f"reference cache: expected a {kind.__name__}, got {type(value).__name__}"
        raise TypeError(msg)
    return value


async def _prepared(
    request: web.Request, key: Hashable, prepare: Callable[[], Awaitable[P]], kind: type[P]
) -> tuple[P, bool]:
    """``(image1 prepared, from the cache)``: kept, shared with a request preparing the
    same, or prepared now (and kept); without a cache, prepared now."""
    cache = request.app.get(REFERENCE_CACHE)
    if cache is None:
        return await prepare(), False
    value, hit = await cache.get(key, prepare)
    kept = _kept(value, kind)
    assert kept is not None
    return kept, hit


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
    resolution = DEFAULT_RESOLUTION
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
        for key in ("smooth", "weight"):
            if key in fic:
                values[key] = _number(fic[key], key)
        if "threshold" in fic:
            doc = _number(fic["threshold"], "threshold")
            if not 0.0 < doc <= 100.0:
                msg = (
                    "fic_settings.threshold: expected a number in (0, 100] (default 0.6, "
                    f"higher is stricter; grey levels go in threshold_grey), got {doc:g}"
                )
                raise InputError(msg)
            values["threshold"] = min(255.0, max(1.0, threshold * DOC_THRESHOLD / doc))
        if "threshold_grey" in fic:
            values["threshold"] = _number(fic["threshold_grey"], "threshold_grey")
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
    cached = _kept(cache.lookup(key), PreparedReference) if cache is not None else None
    if cached is not None:  # the common case: one job, image2 decoded and compared
        image2_data = await read_image_bytes(request, "image2")
        done = await run_pixels(request, decode_and_work, cached, image2_data)
        from_cache = True
    else:  # image1 prepared while image2 is decoded, then compared; image1's error first
        reference = _prepared(request, key, prepare, PreparedReference)
        (prepared, from_cache), query = await _both(reference, image_of(request, "image2"))
        done = await run_pixels(request, work, prepared, query)
    res = done.result
    correlation = max(0.0, min(1.0, float(res.registration.correlation)))
    info = {
        "count": res.count,
        "area_per": round(res.score, 4),
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
    score = round(2.0 * math.sqrt(1.0 - correlation), 6)
    return LtuAnswer(done.body, score=score, info=info)


@dataclass(frozen=True, slots=True)
class _Compared:
    result: DifferenceResult
    body: dict[str, Any]
    image1_wh: tuple[int, int]
    image2_wh: tuple[int, int]


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
) -> tuple[str, str, str | None, ReferenceParams]:
    """What shapes a prepared reference: image1's bytes, the ROI's bytes, the params."""
    roi = digest(roi_data) if roi_data is not None else None
    return "differences", digest(data), roi, params


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


def _prepare_alignment(data: bytes, resolution: int, max_pixels: int) -> AlignmentReference:
    """Decode image1 and prepare it as ``alignmentMatrix`` registers onto it."""
    return prepare_alignment(decode_field(data, max_pixels, "image1"), resolution=resolution)


def _png_b64(image: np.ndarray) -> str:
    return base64.b64encode(encode_png(image)).decode("ascii")


@ltu_endpoint("alignmentMatrix")
async def alignment_service(request: web.Request) -> LtuAnswer:
    form = await read_form(request)
    resolution = parse_int(
        field_value(form, "resolution", DEFAULT_RESOLUTION),
        "resolution",
        64,
        MAX_ALIGN_RESOLUTION,
    )
    return_image = parse_bool(field_value(form, "return_image", False), "return_image")
    model = _motion_model(form)
    image1_data = await read_image_bytes(request, "image1")
    max_pixels = limits_of(request.app).max_pixels

    async def prepare() -> AlignmentReference:
        return await run_pixels(request, _prepare_alignment, image1_data, resolution, max_pixels)

    # A repeated image1 (one golden image, many queries) is decoded and prepared once.
    key = ("alignmentMatrix", digest(image1_data), resolution)
    reference = _prepared(request, key, prepare, AlignmentReference)
    (ref, from_cache), image2 = await _both(reference, image_of(request, "image2"))

    def work() -> tuple[Alignment, str | None]:
        al = align_prepared(ref, image2, model=model)
        aligned = None
        if return_image:
            warped = cv2.warpPerspective(
                image2, al.matrix1, ref.size_wh, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
            )
            aligned = _png_b64(warped)
        return al, aligned

    al, aligned = await run_pixels(request, work)
    d = al.to_dict()
    result = {
        "matrix1": flat_matrix(al.matrix1),
        "matrix2": flat_matrix(al.matrix2),
        "image": image_object(aligned),
    }
    info = {
        "motion": d["motion"],
        "registration": d["registration"],
        "resolution": resolution,
        "correlation": round(al.registration.correlation, 4),
        "reference": "cached" if from_cache else "prepared",
    }
    return LtuAnswer(result, info=info, message="Alignment Matrices properly calculated")


def _prepare_distance(data: bytes, field: str, max_pixels: int) -> DistanceReference:
    """Decode the reference image and prepare it as ``distance`` compares with it."""
    return prepare_distance(decode_field(data, max_pixels, field))


@ltu_endpoint("distance")
async def distance_service(request: web.Request) -> LtuAnswer:
    form = await read_form(request)
    if len(form.parts("image")) == 2 and "refImage" not in form.files:
        # the document's cUrl: -F image=@image1.jpg -F image=@image2.jpg
        field, ref_data = "image", await read_image_bytes(request, "image", 0)
        query_image = read_image_field(request, "image", 1)
    else:
        field, ref_data = await image_bytes_of(request, "refImage", "image1")
        query_image = image_of(request, "queryImage", "image2")
    max_pixels = limits_of(request.app).max_pixels

    async def prepare() -> DistanceReference:
        return await run_pixels(request, _prepare_distance, ref_data, field, max_pixels)

    # A repeated reference is decoded and prepared once (the cache differences uses).
    reference = _prepared(request, ("distance", digest(ref_data)), prepare, DistanceReference)
    (ref, from_cache), query = await _both(reference, query_image)
    d = await run_pixels(request, distance_prepared, ref, query)
    result = ltu_distance(d, ref_wh=ref.size_wh, query_wh=_wh(query))
    decision = "Match" if d.distance < 1.0 else "No match"
    info = {
        "distance": result["distance"],
        "decision": decision,
        "edged_decision": d.decision,
        "reference": "cached" if from_cache else "prepared",
    }
    message = f"Decision from distance calculation: {decision}"
    return LtuAnswer(result, info=info, message=message, extra={"source": {}})


def setup(app: web.Application) -> None:
    """Add differences (also as imagesDifferences), alignmentMatrix and distance, for
    POST and GET; their errors take the LTU envelope.

    With a runtime, ``differences``, ``alignmentMatrix`` and ``distance`` keep prepared
    references in one cache bounded by ``http.reference_cache_entries`` and
    ``http.reference_cache_bytes``.
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
    services = {
        "differences": differences_service,
        "imagesDifferences": differences_service,
        "alignmentMatrix": alignment_service,
        "distance": distance_service,
    }
    for name, handler in services.items():
        app.router.add_post(f"{PREFIX}/{name}", handler, name=f"ltu.{name}")
        app.router.add_get(f"{PREFIX}/{name}", handler, name=f"ltu.{name}.get", allow_head=False)
