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


def _channels(image: np.ndarray, order: str) -> np.ndarray:
    grey = image.ndim == 2
    if order == "L":
        return image if grey else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if grey:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB if order == "RGB" else cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if order == "RGB" else image


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
    pixels = _channels(image, prep.color_channels)
    resized, geometry, (tw, th) = _resize(pixels, prep)
    if resized.ndim == 2:
        resized = resized[:, :, None]
    means = np.asarray(prep.mean if mean is None else mean, np.float32).reshape(-1)
    stds = np.asarray(prep.std, np.float32).reshape(-1)
    plain = prep.pixel_scaling == 255.0 and not means.any() and not len(stds)
    if prep.data_type == "UINT8" and plain:
        hwc = resized
    else:
        hwc = resized.astype(np.float32)
        hwc *= np.float32(prep.pixel_scaling / 255.0)
        if means.size:
            hwc -= means
        if stds.size:
            hwc /= stds
    if hwc.shape[:2] != (th, tw):  # NETWORK: pad right and bottom with zeros
        padded = np.zeros((th, tw, hwc.shape[2]), hwc.dtype)
        padded[: hwc.shape[0], : hwc.shape[1]] = hwc
        hwc = padded
    dtype = {"FLOAT32": np.float32, "FLOAT16": np.float16, "UINT8": np.uint8}[prep.data_type]
    if hwc.dtype != dtype:
        if dtype == np.uint8:
            hwc = np.clip(np.rint(hwc), 0, 255)
        hwc = hwc.astype(dtype)
    if prep.dimension_order == "NCHW":
        tensor = np.ascontiguousarray(hwc.transpose(2, 0, 1))[None]
    else:
        tensor = np.ascontiguousarray(hwc)[None]
    return tensor, geometry
