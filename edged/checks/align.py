"""Registration: the transform that maps a reference image onto a query image.

Parts never sit exactly where the reference did. :func:`register` estimates the
part's motion in two stages:

1. **Coarse, robust** (:mod:`edged.checks._coarse`): phase correlation at the
   coarsest pyramid level, refined there; when that does not correlate convincingly
   (rotation, scale, large motion), ORB features of the query matched against the
   reference's precomputed features with RANSAC on the recipe's motion model
   (translation, euclidean, similarity or affine), then the identity; the start
   that correlates best wins.
2. **Fine, sub-pixel** (:mod:`edged.checks._lk`): inverse-compositional
   Lucas-Kanade down the pyramid, with the reference's gradients, design and normal
   matrices precomputed and a gain/offset term solved jointly so lighting drift does
   not bias the geometry; the lighting is then refitted robustly (a large defect is
   not lighting).

A registration that does not hold (normalised correlation after alignment below
``min_correlation``, too little overlap, an implausible scale) is reported with
``ok=False`` and the reason, never replaced by a silent identity transform.

Everything that depends on the reference alone lives in a
:class:`RegistrationTemplate`, built once when the reference is stored.

Coordinates: ``ref_to_query`` is a 3x3 matrix mapping reference pixel coordinates
``(x, y, 1)`` to query pixel coordinates, in the images' *working* geometry (see
:mod:`edged.checks._scale`); :class:`Alignment` gives the same in original pixels.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import cv2
import numpy as np

from edged.checks._coarse import NO_POINTS, FeatureMatch, features, orb, phase
from edged.checks._image import to_grey
from edged.checks._lk import Fit, Level, apply, lucas_kanade, make_level, pyramid, residual
from edged.checks._scale import resize_matrix, shrink, working_size
from edged.core.errors import InputError, RegistrationError

MotionModel = Literal["translation", "euclidean", "similarity", "affine", "homography", "auto"]
MOTION_MODELS: tuple[str, ...] = get_args(MotionModel)
# "auto": similarity, refined as a homography at the fine levels, and then the simplest
# of similarity, affine and homography that stays within AUTO_TOLERANCE_PX of it.
AUTO_TOLERANCE_PX = 0.2
MAX_RESIDUAL_PX = 1.0  # default residual check: local misfit beyond this fails, working px

_FINE_LEVEL_MAX_PX = 200_000  # the finest Lucas-Kanade level has at most this many pixels
_COARSE_MIN_SIDE = 48  # the coarsest level keeps at least this many pixels per side
_FEATURE_MAX_SIDE = 512  # ORB runs on the first pyramid level at most this long
_CONFIDENT_CORRELATION = 0.8  # a coarse fit this good skips the feature matching


@dataclass(slots=True, eq=False)
class ReferenceFeatures:
    """A reference's ORB features, detected on first use: most queries register by
    phase correlation alone, so a reference prepared for one query (LTU
    ``differences``) usually never needs them. Thread-safe."""

    image: np.ndarray | None  # the feature level's (h, w) uint8 image, until detected
    level: int
    roi: np.ndarray | None
    keypoints_xy: np.ndarray | None = None  # (K, 2) float32, working pixels
    descriptors: np.ndarray | None = None  # (K, 32) uint8
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def known(
        cls, keypoints_xy: np.ndarray, descriptors: np.ndarray, level: int
    ) -> ReferenceFeatures:
        return cls(None, level, None, _keypoints(keypoints_xy), _descriptors(descriptors))

    def get(self) -> tuple[np.ndarray, np.ndarray]:
        """``(keypoints_xy, descriptors)``, detecting them the first time."""
        with self.lock:
            if self.keypoints_xy is None or self.descriptors is None:
                assert self.image is not None
                kp, des = orb(self.image, self.level, self.roi)
                self.keypoints_xy, self.descriptors = _keypoints(kp), _descriptors(des)
                self.image, self.roi = None, None
            return self.keypoints_xy, self.descriptors


def _keypoints(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).reshape(-1, 2)


def _descriptors(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.uint8).reshape(-1, 32)


@dataclass(frozen=True, slots=True, eq=False)
class RegistrationTemplate:
    """What registration needs from one reference, computed once (:func:`prepare_registration`).

    ``size_wh`` is the reference's working size; keypoints are in working pixels
    (detected on first use, see :class:`ReferenceFeatures`).
    """

    size_wh: tuple[int, int]
    features: ReferenceFeatures
    feature_level: int
    levels: tuple[Level, ...]  # fine -> coarse
    window: np.ndarray  # Hanning window for phase correlation at the coarsest level

    @property
    def keypoints_xy(self) -> np.ndarray:
        """``(K, 2)`` float32 ORB keypoints, working pixels."""
        return self.features.get()[0]

    @property
    def descriptors(self) -> np.ndarray:
        """``(K, 32)`` uint8 ORB descriptors."""
        return self.features.get()[1]

    @property
    def fine_level(self) -> int:
        return self.levels[0].k

    @property
    def coarse_level(self) -> int:
        return self.levels[-1].k

    def arrays(self) -> dict[str, np.ndarray]:
        """The precomputed data worth persisting (the rest is derived in milliseconds)."""
        return {"keypoints_xy": self.keypoints_xy, "descriptors": self.descriptors}


@dataclass(frozen=True, slots=True)
class Registration:
    """Outcome of registering a query onto a reference (working coordinates).

    ``ref_to_query`` maps reference pixels to query pixels (3x3). ``ok`` is False when
    the registration does not hold; ``reason`` then says why. ``gain``/``offset``
    describe the lighting change: ``query ~ gain * reference + offset``.
    ``correlation`` is the normalised cross-correlation of the aligned images;
    ``residual_px`` the local misfit left (upper quartile of per-tile shifts, working
    pixels); ``model`` the motion model used (what ``auto`` resolved to).
    """

    ok: bool
    ref_to_query: np.ndarray = field(compare=False)
    model: str
    method: str  # "features", "phase" or "identity": where the coarse estimate came from
    correlation: float
    inliers: int
    matches: int
    iterations: int
    gain: float
    offset: float
    overlap: float
    reason: str = ""
    residual_px: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "model": self.model,
            "method": self.method,
            "correlation": round(self.correlation, 4),
            "inliers": self.inliers,
            "matches": self.matches,
            "iterations": self.iterations,
            "gain": round(self.gain, 4),
            "offset": round(self.offset, 3),
            "overlap": round(self.overlap, 4),
            "residual_px": round(self.residual_px, 3),
            "reason": self.reason,
        }


class UnregisteredError(RegistrationError):
    """A query did not register onto its reference; ``registration`` says how far it got."""

    def __init__(self, msg: str, registration: Registration) -> None:
        super().__init__(msg)
        self.registration = registration


@dataclass(frozen=True, slots=True)
class Motion:
    """A transform read as a part's motion: shift of the reference centre, rotation, scale.

    ``angle_deg`` is counter-clockwise as displayed (OpenCV's ``getRotationMatrix2D``
    convention); ``scale`` is the closest similarity's scale.
    """

    dx: float
    dy: float
    angle_deg: float
    scale: float

    @classmethod
    def of(cls, ref_to_query: np.ndarray, center_xy: tuple[float, float]) -> Motion:
        a = ref_to_query
        cx, cy = center_xy
        qx = a[0, 0] * cx + a[0, 1] * cy + a[0, 2]
        qy = a[1, 0] * cx + a[1, 1] * cy + a[1, 2]
        angle = math.degrees(math.atan2(a[0, 1] - a[1, 0], a[0, 0] + a[1, 1]))
        scale = math.sqrt(abs(a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]))
        return cls(float(qx - cx), float(qy - cy), angle, scale)

    def to_dict(self) -> dict[str, float]:
        return {
            "dx": round(self.dx, 3),
            "dy": round(self.dy, 3),
            "angle_deg": round(self.angle_deg, 4),
            "scale": round(self.scale, 5),
        }


# --------------------------------------------------------------------------- preparation


def _level_plan(size_wh: tuple[int, int]) -> tuple[int, int, int]:
    """(feature level, finest LK level, coarsest LK level) for a working size."""
    w, h = size_wh
    feat = 0
    while max(w, h) / 2**feat > _FEATURE_MAX_SIDE:
        feat += 1
    fine = 0
    while (w / 2**fine) * (h / 2**fine) > _FINE_LEVEL_MAX_PX:
        fine += 1
    coarse = fine
    while coarse < fine + 2 and min(w, h) / 2 ** (coarse + 1) >= _COARSE_MIN_SIDE:
        coarse += 1
    return feat, fine, coarse


def prepare_registration(
    work_grey: np.ndarray,
    *,
    roi: np.ndarray | None = None,
    keypoints_xy: np.ndarray | None = None,
    descriptors: np.ndarray | None = None,
) -> RegistrationTemplate:
    """Precompute everything registration needs from a reference.

    work_grey: ``(H, W)`` uint8 grey reference at its working size.
    roi: optional ``(H, W)`` uint8 mask (non-zero = use) at the same size.
    keypoints_xy / descriptors: previously stored features (skip ORB detection);
        without them the features are detected when a query first needs them.
    """
    h, w = work_grey.shape
    feat, fine, coarse = _level_plan((w, h))
    pyr = pyramid(work_grey, coarse)
    if keypoints_xy is None or descriptors is None:
        # a copy at level 0: the caller's image may change before the features are needed
        feats = ReferenceFeatures(pyr[feat] if feat else work_grey.copy(), feat, roi)
    else:
        feats = ReferenceFeatures.known(keypoints_xy, descriptors, feat)
    levels = tuple(make_level(k, pyr[k], roi) for k in range(fine, coarse + 1))
    ch, cw = levels[-1].shape
    window = cv2.createHanningWindow((cw, ch), cv2.CV_32F)
    return RegistrationTemplate(
        size_wh=(w, h),
        features=feats,
        feature_level=feat,
        levels=levels,
        window=window,
    )


def match_features(
    tpl: RegistrationTemplate, query: np.ndarray, model: MotionModel = "similarity"
) -> FeatureMatch:
    """Match a working-size ``(H, W)`` uint8 grey query's ORB features to the reference's."""
    level = query
    for _ in range(tpl.feature_level):
        level = cv2.pyrDown(level)
    return features(tpl.keypoints_xy, tpl.descriptors, tpl.feature_level, level, model)


# --------------------------------------------------------------------------- public API


def register(
    template: RegistrationTemplate,
    query: np.ndarray,
    *,
    model: MotionModel = "euclidean",
    min_correlation: float = 0.5,
    min_overlap: float = 0.5,
    max_scale_change: float = 0.5,
    max_residual_px: float | None = None,
) -> Registration:
    """Register a query onto a prepared reference.

    query: ``(H, W)`` uint8 grey query at its working size (see :func:`working_size`).
    model: the motion model the part may undergo; ``homography`` adds a perspective
        tilt to ``affine``; ``auto`` starts as ``similarity``, refines a homography at
        the fine levels and keeps the simplest model (similarity, affine, homography)
        that stays within ``AUTO_TOLERANCE_PX`` of it everywhere on the reference.
    min_correlation: normalised cross-correlation of the aligned images below which
        the registration is reported as failed.
    min_overlap: fraction of the reference that must be covered by the query.
    max_scale_change: largest relative scale change accepted (similarity/affine).
    max_residual_px: local misfit (upper quartile of per-tile shifts after the fit,
        working pixels) beyond which the registration is reported as failed: the part
        moved in a way the model cannot follow, and comparing would invent defects.
        None: ``MAX_RESIDUAL_PX`` for ``auto`` and ``homography``, off otherwise.

    Returns a :class:`Registration`; ``ok`` is False (with ``reason``) on failure.
    """
    if model not in MOTION_MODELS:
        msg = f"motion model: expected one of {list(MOTION_MODELS)}, got {model!r}"
        raise InputError(msg)
    final_model = "homography" if model == "auto" else model
    # Coarse levels: a similarity (a tilt of a few pixels is sub-pixel there).
    coarse_model = "similarity" if model in ("auto", "homography") else model
    if max_residual_px is None:
        max_residual_px = MAX_RESIDUAL_PX if model in ("auto", "homography") else 0.0
    feat, coarse_k = template.feature_level, template.coarse_level
    pyr_u8 = pyramid(query, max(feat, coarse_k))
    levels_f = {lvl.k: pyr_u8[lvl.k].astype(np.float32) for lvl in template.levels}
    coarsest = template.levels[-1]
    confident = max(min_correlation, _CONFIDENT_CORRELATION)
    # The coarse fits' lighting is only kept when there is no finer level to refit it.
    coarse_only = len(template.levels) == 1

    # Cheap first: phase correlation (translation) refined at the coarsest level. Only
    # when that does not correlate convincingly, the features (any rotation, scale).
    method, fit = (
        "phase",
        lucas_kanade(
            coarsest,
            levels_f[coarse_k],
            phase(coarsest.image, coarsest.k, template.window, levels_f[coarse_k]),
            coarse_model,
            20,
            photometry=coarse_only,
        ),
    )
    coarse = FeatureMatch(None, 0, 0, NO_POINTS, NO_POINTS)
    if fit.correlation < confident:
        coarse = features(
            template.keypoints_xy, template.descriptors, feat, pyr_u8[feat], coarse_model
        )
        tries = [("identity", np.eye(3))]
        if coarse.matrix is not None:
            tries.insert(0, ("features", coarse.matrix))
        for name, start in tries:
            other = lucas_kanade(
                coarsest, levels_f[coarse_k], start, coarse_model, 20, photometry=coarse_only
            )
            if other.correlation > fit.correlation:
                method, fit = name, other
            if fit.correlation >= confident:
                break
    iterations = fit.iterations
    # Coarse to fine: the levels above the finest converge; the finest takes one
    # Gauss-Newton step at full accuracy and measures correlation and lighting there.
    finer = list(reversed(template.levels[:-1]))
    projective = final_model == "homography"
    for i, lvl in enumerate(finer):
        last = i == len(finer) - 1
        fit = lucas_kanade(
            lvl,
            levels_f[lvl.k],
            fit.matrix,
            final_model,
            (2 if projective else 1) if last else 10,
            tolerance_px=0.01 if i == len(finer) - 2 else 0.03,
            correlation=last,
        )
        iterations += fit.iterations
    used: str = final_model
    matrix = fit.matrix
    if model == "auto":
        used, matrix = simplest_model(fit.matrix, template.size_wh)
    # The residual check runs one level above the finest: fine textures near the
    # sampling limit (moire) say nothing reliable about local shifts.
    check = template.levels[1] if len(template.levels) > 1 else template.levels[0]
    misfit = (
        residual(check, levels_f[check.k], matrix, fit.gain, fit.offset)
        if max_residual_px > 0
        else 0.0
    )
    fit = Fit(matrix, fit.correlation, fit.gain, fit.offset, iterations, fit.overlap, misfit)

    reason = ""
    scale = math.sqrt(abs(np.linalg.det(fit.matrix[:2, :2])))
    if fit.overlap < min_overlap:
        reason = (
            f"the query covers {fit.overlap:.0%} of the reference: "
            f"expected at least {min_overlap:.0%}"
        )
    elif abs(scale - 1.0) > max_scale_change:
        reason = f"scale change {scale:.3f}: expected within 1 ± {max_scale_change}"
    elif fit.correlation < min_correlation:
        reason = (
            f"aligned images correlate at {fit.correlation:.3f}: expected at least "
            f"{min_correlation} (features: {coarse.inliers} inliers of {coarse.matches} "
            f"matches; coarse estimate from {method})"
        )
    elif max_residual_px > 0 and fit.residual_px > max_residual_px:
        reason = (
            f"the {used} fit leaves local shifts of {fit.residual_px:.2f} px: expected at "
            f"most {max_residual_px} (the part moved in a way the model cannot follow)"
        )
    return Registration(
        ok=not reason,
        ref_to_query=fit.matrix,
        model=used,
        method=method,
        correlation=fit.correlation,
        inliers=coarse.inliers,
        matches=coarse.matches,
        iterations=fit.iterations,
        gain=fit.gain,
        offset=fit.offset,
        overlap=fit.overlap,
        reason=reason,
        residual_px=fit.residual_px,
    )


def simplest_model(
    homography: np.ndarray, size_wh: tuple[int, int], tolerance_px: float = AUTO_TOLERANCE_PX
) -> tuple[str, np.ndarray]:
    """The simplest of similarity, affine and ``homography`` itself that maps every
    point of a ``size_wh`` reference within ``tolerance_px`` of the homography.

    Returns ``(model name, 3x3 matrix)``.
    """
    w, h = size_wh
    gx, gy = np.meshgrid(np.linspace(0, w - 1, 5), np.linspace(0, h - 1, 5))
    src = np.stack([gx.ravel(), gy.ravel()], 1)
    dst = apply(homography, src)
    x, y, one, zero = src[:, 0], src[:, 1], np.ones(len(src)), np.zeros(len(src))
    # similarity: u = a x - b y + tx, v = b x + a y + ty
    sim = np.concatenate([np.stack([x, -y, one, zero], 1), np.stack([y, x, zero, one], 1)])
    a_, b_, tx, ty = np.linalg.lstsq(sim, np.concatenate([dst[:, 0], dst[:, 1]]), rcond=None)[0]
    candidates = [("similarity", np.array([[a_, -b_, tx], [b_, a_, ty], [0.0, 0.0, 1.0]]))]
    design = np.stack([x, y, one], 1)
    coef = np.linalg.lstsq(design, dst, rcond=None)[0]  # (3, 2)
    candidates.append(("affine", np.vstack([coef.T, [0.0, 0.0, 1.0]])))
    for name, a in candidates:
        if float(np.abs(apply(a, src) - dst).max()) <= tolerance_px:
            return name, a
    return "homography", homography


@dataclass(frozen=True, slots=True)
class Alignment:
    """Registration of two images in their original pixel coordinates.

    ``matrix1`` maps image1 pixels to image2 pixels, ``matrix2`` the inverse; both
    3x3 row-major. ``motion`` reads ``matrix1`` as a part's motion about image1's centre.
    """

    matrix1: np.ndarray = field(compare=False)
    matrix2: np.ndarray = field(compare=False)
    motion: Motion
    registration: Registration

    def to_dict(self) -> dict[str, Any]:
        return {
            "matrix1": _rounded(self.matrix1),
            "matrix2": _rounded(self.matrix2),
            "motion": self.motion.to_dict(),
            "registration": self.registration.to_dict(),
        }


def _rounded(m: np.ndarray) -> list[list[float]]:
    return [[round(float(v), 8) for v in row] for row in m]


def original_matrix(
    ref_to_query_work: np.ndarray,
    ref_wh: tuple[int, int],
    ref_work_wh: tuple[int, int],
    query_wh: tuple[int, int],
    query_work_wh: tuple[int, int],
) -> np.ndarray:
    """Convert a working-geometry ``ref_to_query`` into original pixel coordinates."""
    s_ref = resize_matrix(ref_wh, ref_work_wh)
    s_q = resize_matrix(query_wh, query_work_wh)
    out: np.ndarray = np.linalg.inv(s_q) @ ref_to_query_work @ s_ref
    return out


MIN_ALIGN_SIDE_PX = 8


@dataclass(frozen=True, slots=True, eq=False)
class AlignmentReference:
    """Image1 of :func:`align`, prepared once (:func:`prepare_alignment`) for any
    number of image2s: its size, the resolution asked for, its working size and its
    registration template."""

    size_wh: tuple[int, int]
    resolution: int
    work_wh: tuple[int, int]
    template: RegistrationTemplate


def _check_side(name: str, image: np.ndarray) -> None:
    h, w = image.shape[:2]
    if min(h, w) < MIN_ALIGN_SIDE_PX:
        msg = (
            f"{name}: expected at least {MIN_ALIGN_SIDE_PX}×{MIN_ALIGN_SIDE_PX} pixels "
            f"to align, got {w}×{h}"
        )
        raise InputError(msg)


def prepare_alignment(image1: np.ndarray, *, resolution: int = 900) -> AlignmentReference:
    """Prepare image1 (``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR) for
    :func:`align_prepared` at a working size of ``resolution`` pixels (longest side).

    Raises InputError (HTTP 400) when it is smaller than ``MIN_ALIGN_SIDE_PX`` on a side.
    """
    _check_side("image1", image1)
    g1 = to_grey(image1)
    wh1 = (g1.shape[1], g1.shape[0])
    w1 = working_size(wh1, resolution)
    return AlignmentReference(wh1, resolution, w1, prepare_registration(shrink(g1, w1)))


def align_prepared(
    reference: AlignmentReference,
    image2: np.ndarray,
    *,
    model: MotionModel = "similarity",
    min_correlation: float = 0.5,
) -> Alignment:
    """Register ``image2`` (``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR, any size)
    onto a prepared image1, each at its working size for the reference's resolution.
    Raises as :func:`align` does."""
    _check_side("image2", image2)
    g2 = to_grey(image2)
    wh1, w1 = reference.size_wh, reference.work_wh
    wh2 = (g2.shape[1], g2.shape[0])
    w2 = working_size(wh2, reference.resolution)
    reg = register(reference.template, shrink(g2, w2), model=model, min_correlation=min_correlation)
    if not reg.ok:
        msg = f"image2 could not be registered onto image1: {reg.reason}"
        raise UnregisteredError(msg, reg)
    m1 = original_matrix(reg.ref_to_query, wh1, w1, wh2, w2)
    center = ((wh1[0] - 1) / 2.0, (wh1[1] - 1) / 2.0)
    return Alignment(m1, np.linalg.inv(m1), Motion.of(m1, center), reg)


def align(
    image1: np.ndarray,
    image2: np.ndarray,
    *,
    model: MotionModel = "similarity",
    resolution: int = 900,
    min_correlation: float = 0.5,
) -> Alignment:
    """Register ``image2`` onto ``image1`` (one-shot: :func:`prepare_alignment` then
    :func:`align_prepared`).

    image1, image2: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR; sizes may differ.
    resolution: longest side of the working size (pixels).

    Raises UnregisteredError (a RegistrationError, HTTP 422) with the reason when the
    images do not register, InputError (HTTP 400) when one is smaller than
    ``MIN_ALIGN_SIDE_PX`` on a side (nothing to register).
    """
    _check_side("image1", image1)
    _check_side("image2", image2)
    reference = prepare_alignment(image1, resolution=resolution)
    return align_prepared(reference, image2, model=model, min_correlation=min_correlation)
