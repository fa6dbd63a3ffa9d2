"""Image -> network input tensor, in the Deepomatic preprocessing vocabulary.

:func:`preprocess` is pure: an ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR
image in, a ``(1, C, H, W)`` / ``(1, H, W, C)`` tensor and the :class:`Geometry`
that maps tensor pixels back to the image out.

- ``SQUASH`` resizes to the target size, ignoring the aspect ratio.
- ``CROP`` resizes so the image covers the target, then crops its centre.
- ``NETWORK`` keeps the aspect ratio: the image fits inside the target and the
  rest (right and bottom) is zero in the tensor; with a single side N, the longest
  side becomes N and nothing is padded (for networks with a free input size).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from edged.models.vocabulary import ImagePreprocessing


@dataclass(frozen=True, slots=True)
class Geometry:
    """``tensor_xy = image_xy * scale + offset``, for an image of ``image_wh`` pixels."""

    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float
    tensor_wh: tuple[int, int]
    image_wh: tuple[int, int]

    def to_image(self, xyxy: np.ndarray) -> np.ndarray:
        """Boxes ``(N, 4)`` in tensor pixels -> normalised [0, 1] of the image, clipped."""
        out = np.empty_like(xyxy, dtype=np.float64)
        w, h = self.image_wh
        out[:, 0::2] = (xyxy[:, 0::2] - self.offset_x) / self.scale_x / w
        out[:, 1::2] = (xyxy[:, 1::2] - self.offset_y) / self.scale_y / h
        return np.clip(out, 0.0, 1.0)


def tensor_size(prep: ImagePreprocessing, image_wh: tuple[int, int]) -> tuple[int, int]:
    """The ``(width, height)`` of the tensor ``prep`` makes from an image of ``image_wh``."""
    width, height = prep.size_wh()
    if height is not None:
        return width, height
    if prep.resize_type != "NETWORK":
        return width, width
    w, h = image_wh
    s = width / max(w, h)
    return max(1, round(w * s)), max(1, round(h * s))


def _planes(resized: np.ndarray, order: str) -> list[np.ndarray]:
    """The resized image's channel planes in the network's order (BGR, RGB or L)."""
    if order == "L":
        grey = resized if resized.ndim == 2 else cv2.cvtColor(resized, cv2.COLOR_BGR2GRAY)
        return [grey]
    if resized.ndim == 2:
        return [resized] * 3
    planes = list(cv2.split(resized))
    return planes[::-1] if order == "RGB" else planes


def _resize(
    image: np.ndarray, prep: ImagePreprocessing
) -> tuple[np.ndarray, Geometry, tuple[int, int]]:
    """Resized pixels, the geometry, and the ``(width, height)`` of the tensor."""
    h, w = image.shape[:2]
    tw, th = tensor_size(prep, (w, h))
    if prep.resize_type == "SQUASH":
        out = cv2.resize(image, (tw, th), interpolation=cv2.INTER_LINEAR)
        return out, Geometry(tw / w, th / h, 0.0, 0.0, (tw, th), (w, h)), (tw, th)
    if prep.resize_type == "CROP":
        s = max(tw / w, th / h)
        rw, rh = max(tw, round(w * s)), max(th, round(h * s))
        resized = cv2.resize(image, (rw, rh), interpolation=cv2.INTER_LINEAR)
        x0, y0 = (rw - tw) // 2, (rh - th) // 2
        out = resized[y0 : y0 + th, x0 : x0 + tw]
        return out, Geometry(rw / w, rh / h, -x0, -y0, (tw, th), (w, h)), (tw, th)
    s = min(tw / w, th / h)
    rw, rh = min(tw, max(1, round(w * s))), min(th, max(1, round(h * s)))
    out = cv2.resize(image, (rw, rh), interpolation=cv2.INTER_LINEAR)
    return out, Geometry(rw / w, rh / h, 0.0, 0.0, (tw, th), (w, h)), (tw, th)


@functools.lru_cache(maxsize=256)
def _affine(
    scaling: float, means: tuple[float, ...], stds: tuple[float, ...], n: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel ``gain, offset``: ``(x / 255 * scaling - mean) / std = x * gain + offset``."""
    m = np.broadcast_to(np.asarray(means or (0.0,), np.float64), (n,))
    s = np.broadcast_to(np.asarray(stds or (1.0,), np.float64), (n,))
    return tuple(float(v) for v in scaling / 255.0 / s), tuple(float(v) for v in -m / s)


def preprocess(
    image: np.ndarray,
    prep: ImagePreprocessing,
    *,
    mean: np.ndarray | None = None,
) -> tuple[np.ndarray, Geometry]:
    """The network input for ``image`` (``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR).

    ``mean`` overrides ``prep.mean`` (per-channel values read from a mean file).
    Returns a batch of one in ``prep.dimension_order`` and ``prep.data_type``.
    """
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or image.size == 0:
        msg = f"image: expected (H, W) or (H, W, 3) uint8, got {image.shape} {image.dtype}"
        raise ValueError(msg)
    resized, geometry, (tw, th) = _resize(image, prep)
    planes = _planes(resized, prep.color_channels)
    rh, rw = planes[0].shape[:2]
    n = len(planes)
    # (x / 255 * pixel_scaling - mean) / std  ==  x * gain + offset, per channel
    means = prep.mean if mean is None else tuple(float(v) for v in np.ravel(mean))
    gain, offset = _affine(prep.pixel_scaling, means, prep.std, n)
    plain = all(g == 1.0 for g in gain) and not any(offset)
    if prep.dimension_order == "NCHW" and prep.data_type == "FLOAT32":
        chw = np.zeros((n, th, tw), np.float32)
        for c, plane in enumerate(planes):  # convert, scale and shift in one pass per plane
            chw[c, :rh, :rw] = cv2.addWeighted(
                plane, gain[c], plane, 0.0, offset[c], dtype=cv2.CV_32F
            )
        return chw[None], geometry
    hwc = cv2.merge(planes) if n > 1 else planes[0][:, :, None]
    if not (prep.data_type == "UINT8" and plain):
        g, o = np.asarray(gain, np.float32), np.asarray(offset, np.float32)
        hwc = hwc.astype(np.float32) * g + o
    if hwc.shape[:2] != (th, tw):  # NETWORK: pad right and bottom with zeros
        padded = np.zeros((th, tw, n), hwc.dtype)
        padded[:rh, :rw] = hwc
        hwc = padded
    dtype = {"FLOAT32": np.float32, "FLOAT16": np.float16, "UINT8": np.uint8}[prep.data_type]
    if hwc.dtype != dtype:
        if dtype == np.uint8:
            hwc = np.clip(np.rint(hwc), 0, 255)
        hwc = hwc.astype(dtype)
    if prep.dimension_order == "NCHW":
        return np.ascontiguousarray(hwc.transpose(2, 0, 1))[None], geometry
    return np.ascontiguousarray(hwc)[None], geometry
