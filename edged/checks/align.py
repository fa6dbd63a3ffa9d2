"""Registration: the transform that maps a reference image onto a query image.

Parts never sit exactly where the reference did. :func:`register` estimates the
part's motion in two stages:

1. **Coarse, robust**: ORB features of the query matched against the reference's
   (precomputed) features, then RANSAC on the recipe's motion model (translation,
   euclidean, similarity or affine). When features are too few (plain or blurred
   parts), phase correlation and the identity are tried as starting points instead.
2. **Fine, sub-pixel**: inverse-compositional Lucas-Kanade on a small image pyramid,
   with the reference's gradients and steepest-descent images precomputed, and a
   gain/offset term solved jointly so lighting drift does not bias the geometry.

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
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import cv2
import numpy as np

from edged.checks._scale import resize_matrix, shrink, to3x3, to_grey, working_size
from edged.errors import InputError, RegistrationError

MotionModel = Literal["translation", "euclidean", "similarity", "affine"]
MOTION_MODELS: tuple[str, ...] = get_args(MotionModel)

# Rows of a level's Lucas-Kanade design matrix, ordered so each motion model uses a
# contiguous slice: x*Tx, y*Tx, x*Ty, y*Ty, T, 1, Tx, Ty, rotation, scale (centred x, y;
# T the template, Tx/Ty its gradient; T and 1 carry the gain/offset of the lighting).
_SLICES: dict[str, slice] = {
    "translation": slice(4, 8),
    "euclidean": slice(4, 9),
    "similarity": slice(4, 10),
    "affine": slice(0, 8),
}
_FINE_LEVEL_MAX_PX = 200_000  # the finest Lucas-Kanade level has at most this many pixels
_COARSE_MIN_SIDE = 48  # the coarsest level keeps at least this many pixels per side
_FEATURE_MAX_SIDE = 512  # ORB runs on the first pyramid level at most this long
_ORB_FEATURES = 500
_CONFIDENT_CORRELATION = 0.8  # a coarse fit this good skips the feature matching


@dataclass(frozen=True, slots=True, eq=False)
class _Level:
    """One pyramid level of the reference, ready for Lucas-Kanade."""

    k: int  # pyramid index: level pixels = working pixels / 2**k
    shape: tuple[int, int]  # (h, w)
    image: np.ndarray  # (h, w) float32
    design: np.ndarray  # (10, h*w) float32, rows as in _SLICES, each scaled to unit RMS
    row_scale: np.ndarray  # (10,) float64: design row = true row / row_scale
    t_mean: float  # the template row is centred on this mean (conditioning)
    usable: np.ndarray  # (h, w) uint8: 1 inside the ROI and off the border
    center: tuple[float, float]
    hessians: dict[str, np.ndarray]  # model -> design[slice] @ design[slice].T over usable


@dataclass(frozen=True, slots=True, eq=False)
class RegistrationTemplate:
    """What registration needs from one reference, computed once (:func:`prepare_registration`).

    ``size_wh`` is the reference's working size; keypoints are in working pixels.
    """

    size_wh: tuple[int, int]
    keypoints_xy: np.ndarray  # (K, 2) float32, working pixels
    descriptors: np.ndarray  # (K, 32) uint8 ORB descriptors
    feature_level: int
    levels: tuple[_Level, ...]  # fine -> coarse
    window: np.ndarray  # Hanning window for phase correlation at the coarsest level

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
    ``correlation`` is the normalised cross-correlation of the aligned images.
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


def _pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    out = [image]
    for _ in range(levels):
        out.append(cv2.pyrDown(out[-1]))
    return out


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


def _make_level(k: int, image_u8: np.ndarray, roi: np.ndarray | None) -> _Level:
    img = image_u8.astype(np.float32)
    h, w = img.shape
    gx = cv2.Scharr(img, cv2.CV_32F, 1, 0, scale=1.0 / 32.0).ravel()
    gy = cv2.Scharr(img, cv2.CV_32F, 0, 1, scale=1.0 / 32.0).ravel()
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    x, y = xx.ravel() - cx, yy.ravel() - cy
    t_mean = float(img.mean())
    design = np.stack(
        [
            x * gx,
            y * gx,
            x * gy,
            y * gy,
            img.ravel() - np.float32(t_mean),
            np.ones(h * w, dtype=np.float32),
            gx,
            gy,
            -y * gx + x * gy,
            x * gx + y * gy,
        ]
    ).astype(np.float32)
    # Unit-RMS rows keep the float32 normal equations well conditioned.
    row_scale = np.sqrt(np.mean(design.astype(np.float64) ** 2, axis=1))
    row_scale[row_scale == 0] = 1.0
    design /= row_scale[:, None].astype(np.float32)
    usable = np.zeros((h, w), dtype=np.uint8)
    usable[1:-1, 1:-1] = 1
    if roi is not None:
        small = cv2.resize(roi, (w, h), interpolation=cv2.INTER_NEAREST)
        usable[small == 0] = 0
    on = design[:, usable.ravel() > 0]
    on64 = on.astype(np.float64)
    full = np.einsum("ik,jk->ij", on64, on64) if on.size else np.zeros((10, 10))
    hessians = {model: full[sl, sl].copy() for model, sl in _SLICES.items()}
    return _Level(
        k=k,
        shape=(h, w),
        image=img,
        design=design,
        row_scale=row_scale,
        t_mean=t_mean,
        usable=usable,
        center=(cx, cy),
        hessians=hessians,
    )


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
    keypoints_xy / descriptors: previously stored features (skip ORB detection).
    """
    h, w = work_grey.shape
    feat, fine, coarse = _level_plan((w, h))
    pyr = _pyramid(work_grey, coarse)
    if keypoints_xy is None or descriptors is None:
        keypoints_xy, descriptors = _orb(pyr[feat], feat, roi)
    levels = tuple(_make_level(k, pyr[k], roi) for k in range(fine, coarse + 1))
    ch, cw = levels[-1].shape
    window = cv2.createHanningWindow((cw, ch), cv2.CV_32F)
    return RegistrationTemplate(
        size_wh=(w, h),
        keypoints_xy=np.ascontiguousarray(keypoints_xy, dtype=np.float32).reshape(-1, 2),
        descriptors=np.ascontiguousarray(descriptors, dtype=np.uint8).reshape(-1, 32),
        feature_level=feat,
        levels=levels,
        window=window,
    )


def _orb(image: np.ndarray, level: int, roi: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    orb = cv2.ORB.create(nfeatures=_ORB_FEATURES, fastThreshold=10, nlevels=6)
    mask = None
    if roi is not None:
        mask = cv2.resize(roi, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)
    kps, des = orb.detectAndCompute(image, mask)
    if des is None or not kps:
        return np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8)
    pts = np.array([kp.pt for kp in kps], dtype=np.float32) * float(2**level)
    return pts, des


# --------------------------------------------------------------------------- coarse stage


@dataclass(frozen=True, slots=True)
class FeatureMatch:
    """ORB features of a query matched to a reference's, with RANSAC on a motion model.

    ``matrix`` (ref -> query, working pixels) is None when the features do not agree;
    ``ref_xy`` / ``query_xy`` are the RANSAC inliers' ``(N, 2)`` working-pixel positions.
    """

    matrix: np.ndarray | None = field(compare=False)
    inliers: int
    matches: int
    ref_xy: np.ndarray = field(compare=False)
    query_xy: np.ndarray = field(compare=False)


_NO_POINTS = np.zeros((0, 2), np.float32)


def match_features(
    tpl: RegistrationTemplate, query: np.ndarray, model: MotionModel = "similarity"
) -> FeatureMatch:
    """Match a working-size ``(H, W)`` uint8 grey query's ORB features to the reference's."""
    feat = tpl.feature_level
    level = query
    for _ in range(feat):
        level = cv2.pyrDown(level)
    return _features(tpl, level, model)


def _features(tpl: RegistrationTemplate, query_level: np.ndarray, model: str) -> FeatureMatch:
    none = FeatureMatch(None, 0, 0, _NO_POINTS, _NO_POINTS)
    if len(tpl.descriptors) < 8:
        return none
    q_pts, q_des = _orb(query_level, tpl.feature_level, None)
    if len(q_des) < 8:
        return none
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    pairs = matcher.knnMatch(q_des, tpl.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
    if len(good) < 8:
        return FeatureMatch(None, 0, len(good), _NO_POINTS, _NO_POINTS)
    src = tpl.keypoints_xy[[m.trainIdx for m in good]]
    dst = q_pts[[m.queryIdx for m in good]]
    thr = 2.5 * 2**tpl.feature_level
    if model == "translation":
        est, inl = cv2.estimateTranslation2D(src, dst, ransacReprojThreshold=thr, maxIters=2000)
        m = None if est is None else np.array([[1.0, 0.0, est[0]], [0.0, 1.0, est[1]]])
    elif model == "affine":
        m, inl = cv2.estimateAffine2D(src, dst, ransacReprojThreshold=thr, maxIters=2000)
    else:
        m, inl = cv2.estimateAffinePartial2D(src, dst, ransacReprojThreshold=thr, maxIters=2000)
    if m is None or inl is None:
        return FeatureMatch(None, 0, len(good), _NO_POINTS, _NO_POINTS)
    sel = np.asarray(inl).ravel().astype(bool)
    inliers = int(np.count_nonzero(sel))
    if inliers < max(8, int(0.15 * len(good))):
        return FeatureMatch(None, inliers, len(good), src[sel], dst[sel])
    a = to3x3(np.asarray(m, dtype=np.float64))
    if model == "euclidean":
        s = math.sqrt(abs(np.linalg.det(a[:2, :2])))
        a[:2, :2] /= s
        a[:2, 2] = dst[sel].mean(axis=0) - a[:2, :2] @ src[sel].mean(axis=0)
    return FeatureMatch(a, inliers, len(good), src[sel], dst[sel])


def _phase(tpl: RegistrationTemplate, query_level: np.ndarray) -> np.ndarray:
    """Translation-only estimate by phase correlation at the coarsest level."""
    lvl = tpl.levels[-1]
    h, w = lvl.shape
    q = query_level
    if q.shape != (h, w):
        canvas = np.full((h, w), float(q.mean()), dtype=np.float32)
        hh, ww = min(h, q.shape[0]), min(w, q.shape[1])
        canvas[:hh, :ww] = q[:hh, :ww]
        q = canvas
    # Copies: OpenCV 5.0's phaseCorrelate applies the window to its inputs in place.
    (dx, dy), _response = cv2.phaseCorrelate(lvl.image.copy(), q.copy(), tpl.window)
    s = float(2**lvl.k)
    return np.array([[1.0, 0.0, dx * s], [0.0, 1.0, dy * s], [0.0, 0.0, 1.0]])


# --------------------------------------------------------------------------- fine stage


def _delta(model: str, p: np.ndarray, center: tuple[float, float]) -> np.ndarray:
    """The incremental warp for parameters ``p`` (centred coordinates), as 3x3.

    ``p`` follows the slice order of :data:`_SLICES` without T and 1: translation
    ``[tx, ty]``, euclidean ``[tx, ty, angle]``, similarity ``[tx, ty, angle, dscale]``,
    affine ``[a11, a12, a21, a22, tx, ty]`` (a = matrix minus identity).
    """
    cx, cy = center
    d = np.eye(3)
    if model == "affine":
        d[:2, :2] = [[1.0 + p[0], p[1]], [p[2], 1.0 + p[3]]]
        d[0, 2], d[1, 2] = p[4], p[5]
    else:
        d[0, 2], d[1, 2] = p[0], p[1]
        if model != "translation":
            sc = 1.0 + (p[3] if model == "similarity" else 0.0)
            c, si = math.cos(p[2]) * sc, math.sin(p[2]) * sc
            d[:2, :2] = [[c, -si], [si, c]]
    shift = np.array([[1.0, 0.0, cx], [0.0, 1.0, cy], [0.0, 0.0, 1.0]])
    unshift = np.array([[1.0, 0.0, -cx], [0.0, 1.0, -cy], [0.0, 0.0, 1.0]])
    out: np.ndarray = shift @ d @ unshift
    return out


def _step_size(model: str, p: np.ndarray, radius: float) -> float:
    """How far (level pixels) the increment moves the farthest template pixel."""
    if model == "affine":
        return math.hypot(p[4], p[5]) + float(np.abs(p[:4]).sum()) * radius
    step = math.hypot(p[0], p[1])
    if model != "translation":
        step += float(np.abs(p[2:]).sum()) * radius
    return step


@dataclass(frozen=True, slots=True)
class _Fit:
    matrix: np.ndarray  # ref -> query, working pixels
    correlation: float
    gain: float
    offset: float
    iterations: int
    overlap: float


def _inv(m: np.ndarray) -> np.ndarray:
    """Inverse of a 3x3 affine matrix (last row 0 0 1), closed form."""
    a, b, c = m[0]
    d, e, f = m[1]
    det = a * e - b * d
    return np.array(
        [
            [e / det, -b / det, (b * f - c * e) / det],
            [-d / det, a / det, (c * d - a * f) / det],
            [0.0, 0.0, 1.0],
        ]
    )


def _lucas_kanade(
    lvl: _Level,
    query: np.ndarray,
    ref_to_query: np.ndarray,
    model: str,
    max_iterations: int,
    *,
    tolerance_px: float = 0.01,
    correlation: bool = True,
) -> _Fit:
    """Refine ``ref_to_query`` (working pixels) at one pyramid level.

    Inverse compositional: the design matrix (template gradients times the warp
    Jacobian, plus the template and a constant for gain/offset) and its normal
    matrix over the whole usable area are precomputed; per frame only the pixels
    the query does not cover are taken out, and each iteration costs one warp of the
    query and one matrix-vector product (``einsum``, not BLAS: a multi-threaded BLAS
    competing with OpenCV's threads for two cores costs milliseconds per call).
    """
    s = 2.0**-lvl.k
    a = ref_to_query.copy()
    a[:2, 2] *= s
    a[2, :2] /= s  # (stays 0 for affine matrices)
    h, w = lvl.shape
    qh, qw = query.shape
    # Template pixels whose match lies inside the query (2 px margin), fixed for this level.
    corners = np.array([[2, 2, 1], [qw - 3, 2, 1], [qw - 3, qh - 3, 1], [2, qh - 3, 1]], float)
    poly = (_inv(a) @ corners.T).T[:, :2]
    inside = np.zeros((h, w), dtype=np.uint8)
    cv2.fillConvexPoly(inside, np.round(poly * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    covered = cv2.countNonZero(inside)
    overlap = covered / inside.size
    mask_u8 = cv2.bitwise_and(inside, lvl.usable)
    n = float(cv2.countNonZero(mask_u8))
    if n < 64:
        return _Fit(ref_to_query, 0.0, 1.0, 0.0, 0, overlap)
    sl = _SLICES[model]
    scale = lvl.row_scale[sl]
    jac = lvl.design[sl]
    # Normal matrix: the precomputed one minus the usable pixels outside the query.
    hess = lvl.hessians[model]
    pts = cv2.findNonZero(cv2.subtract(lvl.usable, inside))
    xy = np.zeros((0, 2), np.int64) if pts is None else pts.reshape(-1, 2).astype(np.int64)
    outside = xy[:, 1] * w + xy[:, 0]
    if outside.size:
        j_out = jac[:, outside].astype(np.float64)
        hess = hess - np.einsum("ik,jk->ij", j_out, j_out)
    try:
        hess_inv = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        return _Fit(ref_to_query, 0.0, 1.0, 0.0, 0, overlap)
    mask = mask_u8.ravel().astype(np.float32)
    i_gain = 4 if model == "affine" else 0  # position of T (gain) in the slice; 1 follows
    radius = math.hypot(w, h) / 2.0
    gain, offset = 1.0, 0.0
    it = 0
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = np.empty((h, w), np.float32)
    for it in range(1, max_iterations + 1):
        cv2.warpAffine(
            query, a[:2], (w, h), dst=warped, flags=flags, borderMode=cv2.BORDER_REPLICATE
        )
        c = hess_inv @ np.einsum("ij,j->i", jac, warped.ravel() * mask).astype(np.float64) / scale
        gain = float(c[i_gain])
        offset = float(c[i_gain + 1]) - gain * lvl.t_mean
        if not math.isfinite(gain) or abs(gain) < 1e-3:
            return _Fit(ref_to_query, 0.0, 1.0, 0.0, it, overlap)
        geo = np.delete(c, [i_gain, i_gain + 1]) / gain
        a = a @ _inv(_delta(model, geo, lvl.center))
        if _step_size(model, geo, radius) < tolerance_px:
            break
    corr = 0.0
    if correlation:
        # ``warped`` is from the last iteration, whose update moved less than tolerance_px.
        corr = _zncc(lvl.image.ravel(), warped.ravel(), mask, n)
        gain, offset = _robust_photometry(lvl.image.ravel(), warped.ravel(), mask, gain, offset)
    out = a.copy()
    out[:2, 2] /= s
    return _Fit(out, corr, gain, offset, it, overlap)


def _robust_photometry(
    t: np.ndarray, q: np.ndarray, mask: np.ndarray, gain: float, offset: float
) -> tuple[float, float]:
    """Gain/offset of ``q ~ gain * t + offset`` refitted without outliers.

    The joint least-squares fit counts a large defect as lighting. When more than 1 %
    of the pixels (a ~20 000-pixel subsample) lie beyond 3 robust sigmas (at least 6
    grey levels), they are left out and the two parameters refitted twice, starting
    from the median offset (so up to half of the image may differ).
    """
    step = max(1, mask.size // 20_000)
    sel = mask[::step] > 0
    ts = t[::step][sel]
    qs = q[::step][sel]
    if ts.size < 64:
        return gain, offset
    r = qs - (gain * ts + offset)
    sigma = 1.4826 * float(np.median(np.abs(r - float(np.median(r)))))
    limit = max(3.0 * sigma, 6.0)
    if float(np.mean(np.abs(r) > limit)) < 0.01:
        return gain, offset  # no outliers to speak of: the all-pixel fit stands
    r = qs - gain * ts
    offset = float(np.median(r))  # robust start: half the pixels may be off
    for _ in range(2):
        keep = np.abs(qs - (gain * ts + offset)) <= limit
        if int(keep.sum()) < 64:
            break
        tk, qk = ts[keep].astype(np.float64), qs[keep].astype(np.float64)
        tm, qm = float(tk.mean()), float(qk.mean())
        var = float(((tk - tm) ** 2).sum())
        if var > 1e-6:
            gain = float(((tk - tm) * (qk - qm)).sum()) / var
        offset = qm - gain * tm
    return gain, offset


def _zncc(a: np.ndarray, b: np.ndarray, mask: np.ndarray, n: float) -> float:
    """Normalised cross-correlation of ``a`` and ``b`` over ``mask`` (0/1, ``n`` ones)."""
    am, bm = a * mask, b * mask
    sa, sb = float(am.sum()), float(bm.sum())
    saa = float(np.einsum("i,i->", am, a))
    sbb = float(np.einsum("i,i->", bm, b))
    sab = float(np.einsum("i,i->", am, b))
    va, vb = saa - sa * sa / n, sbb - sb * sb / n
    den = math.sqrt(max(va, 0.0) * max(vb, 0.0))
    return (sab - sa * sb / n) / den if den > 0 else 0.0


# --------------------------------------------------------------------------- public API


def register(
    template: RegistrationTemplate,
    query: np.ndarray,
    *,
    model: MotionModel = "euclidean",
    min_correlation: float = 0.5,
    min_overlap: float = 0.5,
    max_scale_change: float = 0.5,
) -> Registration:
    """Register a query onto a prepared reference.

    query: ``(H, W)`` uint8 grey query at its working size (see :func:`working_size`).
    model: the motion model the part may undergo.
    min_correlation: normalised cross-correlation of the aligned images below which
        the registration is reported as failed.
    min_overlap: fraction of the reference that must be covered by the query.
    max_scale_change: largest relative scale change accepted (similarity/affine).

    Returns a :class:`Registration`; ``ok`` is False (with ``reason``) on failure.
    """
    if model not in _SLICES:
        msg = f"motion model: expected one of {list(_SLICES)}, got {model!r}"
        raise InputError(msg)
    feat, coarse_k = template.feature_level, template.coarse_level
    pyr_u8 = _pyramid(query, max(feat, coarse_k))
    levels_f = {lvl.k: pyr_u8[lvl.k].astype(np.float32) for lvl in template.levels}
    coarsest = template.levels[-1]
    confident = max(min_correlation, _CONFIDENT_CORRELATION)

    # Cheap first: phase correlation (translation) refined at the coarsest level. Only
    # when that does not correlate convincingly, the features (any rotation, scale).
    method, fit = (
        "phase",
        _lucas_kanade(
            coarsest, levels_f[coarse_k], _phase(template, levels_f[coarse_k]), model, 20
        ),
    )
    coarse = FeatureMatch(None, 0, 0, _NO_POINTS, _NO_POINTS)
    if fit.correlation < confident:
        coarse = _features(template, pyr_u8[feat], model)
        tries = [("identity", np.eye(3))]
        if coarse.matrix is not None:
            tries.insert(0, ("features", coarse.matrix))
        for name, start in tries:
            other = _lucas_kanade(coarsest, levels_f[coarse_k], start, model, 20)
            if other.correlation > fit.correlation:
                method, fit = name, other
            if fit.correlation >= confident:
                break
    iterations = fit.iterations
    # Coarse to fine: the levels above the finest converge; the finest takes one
    # Gauss-Newton step at full accuracy and measures correlation and lighting there.
    finer = list(reversed(template.levels[:-1]))
    for i, lvl in enumerate(finer):
        last = i == len(finer) - 1
        fit = _lucas_kanade(
            lvl,
            levels_f[lvl.k],
            fit.matrix,
            model,
            1 if last else 10,
            tolerance_px=0.01 if i == len(finer) - 2 else 0.03,
            correlation=last,
        )
        iterations += fit.iterations
    fit = _Fit(fit.matrix, fit.correlation, fit.gain, fit.offset, iterations, fit.overlap)

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
    return Registration(
        ok=not reason,
        ref_to_query=fit.matrix,
        model=model,
        method=method,
        correlation=fit.correlation,
        inliers=coarse.inliers,
        matches=coarse.matches,
        iterations=fit.iterations,
        gain=fit.gain,
        offset=fit.offset,
        overlap=fit.overlap,
        reason=reason,
    )


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


def align(
    image1: np.ndarray,
    image2: np.ndarray,
    *,
    model: MotionModel = "similarity",
    resolution: int = 900,
    min_correlation: float = 0.5,
) -> Alignment:
    """Register ``image2`` onto ``image1`` (one-shot; nothing is precomputed).

    image1, image2: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR; sizes may differ.
    resolution: longest side of the working size (pixels).

    Raises UnregisteredError (a RegistrationError, HTTP 422) with the reason when the
    images do not register.
    """
    g1, g2 = to_grey(image1), to_grey(image2)
    wh1 = (g1.shape[1], g1.shape[0])
    wh2 = (g2.shape[1], g2.shape[0])
    w1, w2 = working_size(wh1, resolution), working_size(wh2, resolution)
    tpl = prepare_registration(shrink(g1, w1))
    reg = register(tpl, shrink(g2, w2), model=model, min_correlation=min_correlation)
    if not reg.ok:
        msg = f"image2 could not be registered onto image1: {reg.reason}"
        raise UnregisteredError(msg, reg)
    m1 = original_matrix(reg.ref_to_query, wh1, w1, wh2, w2)
    center = ((wh1[0] - 1) / 2.0, (wh1[1] - 1) / 2.0)
    return Alignment(m1, np.linalg.inv(m1), Motion.of(m1, center), reg)
