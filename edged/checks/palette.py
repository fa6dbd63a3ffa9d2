"""colorPalette: the most prevalent colours of an image, ``[R, G, B, percent]``.

Deterministic for a given image:

1. sample: when the image has more than ``max_samples`` pixels, a regular grid
   of pixels (nearest-neighbour decimation, no blending of colours);
2. quantise each sampled pixel to 5 bits per channel (32³ cells) and keep, per
   occupied cell, its pixel count and the mean of its pixels' true colours;
3. weighted k-means over the occupied cells in RGB with ``count`` clusters,
   started from the most populous cell and then farthest-point cells (no random
   seed), at most 30 Lloyd iterations;
4. each colour is the mean true colour of its cluster's pixels, and its percent
   the share of sampled pixels; listed largest share first.

An image with fewer distinct colour cells than ``count`` returns fewer colours,
e.g. a two-colour image gives exactly those two colours at their pixel shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from pydantic import Field

from edged.checks._base import CheckOptions, LtuReply, function_spec
from edged.checks._image import require_image, to_bgr

_ITERATIONS = 30
_CELLS = 1 << 15


@dataclass(frozen=True, slots=True)
class Palette:
    """Colours as ``(R, G, B, percent)``, largest share first; ``sampled_px`` is how
    many pixels were counted."""

    colors: tuple[tuple[int, int, int, float], ...]
    sampled_px: int

    @property
    def count(self) -> int:
        return len(self.colors)

    def to_dict(self) -> dict[str, Any]:
        return {
            "colors": [[r, g, b, round(p, 3)] for r, g, b, p in self.colors],
            "count": self.count,
            "sampled_px": self.sampled_px,
        }


def color_palette(image: np.ndarray, *, count: int = 5, max_samples: int = 262_144) -> Palette:
    """The ``count`` most prevalent colours of ``image``.

    image: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR (grey gives grey colours).
    count: number of colours, 1..32.
    max_samples: pixels counted at most (a regular grid over the image), >= 1024.

    Raises InputError for an image outside the contract, ValueError for options
    out of range.
    """
    image = require_image(image)
    if not 1 <= count <= 32:
        msg = f"count: expected 1..32 colours, got {count!r}"
        raise ValueError(msg)
    if max_samples < 1024:
        msg = f"max_samples: expected >= 1024, got {max_samples!r}"
        raise ValueError(msg)
    bgr = to_bgr(image)
    h, w = bgr.shape[:2]
    if h * w > max_samples:
        scale = (max_samples / (h * w)) ** 0.5
        size = (max(1, int(w * scale)), max(1, int(h * scale)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_NEAREST)
    pixels = bgr.reshape(-1, 3)
    rgb = pixels[:, ::-1].astype(np.intp)
    cell = (rgb[:, 0] >> 3) << 10 | (rgb[:, 1] >> 3) << 5 | (rgb[:, 2] >> 3)
    counts = np.bincount(cell, minlength=_CELLS)
    occupied = np.flatnonzero(counts)
    weights = counts[occupied].astype(np.float64)
    sums = np.stack(
        [np.bincount(cell, weights=rgb[:, c], minlength=_CELLS)[occupied] for c in range(3)],
        axis=1,
    )
    means = sums / weights[:, None]
    labels = _kmeans(means, weights, min(count, occupied.size))
    k = int(labels.max()) + 1
    cluster_w = np.bincount(labels, weights=weights, minlength=k)
    cluster_sum = np.stack(
        [np.bincount(labels, weights=sums[:, c], minlength=k) for c in range(3)], axis=1
    )
    total = float(pixels.shape[0])
    found = [
        (cluster_sum[j] / cluster_w[j], 100.0 * cluster_w[j] / total)
        for j in range(k)
        if cluster_w[j] > 0
    ]
    colors = [
        (round(float(c[0])), round(float(c[1])), round(float(c[2])), float(p)) for c, p in found
    ]
    colors.sort(key=lambda c: (-c[3], c[0], c[1], c[2]))
    return Palette(tuple(colors), int(total))


def _kmeans(points: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """Weighted Lloyd k-means with farthest-point seeding from the heaviest point.

    Returns each point's cluster label in 0..k-1 (labels are compacted so that
    every label in use is below the number of non-empty clusters).
    """
    centers = [points[int(np.argmax(weights))]]
    dist = ((points - centers[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        nxt = int(np.argmax(dist))
        if dist[nxt] <= 0:
            break
        centers.append(points[nxt])
        dist = np.minimum(dist, ((points - points[nxt]) ** 2).sum(axis=1))
    c = np.array(centers)
    labels = np.zeros(points.shape[0], np.intp)
    for it in range(_ITERATIONS):
        d = ((points[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
        new = np.argmin(d, axis=1)
        if it > 0 and np.array_equal(new, labels):
            break
        labels = new
        w = np.bincount(labels, weights=weights, minlength=c.shape[0])
        for ch in range(3):
            s = np.bincount(labels, weights=points[:, ch] * weights, minlength=c.shape[0])
            c[:, ch] = np.where(w > 0, s / np.maximum(w, 1e-12), c[:, ch])
    _, compact = np.unique(labels, return_inverse=True)
    return np.asarray(compact, np.intp)


class PaletteOptions(CheckOptions):
    """colorPalette (:func:`color_palette`)."""

    count: int = Field(default=5, ge=1, le=32, description="number of colours")
    max_samples: int = Field(default=262_144, ge=1024, le=1 << 26)


def ltu_reply(result: Palette, _: object) -> LtuReply:
    """colorPalette as the LTU document shapes it: ``colors`` ``[R, G, B, %]``,
    ``details.message`` "Found N colors", ``details.info`` ``{count, format: "RGB%"}``."""
    return LtuReply(
        result.to_dict(),
        message=f"Found {result.count} colors",
        info={"count": result.count, "format": "RGB%"},
    )


SPEC = function_spec(
    "palette",
    color_palette,
    PaletteOptions,
    figures=("colors.*.*", "count", "sampled_px"),
    to_figures=lambda result, _: result.to_dict(),
    ltu=("colorPalette", PaletteOptions, "Most prevalent colours as [R, G, B, percent]"),
    to_ltu=ltu_reply,
    description="most prevalent colours with shares",
)
