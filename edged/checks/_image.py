"""The image contract every check shares, and the reduced-resolution helpers.

Images are ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR (OpenCV order).
Checks whose semantics survive a smaller image (segmentation, contours, heat maps)
work on an area-averaged copy reduced by an integer factor and map their answers
back to input pixels; :class:`Reduced` carries that factor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from edged.core.errors import InputError

CONTRACT = "(H, W) uint8 grey or (H, W, 3) uint8 BGR"


def describe(image: object) -> str:
    """A short description of what came, for error messages."""
    if isinstance(image, np.ndarray):
        return f"array of shape {image.shape} and dtype {image.dtype}"
    return f"{type(image).__name__}"


def contract_problem(image: object) -> str | None:
    """None when ``image`` meets the contract, else what is wrong with it."""
    if not isinstance(image, np.ndarray):
        return f"expected a NumPy array {CONTRACT}, got {describe(image)}"
    if image.dtype != np.uint8:
        return f"expected {CONTRACT}, got dtype {image.dtype}"
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        return f"expected {CONTRACT}, got shape {image.shape}"
    if image.size == 0:
        return f"expected a non-empty image {CONTRACT}, got shape {image.shape}"
    return None


def require_image(image: object) -> np.ndarray:
    """Return ``image`` if it meets the contract, else raise InputError saying why."""
    problem = contract_problem(image)
    if problem is not None:
        raise InputError(f"image: {problem}")
    assert isinstance(image, np.ndarray)
    return image


def to_grey(image: np.ndarray) -> np.ndarray:
    """Luma (ITU-R BT.601, OpenCV's BGR2GRAY) of a contract image; grey is returned as is."""
    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def to_bgr(image: np.ndarray) -> np.ndarray:
    """A 3-channel BGR view of a contract image (grey is replicated)."""
    if image.ndim == 3:
        return image
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)


@dataclass(frozen=True, slots=True)
class Reduced:
    """An image reduced by an integer ``factor`` (1 = untouched) and its input size.

    Work pixel ``(i, j)`` covers input pixels ``[i*factor, (i+1)*factor)`` on
    each axis, so answers map back exactly up to ``factor`` pixels. When a side is
    not a multiple of the factor, its last ``< factor`` input rows/columns are not
    looked at and masks replicate the last work row/column over them.
    """

    image: np.ndarray
    factor: int
    input_wh: tuple[int, int]

    def box_to_input(self, x: int, y: int, w: int, h: int) -> tuple[int, int, int, int]:
        """A work-resolution box ``x, y, w, h`` as an input-resolution box, clipped."""
        f = self.factor
        iw, ih = self.input_wh
        x0, y0 = x * f, y * f
        x1, y1 = min((x + w) * f, iw), min((y + h) * f, ih)
        return x0, y0, x1 - x0, y1 - y0

    def points_to_input(self, points_xy: np.ndarray) -> np.ndarray:
        """Work-resolution pixel coordinates ``(N, 2)`` as input coordinates (pixel centres)."""
        f = self.factor
        if f == 1:
            return points_xy.astype(np.float64)
        return (points_xy.astype(np.float64) + 0.5) * f - 0.5

    def mask_to_input(self, mask: np.ndarray) -> np.ndarray:
        """A work-resolution mask as an input-resolution mask (nearest neighbour)."""
        if self.factor == 1:
            return mask
        iw, ih = self.input_wh
        big = cv2.resize(
            mask, None, fx=self.factor, fy=self.factor, interpolation=cv2.INTER_NEAREST
        )
        if big.shape[1] < iw or big.shape[0] < ih:  # sizes not divisible by the factor
            big = cv2.copyMakeBorder(
                big, 0, ih - big.shape[0], 0, iw - big.shape[1], cv2.BORDER_REPLICATE
            )
        return big[:ih, :iw]


def reduce_factor(width: int, height: int, max_side_px: int) -> int:
    """The smallest integer factor bringing the longest side to ``max_side_px`` or less.

    ``max_side_px == 0`` means full resolution (factor 1).
    """
    if max_side_px <= 0:
        return 1
    return max(1, math.ceil(max(width, height) / max_side_px))


def reduce(image: np.ndarray, *, max_side_px: int) -> Reduced:
    """Area-average ``image`` down by an integer factor so its longest side is
    ``max_side_px`` or less (0 = keep full resolution)."""
    h, w = image.shape[:2]
    f = min(reduce_factor(w, h, max_side_px), w, h)
    if f == 1:
        return Reduced(image, 1, (w, h))
    ws, hs = w // f, h // f
    # An exact integer factor: OpenCV's fast area path, and work pixels map to
    # whole input blocks.
    small = cv2.resize(image[: hs * f, : ws * f], (ws, hs), interpolation=cv2.INTER_AREA)
    return Reduced(small, f, (w, h))
