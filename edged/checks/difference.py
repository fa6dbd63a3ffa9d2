"""Differences: where a query departs from its (prepared) reference.

:func:`compare` is the per-frame path: the query is shrunk to the reference's working
size, registered onto it (:mod:`edged.checks.align`), its lighting normalised with
the gain/offset the registration solved for, smoothed, and compared in one pass
against the reference's precomputed per-pixel limits (:mod:`edged.checks.variation`):

- a *single* reference tolerates ``threshold`` grey levels beyond the local 3x3
  min/max of the reference, which absorbs residual sub-pixel misregistration at
  edges (``edge_tolerance_px``) and noise;
- a *variation* model (2+ good images) also tolerates ``var_threshold`` standard
  deviations of what the good images did at each pixel.

Pixels outside the limits form regions (8-connected, at least ``min_area`` working
pixels); each is reported on image1 (the reference) and on image2 (the query), each
in its own image's pixel coordinates. :func:`differences` is the one-shot LTU form:
prepare ``image1``, compare ``image2``.

``image1`` is the reference and ``image2`` the query, as in LTU's ``differences``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import cv2
import numpy as np

from edged.checks import _behaviors
from edged.checks._lighting import CLIP_MARGIN, Lighting, fit_lighting, normalise
from edged.checks._lk import apply, warp
from edged.checks._scale import resize_matrix, working_size
from edged.checks.align import (
    MOTION_MODELS,
    Motion,
    MotionModel,
    Registration,
    UnregisteredError,
    original_matrix,
    register,
)
from edged.checks.prepared import (
    PreparedReference,
    ReferenceParams,
    check_image,
    prepare_reference,
    work_channels,
)
from edged.checks.variation import excess, gaussian_ksize
from edged.core.errors import InputError

MAX_REGIONS = 100

# a*/b* units of chroma tolerance per grey level of the luma's local contrast: colour
# fringes (demosaicking, JPEG 4:2:0) follow luma edges; wrong ink on a flat print does not.
CHROMA_CONTRAST_TOLERANCE = 0.25

LightingModel = Literal["field", "global"]
LIGHTING_MODELS: tuple[str, ...] = get_args(LightingModel)
ColourMode = Literal["auto", "off"]
COLOUR_MODES: tuple[str, ...] = get_args(ColourMode)

# preset -> (threshold grey levels, smooth sigma working px, min area working px).
# The thresholds of presets 1-3 are those of flat areas: next to edges the contrast
# tolerance adds to them, and lighting fields, perspective, JPEG and clipping are
# modelled, not absorbed by a wide threshold (edged < 0.x used 10 / 15 / 20).
PRESETS: dict[int, tuple[float, float, float]] = {
    1: (8.0, 0.0, 4.0),
    2: (9.0, 0.6, 8.0),
    3: (10.0, 0.8, 12.0),
    4: (30.0, 1.2, 30.0),
    5: (45.0, 2.0, 80.0),
}


@dataclass(frozen=True, slots=True)
class DifferenceSettings:
    """How a query is compared (none of these needs the reference prepared again).

    threshold: grey levels tolerated beyond the reference's local range (1..255).
    smooth: Gaussian sigma applied to the registered query, working pixels (0 = none).
    margin_px: band along the compared area's border that is ignored, image1 pixels.
    min_area: smallest region kept, working pixels (presets set it).
    min_area_px: smallest region kept in image1 pixels; overrides ``min_area`` when set.
    behaviors: compared channels (a subset of the reference's).
    weight: sensitivity of the colour channels (S, H) relative to brightness; their
        threshold is ``threshold / weight``.
    var_threshold: standard deviations tolerated (variation models only).
    edge_tolerance_px: radius of the reference's local min/max (0 = pixel-exact).
    contrast_tolerance: fraction of the reference's local contrast (7x7 working pixels)
        added to ``threshold`` (JPEG ringing and blur next to strong edges); flat areas
        keep the bare threshold. Colour channels do not use it.
    motion_model: motion the part may undergo between reference and query; ``auto``
        (default) fits a homography and keeps the simplest model that matches it.
    min_correlation: registration quality below which a query counts as unregistered.
    max_residual_px: local misfit left by the registration (working pixels) beyond
        which the query counts as unregistered instead of differing (0 = no check).
    lighting: ``field`` (default) removes a smooth gain field across the image plus an
        offset; ``global`` one gain and one offset.
    colour: ``auto`` (default) also compares the CIELAB a/b chroma of colour references
        (threshold ``threshold / weight``), so a print in the wrong ink at the same
        brightness is found; grey references stay luma-only; ``off`` compares only
        the ``behaviors`` channels.
    """

    threshold: float = PRESETS[3][0]
    smooth: float = PRESETS[3][1]
    margin_px: int = 0
    min_area: float = PRESETS[3][2]
    min_area_px: float | None = None
    behaviors: tuple[str, ...] = ("L",)
    weight: float = 1.0
    var_threshold: float = 3.0
    edge_tolerance_px: int = 1
    contrast_tolerance: float = 0.08
    motion_model: MotionModel = "auto"
    min_correlation: float = 0.5
    max_residual_px: float = 1.0
    lighting: LightingModel = "field"
    colour: ColourMode = "auto"

    def __post_init__(self) -> None:
        _in_range("threshold", self.threshold, 1, 255)
        _in_range("smooth", self.smooth, 0, 10)
        _in_range("margin", self.margin_px, 0, 10_000)
        _in_range("min_area", self.min_area, 0, 1e9)
        if self.min_area_px is not None:
            _in_range("min_area_px", self.min_area_px, 0, 1e9)
        _in_range("weight", self.weight, 0.05, 20)
        _in_range("var_threshold", self.var_threshold, 0, 100)
        _in_range("edge_tolerance_px", self.edge_tolerance_px, 0, 3)
        _in_range("min_correlation", self.min_correlation, -1, 1)
        _in_range("max_residual_px", self.max_residual_px, 0, 100)
        _in_range("contrast_tolerance", self.contrast_tolerance, 0, 1)
        if self.motion_model not in MOTION_MODELS:
            msg = f"motion model: expected one of {list(MOTION_MODELS)}, got {self.motion_model!r}"
            raise InputError(msg)
        if self.lighting not in LIGHTING_MODELS:
            msg = f"lighting: expected one of {list(LIGHTING_MODELS)}, got {self.lighting!r}"
            raise InputError(msg)
        if self.colour not in COLOUR_MODES:
            msg = f"colour: expected one of {list(COLOUR_MODES)}, got {self.colour!r}"
            raise InputError(msg)
        object.__setattr__(self, "behaviors", _behaviors.parse_behaviors(self.behaviors))

    @classmethod
    def preset(cls, level: int, **overrides: Any) -> DifferenceSettings:
        """LTU ``preset`` 1 (finest detail) .. 5 (smooth, small differences ignored);
        ``overrides`` replace any of the preset's values."""
        if level not in PRESETS:
            msg = f"preset: expected an integer 1..5, got {level!r}"
            raise InputError(msg)
        thr, smooth, area = PRESETS[level]
        values: dict[str, Any] = {"threshold": thr, "smooth": smooth, "min_area": area}
        values.update(overrides)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "smooth": self.smooth,
            "margin_px": self.margin_px,
            "min_area": self.min_area,
            "min_area_px": self.min_area_px,
            "behaviors": "".join(self.behaviors),
            "weight": self.weight,
            "var_threshold": self.var_threshold,
            "edge_tolerance_px": self.edge_tolerance_px,
            "contrast_tolerance": self.contrast_tolerance,
            "motion_model": self.motion_model,
            "min_correlation": self.min_correlation,
            "max_residual_px": self.max_residual_px,
            "lighting": self.lighting,
            "colour": self.colour,
        }


def _in_range(name: str, value: float, low: float, high: float) -> None:
    if not (isinstance(value, int | float) and not isinstance(value, bool)) or not (
        low <= value <= high
    ):
        msg = f"{name}: expected a number in [{low}, {high}], got {value!r}"
        raise InputError(msg)


@dataclass(frozen=True, slots=True)
class DiffRegion:
    """One difference, on image1 (reference) and on image2 (query), original pixels.

    Boxes are ``(x, y, width, height)``; circles ``(x, y, radius)``; vertices the
    region's outline as absolute ``(x, y)`` points. ``area_px`` counts image1 pixels;
    ``contrast`` is the largest excess beyond the limits (grey levels); ``polarity``
    ``"bright"``, ``"dark"`` or ``"mixed"``. ``mask`` is the region's ``(h, w)`` bool
    mask at working size inside ``work_box_xywh`` (image1 geometry).
    """

    box1_xywh: tuple[int, int, int, int]
    box2_xywh: tuple[int, int, int, int]
    circle1_xyr: tuple[float, float, float]
    circle2_xyr: tuple[float, float, float]
    vertices1: tuple[tuple[float, float], ...]
    vertices2: tuple[tuple[float, float], ...]
    area_px: int
    contrast: float
    polarity: str
    work_box_xywh: tuple[int, int, int, int]
    mask: np.ndarray = field(compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        x, y, w, h = self.box1_xywh
        qx, qy, qw, qh = self.box2_xywh
        return {
            "box": {"x": x, "y": y, "width": w, "height": h},
            "query_box": {"x": qx, "y": qy, "width": qw, "height": qh},
            "area_px": self.area_px,
            "contrast": round(self.contrast, 1),
            "polarity": self.polarity,
        }


@dataclass(frozen=True, slots=True)
class DifferenceResult:
    """What :func:`compare` found.

    ``count`` regions were found (``regions`` holds the largest ``MAX_REGIONS``);
    ``score`` is the differing area in percent of the compared area (0 = no
    difference). ``matrix1`` maps image1 pixels to image2 pixels, ``matrix2`` back;
    ``motion`` reads ``matrix1`` as the part's motion. ``model`` is ``"single"`` or
    ``"variation"``. ``excess`` is the ``(H, W)`` uint8 map of grey levels beyond the
    limits at working size in image1 geometry (for heatmaps); ``excess_to_image2``
    maps its pixels to image2 pixels (3x3, a homography when the model is one).
    ``compared_px`` counts the image1 pixels inspected: those both images cover after
    registration, less a margin, inside the ROI; ``not_inspected_px`` the rest of the
    ROI (or image) — never reported as differences. ``lighting_spread`` is the
    largest relative departure of the fitted gain field from one gain (0 = uniform);
    ``channels`` the channels compared.
    """

    count: int
    score: float
    area_px: int
    regions: tuple[DiffRegion, ...]
    registration: Registration
    motion: Motion
    matrix1: np.ndarray = field(compare=False)
    matrix2: np.ndarray = field(compare=False)
    model: str = "single"
    n_references: int = 1
    compared_px: int = 0
    not_inspected_px: int = 0
    lighting_spread: float = 0.0
    channels: tuple[str, ...] = ("L",)
    excess: np.ndarray | None = field(default=None, compare=False, repr=False)
    excess_to_image2: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def max_contrast(self) -> float:
        return max((r.contrast for r in self.regions), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "score": round(self.score, 4),
            "area_px": self.area_px,
            "max_contrast": round(self.max_contrast, 1),
            "model": self.model,
            "n_references": self.n_references,
            "compared_px": self.compared_px,
            "not_inspected_px": self.not_inspected_px,
            "lighting_spread": round(self.lighting_spread, 4),
            "channels": "".join(self.channels),
            "registration": {
                **self.motion.to_dict(),
                "ok": self.registration.ok,
                "correlation": round(self.registration.correlation, 4),
                "method": self.registration.method,
                "gain": round(self.registration.gain, 4),
                "offset": round(self.registration.offset, 3),
                "model": self.registration.model,
                "residual_px": round(self.registration.residual_px, 3),
            },
            "regions": [r.to_dict() for r in self.regions],
        }


# --------------------------------------------------------------------------- comparison


def _luts(gain: float, offset: float) -> tuple[np.ndarray, np.ndarray]:
    """Lookup tables normalising a query's lighting onto the reference's.

    ``(for_bright, for_dark)``: they differ only for (nearly) clipped values, whose true
    level is unknown beyond the clip: a saturated 255 may be brighter than it reads (and
    JPEG turns a saturated area into 250..255 blocks), so it can never be a dark
    defect; a value within ``CLIP_MARGIN`` of 0 can never be a bright one.
    """
    v = (np.arange(256, dtype=np.float64) - offset) / gain
    base = np.clip(np.rint(v), 0, 255).astype(np.uint8)
    for_bright, for_dark = base.copy(), base.copy()
    for_bright[: CLIP_MARGIN + 1] = 0
    for_dark[255 - CLIP_MARGIN :] = 255
    return for_bright, for_dark


def _normalise(
    ch: np.ndarray, name: str, gain: float, offset: float, sigma: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """Lighting-normalise (L, V) and smooth a registered channel in one pass.

    Returns ``(image, for_dark)``; ``for_dark`` is None unless the channel has clipped
    pixels (0 or 255), whose true level is unknown beyond the clip (see :func:`_luts`).
    """
    photometric = name in _behaviors.PHOTOMETRIC and abs(gain) > 1e-3
    if photometric:
        lo, hi, _, _ = cv2.minMaxLoc(ch)
        if lo <= CLIP_MARGIN or hi >= 255 - CLIP_MARGIN:
            lut_b, lut_d = _luts(gain, offset)
            bright, dark = cv2.LUT(ch, lut_b), cv2.LUT(ch, lut_d)
            if sigma > 0:
                k = gaussian_ksize(sigma)
                bright = cv2.GaussianBlur(bright, (k, k), sigma, borderType=cv2.BORDER_REPLICATE)
                dark = cv2.GaussianBlur(dark, (k, k), sigma, borderType=cv2.BORDER_REPLICATE)
            return bright, dark
    alpha, beta = (1.0 / gain, -offset / gain) if photometric else (1.0, 0.0)
    if sigma > 0:
        kernel = cv2.getGaussianKernel(gaussian_ksize(sigma), sigma, cv2.CV_32F)
        out = cv2.sepFilter2D(
            ch,
            cv2.CV_8U,
            kernel * np.float32(alpha),
            kernel,
            delta=beta,
            borderType=cv2.BORDER_REPLICATE,
        )
        return out, None
    if photometric:
        return cv2.addWeighted(ch, alpha, ch, 0.0, beta), None
    return ch, None


def _compared_area(
    ref: PreparedReference, ref_to_query: np.ndarray, query_wh: tuple[int, int], margin: int
) -> np.ndarray:
    """uint8 mask (255) of reference working pixels the query covers, less ``margin``."""
    qw, qh = query_wh
    m = 1 + margin  # one pixel more: interpolation needs both neighbours
    corners = np.array([[m, m], [qw - 1 - m, m], [qw - 1 - m, qh - 1 - m], [m, qh - 1 - m]], float)
    poly = apply(np.linalg.inv(ref_to_query), corners)
    w, h = ref.work_wh
    area: np.ndarray = np.zeros((h, w), np.uint8)
    if qw - 1 - 2 * m > 0 and qh - 1 - 2 * m > 0:
        cv2.fillConvexPoly(area, np.round(poly * 16).astype(np.int32), 255, cv2.LINE_8, 4)
    if margin > 0:
        area[:margin], area[h - margin :] = 0, 0
        area[:, :margin], area[:, w - margin :] = 0, 0
    if ref.roi is not None:
        area = cv2.bitwise_and(area, ref.roi)
    return area


def compare(
    reference: PreparedReference,
    image: np.ndarray,
    settings: DifferenceSettings | None = None,
) -> DifferenceResult:
    """Compare a query with a prepared reference.

    image: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR query (image2); it must be
        of the same kind as the reference (grey/colour) only for colour behaviours.

    Raises UnregisteredError (HTTP 422) when the query does not register, InputError
    when the settings ask for channels the reference was not prepared with.
    """
    settings = settings or DifferenceSettings()
    check_image(image, "query image")
    names = _behaviors.channel_names(settings.behaviors)
    if settings.colour == "auto" and reference.colour and image.ndim == 3:
        names = (*names, *(n for n in _behaviors.CHROMA if n in reference.channels))
    missing = [n for n in names if n not in reference.channels]
    if missing:
        msg = (
            f"behaviors {''.join(settings.behaviors)!r}: the reference was prepared for "
            f"{''.join(reference.params.behaviors)!r}; prepare it again with these behaviours"
        )
        raise InputError(msg)
    q_wh = (image.shape[1], image.shape[0])
    q_work = working_size(q_wh, reference.params.resolution)
    grey, chans = work_channels(image, q_work, names)
    reg = register(
        reference.registration,
        grey,
        model=settings.motion_model,
        min_correlation=settings.min_correlation,
        max_residual_px=settings.max_residual_px,
    )
    if not reg.ok:
        msg = f"the query does not register onto the reference: {reg.reason}"
        raise UnregisteredError(msg, reg)
    a = reg.ref_to_query
    scale = reference.scale
    # Inspected: what the query covers, less the smoothing and edge-tolerance reach (the
    # pixels there would read the query's replicated border) and the user's margin.
    margin = (
        math.ceil(settings.margin_px * scale)
        + math.ceil(2.5 * settings.smooth)
        + settings.edge_tolerance_px
    )
    area = _compared_area(reference, a, q_work, margin)

    bright_all: np.ndarray | None = None
    dark_all: np.ndarray | None = None
    lighting: Lighting | None = None
    for name in names:
        if name in _behaviors.CHROMA:
            continue
        ch = warp(chans[name], a, reference.work_wh)
        if name in _behaviors.PHOTOMETRIC and settings.lighting == "field" and lighting is None:
            lighting = fit_lighting(
                reference.channels["L"].mean,
                ch if name == "L" else warp(grey, a, reference.work_wh),
                area,
                gain=reg.gain,
                offset=reg.offset,
            )
        if lighting is not None and lighting.spread > 0 and name in _behaviors.PHOTOMETRIC:
            ch, for_dark = normalise(ch, lighting)
            if settings.smooth > 0:
                k = gaussian_ksize(settings.smooth)
                ch = cv2.GaussianBlur(ch, (k, k), settings.smooth, borderType=cv2.BORDER_REPLICATE)
                if for_dark is not None:
                    for_dark = cv2.GaussianBlur(
                        for_dark, (k, k), settings.smooth, borderType=cv2.BORDER_REPLICATE
                    )
        else:
            gain, offset = (
                (lighting.gain, lighting.offset) if lighting is not None else (reg.gain, reg.offset)
            )
            ch, for_dark = _normalise(ch, name, gain, offset, settings.smooth)
        thr = (
            settings.threshold / settings.weight
            if name in _behaviors.COLOUR
            else settings.threshold
        )
        lim = reference.limits(
            name,
            abs_threshold=thr,
            var_threshold=settings.var_threshold,
            smooth_sigma=settings.smooth,
            edge_tolerance_px=settings.edge_tolerance_px,
            contrast_tolerance=0.0 if name in _behaviors.COLOUR else settings.contrast_tolerance,
        )
        b, d = excess(lim, ch, for_dark=for_dark)
        bright_all = b if bright_all is None else cv2.max(bright_all, b)
        dark_all = d if dark_all is None else cv2.max(dark_all, d)
    if any(n in _behaviors.CHROMA for n in names):
        b, d = _chroma_excess(reference, chans, a, grey.shape[::-1], settings)
        assert bright_all is not None
        assert dark_all is not None
        bright_all, dark_all = cv2.max(bright_all, b), cv2.max(dark_all, d)
    assert bright_all is not None
    assert dark_all is not None
    bright_all = cv2.bitwise_and(bright_all, area)
    dark_all = cv2.bitwise_and(dark_all, area)
    exc = cv2.max(bright_all, dark_all)

    min_area = (
        settings.min_area_px * scale * scale
        if settings.min_area_px is not None
        else settings.min_area
    )
    m1 = original_matrix(a, reference.size_wh, reference.work_wh, q_wh, q_work)
    regions, count, diff_px = _regions(
        exc, bright_all, dark_all, min_area, reference, a, q_wh, q_work, settings.threshold
    )
    compared = int(cv2.countNonZero(area))
    inspectable = (
        int(cv2.countNonZero(reference.roi))
        if reference.roi is not None
        else reference.work_wh[0] * reference.work_wh[1]
    )
    center = ((reference.size_wh[0] - 1) / 2.0, (reference.size_wh[1] - 1) / 2.0)
    return DifferenceResult(
        count=count,
        score=100.0 * diff_px / compared if compared else 0.0,
        area_px=round(diff_px / (scale * scale)),
        regions=regions,
        registration=reg,
        motion=Motion.of(m1, center),
        matrix1=m1,
        matrix2=np.linalg.inv(m1),
        model=reference.kind,
        n_references=reference.n_images,
        compared_px=round(compared / (scale * scale)),
        not_inspected_px=round(max(inspectable - compared, 0) / (scale * scale)),
        lighting_spread=lighting.spread if lighting is not None else 0.0,
        channels=names,
        excess=exc,
        excess_to_image2=np.linalg.inv(resize_matrix(q_wh, q_work)) @ a,
    )


def _chroma_excess(
    reference: PreparedReference,
    chans: dict[str, np.ndarray],
    ref_to_query: np.ndarray,
    q_work: tuple[int, int],
    settings: DifferenceSettings,
) -> tuple[np.ndarray, np.ndarray]:
    """Bright/dark excess of the half-resolution chroma, at working size (uint8)."""
    half = _behaviors.chroma_size(reference.work_wh)
    q_half = _behaviors.chroma_size(q_work)
    m = (
        resize_matrix(q_work, q_half)
        @ ref_to_query
        @ np.linalg.inv(resize_matrix(reference.work_wh, half))
    )
    sigma = settings.smooth / 2.0
    bright: np.ndarray | None = None
    dark: np.ndarray | None = None
    for name in _behaviors.CHROMA:
        ch = warp(chans[name], m, half)
        if sigma > 0:
            k = gaussian_ksize(sigma)
            ch = cv2.GaussianBlur(ch, (k, k), sigma, borderType=cv2.BORDER_REPLICATE)
        lim = reference.limits(
            name,
            abs_threshold=settings.threshold / settings.weight,
            var_threshold=settings.var_threshold,
            smooth_sigma=sigma,
            edge_tolerance_px=settings.edge_tolerance_px,
            contrast_tolerance=CHROMA_CONTRAST_TOLERANCE,
        )
        b, d = excess(lim, ch)
        bright = b if bright is None else cv2.max(bright, b)
        dark = d if dark is None else cv2.max(dark, d)
    assert bright is not None
    assert dark is not None
    size = reference.work_wh
    return (
        cv2.resize(bright, size, interpolation=cv2.INTER_LINEAR),
        cv2.resize(dark, size, interpolation=cv2.INTER_LINEAR),
    )


def _regions(
    exc: np.ndarray,
    bright: np.ndarray,
    dark: np.ndarray,
    min_area: float,
    ref: PreparedReference,
    ref_to_query: np.ndarray,
    q_wh: tuple[int, int],
    q_work: tuple[int, int],
    threshold: float,
) -> tuple[tuple[DiffRegion, ...], int, int]:
    """Connected regions of ``exc > 0`` of at least ``min_area`` working pixels.

    A region's extent (box, outline, area) is where it differs by at least half its
    peak difference (excess + ``threshold``): a blurred edge crosses half its contrast
    where the edge truly is, so a strong defect's box does not grow with its blur halo
    however low the threshold; a faint one keeps all its pixels. A region is kept when
    its extent has ``min_area`` pixels or its whole footprint 1.5 times as many.
    """
    if cv2.countNonZero(exc) == 0:
        return (), 0, 0
    binary = cv2.threshold(exc, 0, 255, cv2.THRESH_BINARY)[1]
    found = cv2.findNonZero(binary)
    # Label only the span of the differing pixels (usually a small part of the image);
    # fragments one pixel apart (a scratch crossing texture) form one region.
    ox, oy, ow, oh = cv2.boundingRect(found)
    sub = binary[oy : oy + oh, ox : ox + ow]
    grouped = cv2.dilate(sub, np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(grouped, connectivity=8)
    on = sub > 0
    exc_sub = exc[oy : oy + oh, ox : ox + ow]
    peaks = np.zeros(n, np.float64)
    np.maximum.at(peaks, labels[on], exc_sub[on])
    cutoff = np.maximum((peaks - threshold) / 2.0, 0.0)
    footprint = np.bincount(labels[on], minlength=n)  # every pixel beyond the limits
    sub = np.where(on & (exc_sub > cutoff[labels]), np.uint8(255), np.uint8(0))
    areas = np.bincount(labels[sub > 0], minlength=n)  # differing pixels per region
    # Kept when its extent reaches min_area, or its whole footprint 1.5x that (a defect
    # half hidden by a wide tolerance, say next to a barcode, keeps a small core).
    floor = max(min_area, 1.0)
    keep = np.flatnonzero((areas[1:] >= floor) | (footprint[1:] >= 1.5 * floor)) + 1
    if keep.size == 0:
        return (), 0, 0
    diff_px = int(areas[keep].sum())
    order = keep[np.argsort(-areas[keep], kind="stable")][:MAX_REGIONS]
    to_orig1 = np.linalg.inv(resize_matrix(ref.size_wh, ref.work_wh))
    to_orig2 = np.linalg.inv(resize_matrix(q_wh, q_work)) @ ref_to_query
    sx, sy = ref.work_wh[0] / ref.size_wh[0], ref.work_wh[1] / ref.size_wh[1]
    out = []
    for k in order:
        gx, gy, gw, gh = (int(v) for v in stats[k, :4])
        own = (labels[gy : gy + gh, gx : gx + gw] == k) & (sub[gy : gy + gh, gx : gx + gw] > 0)
        bx, by, w, h = cv2.boundingRect(own.astype(np.uint8))
        crop = own[by : by + h, bx : bx + w]
        x, y, area = ox + gx + bx, oy + gy + by, int(areas[k])
        contours, _ = cv2.findContours(
            crop.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        pts = max(contours, key=len).reshape(-1, 2).astype(np.float64) + np.array([x, y], float)
        ex = exc[y : y + h, x : x + w][crop]
        nb = int(np.count_nonzero(bright[y : y + h, x : x + w][crop]))
        nd = int(np.count_nonzero(dark[y : y + h, x : x + w][crop]))
        polarity = "mixed" if nb and nd else ("bright" if nb else "dark")
        # Box edges scale exactly; vertices map through the pixel-centre geometry.
        box1 = _box_edges(x / sx, y / sy, (x + w) / sx, (y + h) / sy, ref.size_wh)
        corners = np.array(
            [
                [x - 0.5, y - 0.5],
                [x + w - 0.5, y - 0.5],
                [x + w - 0.5, y + h - 0.5],
                [x - 0.5, y + h - 0.5],
            ]
        )
        c2 = apply(to_orig2, corners)
        box2 = _box_edges(
            c2[:, 0].min() + 0.5,
            c2[:, 1].min() + 0.5,
            c2[:, 0].max() + 0.5,
            c2[:, 1].max() + 0.5,
            q_wh,
        )
        v1, v2 = apply(to_orig1, pts), apply(to_orig2, pts)
        out.append(
            DiffRegion(
                box1_xywh=box1,
                box2_xywh=box2,
                circle1_xyr=_circle(v1),
                circle2_xyr=_circle(v2),
                vertices1=tuple((round(float(px), 2), round(float(py), 2)) for px, py in v1),
                vertices2=tuple((round(float(px), 2), round(float(py), 2)) for px, py in v2),
                area_px=round(area / (sx * sy)),
                contrast=float(ex.max()) if ex.size else 0.0,
                polarity=polarity,
                work_box_xywh=(x, y, w, h),
                mask=crop,
            )
        )
    return tuple(out), int(keep.size), diff_px


def _box_edges(
    x0: float, y0: float, x1: float, y1: float, size_wh: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Integer box covering edge coordinates ``[x0, x1) x [y0, y1)``, clipped to the image."""
    ix0 = max(0, math.floor(x0 + 1e-6))
    iy0 = max(0, math.floor(y0 + 1e-6))
    ix1 = min(size_wh[0], math.ceil(x1 - 1e-6))
    iy1 = min(size_wh[1], math.ceil(y1 - 1e-6))
    return ix0, iy0, max(1, ix1 - ix0), max(1, iy1 - iy0)


def _circle(pts: np.ndarray) -> tuple[float, float, float]:
    (cx, cy), r = cv2.minEnclosingCircle(pts.astype(np.float32).reshape(-1, 1, 2))
    return round(float(cx), 2), round(float(cy), 2), round(float(r) + 0.5, 2)


def differences(
    image1: np.ndarray,
    image2: np.ndarray,
    *,
    settings: DifferenceSettings | None = None,
    resolution: int = 900,
    roi: np.ndarray | None = None,
) -> DifferenceResult:
    """One-shot LTU ``differences``: prepare ``image1`` (reference), compare ``image2``.

    image1, image2: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR; sizes may differ.
    resolution: longest side of the working size (LTU caps it at 900).
    roi: optional ``(H, W)`` uint8 mask of image1, non-zero = compared.
    """
    settings = settings or DifferenceSettings()
    params = ReferenceParams(
        resolution=resolution,
        behaviors=settings.behaviors,
        motion_model=settings.motion_model,
        colour=settings.colour,
    )
    prepared = prepare_reference([image1], params=params, roi=roi)
    return compare(prepared, image2, settings)
