"""Inverse-compositional Lucas-Kanade with a joint gain/offset term (registration's fine stage).

A reference pyramid level holds everything a refinement needs, computed once: the
template, its design matrix (template gradients times the warp Jacobian of each
motion model, plus the template and a constant that carry the lighting change),
each row scaled to unit RMS for conditioning, and the normal matrices over the usable
area. Per frame, only the usable pixels the query does not cover are taken out of
the normal matrix; each iteration warps the query once and takes one matrix-vector
product. Products use ``einsum``, not BLAS: a multi-threaded BLAS competing with
OpenCV's threads for two cores costs milliseconds per call.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import cv2
import numpy as np

# Rows of a level's Lucas-Kanade design matrix, ordered so each motion model uses a
# contiguous slice: the two projective terms -x*(x*Tx + y*Ty), -y*(x*Tx + y*Ty), then
# x*Tx, y*Tx, x*Ty, y*Ty, T, 1, Tx, Ty, rotation, scale (centred x, y; T the template,
# Tx/Ty its gradient; T and 1 carry the gain/offset of the lighting).
SLICES: dict[str, slice] = {
    "translation": slice(6, 10),
    "euclidean": slice(6, 11),
    "similarity": slice(6, 12),
    "affine": slice(2, 10),
    "homography": slice(0, 10),
}
# Position of the gain row (T) inside each model's slice; the offset row follows it.
_GAIN_ROW = {"translation": 0, "euclidean": 0, "similarity": 0, "affine": 4, "homography": 6}
_TX, _TY = 8, 9  # the gradient rows


@dataclass(frozen=True, slots=True, eq=False)
class Level:
    """One pyramid level of the reference, ready for Lucas-Kanade.

    The normal matrix of a motion model (:meth:`hessian`) is computed the first time a
    registration uses that model at this level (``auto`` uses two of the five), then
    kept; thread-safe.
    """

    k: int  # pyramid index: level pixels = working pixels / 2**k
    shape: tuple[int, int]  # (h, w)
    image: np.ndarray  # (h, w) float32
    design: np.ndarray  # (10, h*w) float32, rows as in SLICES, each scaled to unit RMS
    row_scale: np.ndarray  # (10,) float64: design row = true row / row_scale
    t_mean: float  # the template row is centred on this mean (conditioning)
    usable: np.ndarray  # (h, w) uint8: 1 inside the ROI and off the border
    center: tuple[float, float]
    hessians: dict[str, np.ndarray] = field(default_factory=dict)  # model -> normal matrix
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def hessian(self, model: str) -> np.ndarray:
        """``design[slice] @ design[slice].T`` over the usable pixels (float64)."""
        with self._lock:
            out = self.hessians.get(model)
            if out is None:
                # One large product over every pixel, less the unusable ones: here BLAS
                # beats einsum tenfold (the small per-frame products stay einsum).
                rows = self.design[SLICES[model]]
                out = _gram(rows)
                off = np.flatnonzero(self.usable.ravel() == 0)
                if off.size:
                    out -= _gram(rows[:, off])
                self.hessians[model] = out
            return out


def pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """``image`` and ``levels`` successive ``pyrDown`` halvings (pixel ``x`` at level k
    is ``x / 2**k`` at level 0)."""
    out = [image]
    for _ in range(levels):
        out.append(cv2.pyrDown(out[-1]))
    return out


def make_level(k: int, image_u8: np.ndarray, roi: np.ndarray | None) -> Level:
    """Precompute pyramid level ``k`` of a reference: ``image_u8`` ``(h, w)`` uint8 grey,
    ``roi`` an optional working-size mask (non-zero = use)."""
    img = image_u8.astype(np.float32)
    h, w = img.shape
    gx2 = cv2.Scharr(img, cv2.CV_32F, 1, 0, scale=1.0 / 32.0)
    gy2 = cv2.Scharr(img, cv2.CV_32F, 0, 1, scale=1.0 / 32.0)
    gx, gy = gx2.ravel(), gy2.ravel()
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    # Centred coordinates as a row and a column, broadcast (float32, as a full grid was).
    x = (np.arange(w, dtype=np.float32) - cx)[None, :]
    y = (np.arange(h, dtype=np.float32) - cy)[:, None]
    t_mean = float(img.mean())
    flat = img.ravel()
    design = np.empty((12, h * w), np.float32)
    rows = design.reshape(12, h, w)
    np.multiply(x, gx2, out=rows[2])
    np.multiply(y, gy2, out=rows[5])
    np.add(design[2], design[5], out=design[11])  # scale: x*Tx + y*Ty
    np.multiply(-x, rows[11], out=rows[0])
    np.multiply(-y, rows[11], out=rows[1])
    np.multiply(y, gx2, out=rows[3])
    np.multiply(x, gy2, out=rows[4])
    np.subtract(flat, np.float32(t_mean), out=design[6])
    design[7] = 1.0
    design[8], design[9] = gx, gy
    np.subtract(design[4], design[3], out=design[10])  # rotation: -y*Tx + x*Ty
    # Unit-RMS rows keep the float32 normal equations well conditioned (the scale only
    # has to be used consistently: float32 accumulation is plenty).
    row_scale = np.sqrt(np.einsum("ij,ij->i", design, design) / design.shape[1]).astype(np.float64)
    row_scale[row_scale == 0] = 1.0
    design /= row_scale[:, None].astype(np.float32)
    usable = np.zeros((h, w), dtype=np.uint8)
    usable[1:-1, 1:-1] = 1
    if roi is not None:
        small = cv2.resize(roi, (w, h), interpolation=cv2.INTER_NEAREST)
        usable[small == 0] = 0
    return Level(
        k=k,
        shape=(h, w),
        image=img,
        design=design,
        row_scale=row_scale,
        t_mean=t_mean,
        usable=usable,
        center=(cx, cy),
    )


def _gram(a: np.ndarray) -> np.ndarray:
    """``a @ a.T`` in float64."""
    a64 = a.astype(np.float64)
    out: np.ndarray = a64 @ a64.T
    return out


def _delta(model: str, p: np.ndarray, center: tuple[float, float]) -> np.ndarray:
    """The incremental warp for parameters ``p`` (centred coordinates), as 3x3.

    ``p`` follows the slice order of :data:`SLICES` without T and 1: translation
    ``[tx, ty]``, euclidean ``[tx, ty, angle]``, similarity ``[tx, ty, angle, dscale]``,
    affine ``[a11, a12, a21, a22, tx, ty]`` (a = matrix minus identity), homography
    ``[h31, h32]`` followed by the affine terms.
    """
    cx, cy = center
    d = np.eye(3)
    if model in ("affine", "homography"):
        if model == "homography":
            d[2, 0], d[2, 1] = p[0], p[1]
            p = p[2:]
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
    if model == "homography":
        return _step_size("affine", p[2:], radius) + float(np.abs(p[:2]).sum()) * radius**2
    if model == "affine":
        return math.hypot(p[4], p[5]) + float(np.abs(p[:4]).sum()) * radius
    step = math.hypot(p[0], p[1])
    if model != "translation":
        step += float(np.abs(p[2:]).sum()) * radius
    return step


@dataclass(frozen=True, slots=True)
class Fit:
    matrix: np.ndarray  # ref -> query, working pixels
    correlation: float
    gain: float
    offset: float
    iterations: int
    overlap: float
    residual_px: float = 0.0  # local misfit left after the fit (see tile_residual), working px


def projective(m: np.ndarray) -> bool:
    """Whether a 3x3 ``ref_to_query`` is a true homography (not affine)."""
    return bool(m[2, 0] != 0.0 or m[2, 1] != 0.0 or m[2, 2] != 1.0)


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Map ``(N, 2)`` points through a 3x3 affine or projective matrix."""
    out: np.ndarray = pts @ m[:2, :2].T + m[:2, 2]
    if projective(m):
        out = out / (pts @ m[2, :2] + m[2, 2])[:, None]
    return out


def warp(
    image: np.ndarray,
    m: np.ndarray,
    size_wh: tuple[int, int],
    *,
    flags: int = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
    border: int = cv2.BORDER_REPLICATE,
    value: float = 0.0,
    dst: np.ndarray | None = None,
) -> np.ndarray:
    """``warpAffine`` for affine ``m``, ``warpPerspective`` for a homography."""
    if projective(m):
        return cv2.warpPerspective(
            image, m, size_wh, dst=dst, flags=flags, borderMode=border, borderValue=value
        )
    return cv2.warpAffine(
        image, m[:2], size_wh, dst=dst, flags=flags, borderMode=border, borderValue=value
    )


def _inv(m: np.ndarray) -> np.ndarray:
    """Inverse of a 3x3 matrix: closed form when affine (last row 0 0 1)."""
    if projective(m):
        out: np.ndarray = np.linalg.inv(m)
        return out
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


def lucas_kanade(
    lvl: Level,
    query: np.ndarray,
    ref_to_query: np.ndarray,
    model: str,
    max_iterations: int,
    *,
    tolerance_px: float = 0.01,
    correlation: bool = True,
    photometry: bool = True,
) -> Fit:
    """Refine ``ref_to_query`` (working pixels) at one pyramid level.

    Inverse compositional: the design matrix (template gradients times the warp
    Jacobian, plus the template and a constant for gain/offset) and its normal
    matrix over the whole usable area are precomputed; per frame only the pixels
    the query does not cover are taken out, and each iteration costs one warp of the
    query and one matrix-vector product (``einsum``, not BLAS: a multi-threaded BLAS
    competing with OpenCV's threads for two cores costs milliseconds per call).

    correlation: measure the correlation (else 0) and, with ``photometry``, refit the
    gain/offset without outliers (else the least-squares ones are returned; a caller
    that refits them at a finer level skips the refit here).
    """
    s = 2.0**-lvl.k
    a = ref_to_query.copy()
    a[:2, 2] *= s
    a[2, :2] /= s  # (stays 0 for affine matrices)
    h, w = lvl.shape
    qh, qw = query.shape
    # Template pixels whose match lies inside the query (2 px margin), fixed for this level.
    corners = np.array([[2, 2, 1], [qw - 3, 2, 1], [qw - 3, qh - 3, 1], [2, qh - 3, 1]], float)
    poly = apply(_inv(a), corners[:, :2])
    inside = np.zeros((h, w), dtype=np.uint8)
    cv2.fillConvexPoly(inside, np.round(poly * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    covered = cv2.countNonZero(inside)
    overlap = covered / inside.size
    mask_u8 = cv2.bitwise_and(inside, lvl.usable)
    n = float(cv2.countNonZero(mask_u8))
    if n < 64:
        return Fit(ref_to_query, 0.0, 1.0, 0.0, 0, overlap)
    sl = SLICES[model]
    scale = lvl.row_scale[sl]
    jac = lvl.design[sl]
    # Normal matrix: the precomputed one minus the usable pixels outside the query.
    hess = lvl.hessian(model)
    pts = cv2.findNonZero(cv2.subtract(lvl.usable, inside))
    xy = np.zeros((0, 2), np.int64) if pts is None else pts.reshape(-1, 2).astype(np.int64)
    outside = xy[:, 1] * w + xy[:, 0]
    if outside.size:
        j_out = jac[:, outside].astype(np.float64)
        hess = hess - np.einsum("ik,jk->ij", j_out, j_out)
    try:
        hess_inv = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        return Fit(ref_to_query, 0.0, 1.0, 0.0, 0, overlap)
    mask = mask_u8.ravel().astype(np.float32)
    i_gain = _GAIN_ROW[model]  # position of T (gain) in the slice; 1 follows
    radius = math.hypot(w, h) / 2.0
    gain, offset = 1.0, 0.0
    it = 0
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = np.empty((h, w), np.float32)
    for it in range(1, max_iterations + 1):
        warp(query, a, (w, h), flags=flags, dst=warped)
        c = hess_inv @ np.einsum("ij,j->i", jac, warped.ravel() * mask).astype(np.float64) / scale
        gain = float(c[i_gain])
        offset = float(c[i_gain + 1]) - gain * lvl.t_mean
        if not math.isfinite(gain) or abs(gain) < 1e-3:
            return Fit(ref_to_query, 0.0, 1.0, 0.0, it, overlap)
        geo = np.delete(c, [i_gain, i_gain + 1]) / gain
        a = a @ _inv(_delta(model, geo, lvl.center))
        if _step_size(model, geo, radius) < tolerance_px:
            break
    corr = 0.0
    if correlation:
        # ``warped`` is from the last iteration, whose update moved less than tolerance_px.
        corr = _zncc(lvl.image.ravel(), warped.ravel(), mask, n)
        if photometry:
            gain, offset = _robust_photometry(lvl.image.ravel(), warped.ravel(), mask, gain, offset)
    out = a.copy()
    out[:2, 2] /= s
    out[2, :2] *= s
    return Fit(out, corr, gain, offset, it, overlap)


TILES = (6, 4)  # the residual check's grid (columns, rows)


def residual(
    lvl: Level, query: np.ndarray, ref_to_query: np.ndarray, gain: float, offset: float
) -> float:
    """The local misfit (working pixels) a registration leaves at pyramid level ``lvl``
    (``query`` the query's float32 image at that level): see :func:`tile_residual`."""
    s = 2.0**-lvl.k
    a = ref_to_query.copy()
    a[:2, 2] *= s
    a[2, :2] /= s
    h, w = lvl.shape
    warped = warp(query, a, (w, h))
    qh, qw = query.shape
    corners = np.array([[2, 2], [qw - 3, 2], [qw - 3, qh - 3], [2, qh - 3]], float)
    inside = np.zeros((h, w), dtype=np.uint8)
    poly = apply(_inv(a), corners)
    cv2.fillConvexPoly(inside, np.round(poly * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    return tile_residual(lvl, warped, cv2.bitwise_and(inside, lvl.usable), gain, offset) / s


def tile_residual(
    lvl: Level, warped: np.ndarray, mask: np.ndarray, gain: float, offset: float
) -> float:
    """Local misfit left by a registration: the upper quartile of per-tile shifts.

    The image is cut into a 6x4 grid; in each tile with texture in both directions (an
    RMS gradient of at least one grey level per pixel) the remaining shift is one
    Lucas-Kanade translation step (level pixels) solved jointly with the tile's own gain
    and offset (uneven light is not motion). A part the motion model cannot follow
    (bent, tilted beyond the model) leaves shifts in many tiles; a defect moves one or
    two, which the quartile ignores. Returns 0 when fewer than 4 tiles carry texture.
    """
    h, w = lvl.shape
    cols, rows = TILES
    th, tw = h // rows, w // cols
    if th < 8 or tw < 8 or abs(gain) < 1e-3:
        return 0.0
    hh, ww = th * rows, tw * cols
    m = mask[:hh, :ww].astype(np.float32)
    gx = (lvl.design[_TX] * np.float32(lvl.row_scale[_TX])).reshape(h, w)[:hh, :ww]
    gy = (lvl.design[_TY] * np.float32(lvl.row_scale[_TY])).reshape(h, w)[:hh, :ww]
    t = lvl.image[:hh, :ww] - np.float32(lvl.t_mean)
    q = (warped[:hh, :ww] - np.float32(offset)) / np.float32(gain) - np.float32(lvl.t_mean)
    rows_ = (gx * m, gy * m, t * m, m)  # the tile model: q = t + dx*gx + dy*gy + a*t + b

    def tiles(a: np.ndarray) -> np.ndarray:
        out: np.ndarray = a.reshape(rows, th, cols, tw).sum(axis=(1, 3), dtype=np.float64)
        return out

    basis = (gx, gy, t, np.ones_like(t))
    normal = np.empty((rows, cols, 4, 4))
    for i in range(4):
        for j in range(i, 4):
            normal[..., i, j] = normal[..., j, i] = tiles(rows_[i] * basis[j])
    e = q - t
    rhs = np.stack([tiles(r * e) for r in rows_], axis=-1)
    sxx, sxy, syy, count = normal[..., 0, 0], normal[..., 0, 1], normal[..., 1, 1], tiles(m)
    det = sxx * syy - sxy * sxy
    # The smaller eigenvalue of the structure tensor, per pixel: texture in both directions.
    half_trace = 0.5 * (sxx + syy)
    lam_min = half_trace - np.sqrt(np.maximum(half_trace**2 - det, 0.0))
    ok = (count > 0.5 * th * tw) & (lam_min > np.maximum(count, 1.0))
    if int(ok.sum()) < 4:
        return 0.0
    try:
        sol = np.linalg.solve(normal[ok] + 1e-6 * np.eye(4), rhs[ok][..., None])[..., 0]
    except np.linalg.LinAlgError:
        return 0.0
    shifts = np.hypot(sol[:, 0], sol[:, 1])
    return float(np.percentile(shifts, 75))


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
