"""Lighting normalisation for reference inspection: a smooth gain field, not one gain.

Real lines light a part unevenly, and the unevenness changes (a lamp ages, a part
sits closer to one side): the query is then the reference times a gain that varies
smoothly across the image, plus an offset. :func:`fit_lighting` fits

    query(x, y) = g(x, y) * reference(x, y) + offset,   g quadratic in x and y,

robustly (defects are not lighting: two reweighting passes drop pixels beyond three
robust sigmas) on a sparse grid of the inspected area, and :func:`normalise` maps a
query channel back onto the reference's lighting. A fit that is not better than one
gain (flat parts, too few pixels) falls back to the global gain/offset.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

GRID_STEP_PX = 8  # working pixels between the samples of the fit
FIELD_CELL_PX = 16  # the gain field is evaluated on a grid this coarse, then interpolated
# Values this close to 0 or 255 may be clipped (JPEG turns a saturated area into blocks of
# 250..255): their true level is unknown beyond the clip.
CLIP_MARGIN = 5


@dataclass(frozen=True, slots=True)
class Lighting:
    """``query ~ gain_field * reference + offset``; ``coefficients`` of the quadratic gain
    ``(c0, cx, cy, cxx, cxy, cyy)`` in coordinates centred on the image and scaled to
    [-0.5, 0.5]; ``spread`` is the field's largest relative departure from ``c0``."""

    coefficients: tuple[float, float, float, float, float, float]
    offset: float
    spread: float

    @property
    def gain(self) -> float:
        return self.coefficients[0]

    @classmethod
    def uniform(cls, gain: float, offset: float) -> Lighting:
        return cls((gain, 0.0, 0.0, 0.0, 0.0, 0.0), offset, 0.0)

    def field(self, size_wh: tuple[int, int]) -> np.ndarray:
        """The gain at every pixel of a ``size_wh`` image, ``(H, W)`` float32."""
        w, h = size_wh
        cw, ch = max(2, -(-w // FIELD_CELL_PX) + 1), max(2, -(-h // FIELD_CELL_PX) + 1)
        u = (np.linspace(0, w - 1, cw) / max(w - 1, 1) - 0.5)[None, :]
        v = (np.linspace(0, h - 1, ch) / max(h - 1, 1) - 0.5)[:, None]
        c0, cx, cy, cxx, cxy, cyy = self.coefficients
        coarse = (c0 + cx * u + cy * v + cxx * u * u + cxy * u * v + cyy * v * v).astype(np.float32)
        out: np.ndarray = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
        return out


def _design(r: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    one = np.ones_like(r)
    return np.stack([r, r * u, r * v, r * u * u, r * u * v, r * v * v, one], axis=1)


def _solve(design: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least squares through the (7x7) normal equations: ``einsum``, not a BLAS ``lstsq``
    (a multi-threaded BLAS competing with OpenCV's threads costs tens of milliseconds)."""
    scale = np.sqrt(np.einsum("ij,ij->j", design, design)) + 1e-12
    d = design / scale
    normal = np.einsum("ij,ik->jk", d, d) + 1e-9 * np.eye(design.shape[1])
    out: np.ndarray = np.linalg.solve(normal, np.einsum("ij,i->j", d, target)) / scale
    return out


def fit_lighting(
    reference: np.ndarray,
    query: np.ndarray,
    area: np.ndarray,
    *,
    gain: float,
    offset: float,
    min_spread: float = 0.01,
) -> Lighting:
    """Fit the lighting of ``query`` relative to ``reference``.

    reference, query: ``(H, W)`` luma in the same geometry (uint8 or float32).
    area: ``(H, W)`` uint8 mask of the pixels both images cover (non-zero = use).
    gain, offset: the global estimate (registration's), kept when the field does not
        explain the pixels better or departs from one gain by less than ``min_spread``.
    """
    h, w = reference.shape
    s = GRID_STEP_PX
    ys, xs = np.mgrid[s // 2 : h : s, s // 2 : w : s]
    q_all = query[ys, xs]
    # Clipped pixels say nothing about the lighting (their true level is beyond the clip).
    sel = (area[ys, xs] > 0) & (q_all > CLIP_MARGIN) & (q_all < 255 - CLIP_MARGIN)
    if int(sel.sum()) < 200:
        return Lighting.uniform(gain, offset)
    ys, xs = ys[sel], xs[sel]
    r = reference[ys, xs].astype(np.float64)
    q = query[ys, xs].astype(np.float64)
    u = xs / max(w - 1, 1) - 0.5
    v = ys / max(h - 1, 1) - 0.5
    design = _design(r, u, v)
    res = q - (gain * r + offset)
    sigma = 1.4826 * float(np.median(np.abs(res - np.median(res))))
    keep = np.abs(res - np.median(res)) <= max(3.0 * sigma, 6.0)
    coef = np.zeros(7)
    for _ in range(3):
        if int(keep.sum()) < 100:
            return Lighting.uniform(gain, offset)
        coef = _solve(design[keep], q[keep])
        res = q - design @ coef
        sigma = 1.4826 * float(np.median(np.abs(res[keep])))
        keep = np.abs(res) <= max(3.0 * sigma, 4.0)
    c0 = float(coef[0])
    if not np.all(np.isfinite(coef)) or c0 < 0.2:
        return Lighting.uniform(gain, offset)
    corners_u = np.array([-0.5, 0.5, 0.5, -0.5, 0.0])
    corners_v = np.array([-0.5, -0.5, 0.5, 0.5, 0.0])
    g = _design(np.ones(5), corners_u, corners_v)[:, :6] @ coef[:6]
    if float(g.min()) < 0.2:
        return Lighting.uniform(gain, offset)
    spread = float(np.abs(g / c0 - 1.0).max())
    if spread < min_spread:
        return Lighting.uniform(gain, offset)
    c = tuple(float(x) for x in coef[:6])
    return Lighting((c[0], c[1], c[2], c[3], c[4], c[5]), float(coef[6]), spread)


def normalise(channel: np.ndarray, lighting: Lighting) -> tuple[np.ndarray, np.ndarray | None]:
    """Map a registered ``(H, W)`` uint8 channel onto the reference's lighting.

    Returns ``(image, for_dark)``: ``for_dark`` is None unless the channel has (nearly)
    clipped pixels; then ``image`` keeps 0 where the query read ``CLIP_MARGIN`` or less
    (it may be darker, never a bright defect) and ``for_dark`` keeps 255 where it read
    ``255 - CLIP_MARGIN`` or more (never a dark one).
    """
    h, w = channel.shape
    shifted = channel.astype(np.float32) - np.float32(lighting.offset)
    out_f = cv2.divide(shifted, lighting.field((w, h)))
    out: np.ndarray = np.clip(np.rint(out_f), 0, 255).astype(np.uint8)
    lo, hi, _, _ = cv2.minMaxLoc(channel)
    if lo > CLIP_MARGIN and hi < 255 - CLIP_MARGIN:
        return out, None
    bright = out.copy()
    bright[channel <= CLIP_MARGIN] = 0
    dark = out.copy()
    dark[channel >= 255 - CLIP_MARGIN] = 255
    return bright, dark
