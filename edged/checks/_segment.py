"""Binary segmentation helpers shared by the object-mask and contour checks.

Masks here are ``(H, W)`` uint8 with 1 = object and 0 = background.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

Polarity = Literal["auto", "bright", "dark"]


def border_fraction(mask: np.ndarray) -> float:
    """Fraction of the image's border pixels (first/last row and column) set in ``mask``."""
    h, w = int(mask.shape[0]), int(mask.shape[1])
    if h < 3 or w < 3:
        return float(np.count_nonzero(mask)) / float(mask.size)
    ones = (
        int(np.count_nonzero(mask[0]))
        + int(np.count_nonzero(mask[-1]))
        + int(np.count_nonzero(mask[1:-1, 0]))
        + int(np.count_nonzero(mask[1:-1, -1]))
    )
    return ones / (2 * w + 2 * (h - 2))


def invert(mask: np.ndarray) -> np.ndarray:
    """1 - mask for a 0/1 uint8 mask."""
    return np.asarray(np.bitwise_xor(mask, np.uint8(1)), np.uint8)


def threshold(channel: np.ndarray, level: float, polarity: Polarity) -> np.ndarray:
    """Split an 8-bit channel at ``level`` into object (1) and background (0).

    ``bright``: object is ``> level``; ``dark``: object is ``<= level``; ``auto``:
    the side that covers less of the image border is the object (parts lie inside
    the field of view, the background reaches its edges).
    """
    _, bright = cv2.threshold(channel, level, 1, cv2.THRESH_BINARY)
    if polarity == "bright":
        return np.asarray(bright, np.uint8)
    if polarity == "dark" or border_fraction(bright) > 0.5:
        return invert(bright)
    return np.asarray(bright, np.uint8)


def orient(mask: np.ndarray, polarity: Polarity) -> np.ndarray:
    """Flip a 0/1 mask when ``auto`` polarity finds it covers most of the border."""
    if polarity == "auto" and border_fraction(mask) > 0.5:
        return invert(mask)
    return mask


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Only the largest 8-connected component of a 0/1 mask (all zeros stays zeros)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 2:
        return mask
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return np.asarray(labels == biggest, np.uint8)


def fill_outer_contours(edges: np.ndarray) -> np.ndarray:
    """Fill every region enclosed by an outer contour of a 0/255 or 0/1 edge map (0/1 out)."""
    contours, _ = cv2.findContours(edges, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros(edges.shape, np.uint8)
    if contours:
        cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled
