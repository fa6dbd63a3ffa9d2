"""Pixel formats: turn a Frame's raw buffer into an image the checks accept.

Output images are ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR.

GenICam PFNC Bayer names are offset from OpenCV's conversion-code names: PFNC
``BayerRG`` (first row R G) is OpenCV ``COLOR_BayerRGGB2BGR``. Using OpenCV's
legacy name that merely *looks* the same swaps red and blue.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from edged.errors import InputError
from edged.frames import Frame

BayerPattern = Literal["RG", "GR", "GB", "BG"]
Demosaic = Literal["bilinear", "ea", "vng"]

# PFNC pattern (first two pixels of the first row) -> OpenCV code, per method.
_BAYER_CODES: dict[BayerPattern, dict[Demosaic, int]] = {
    "RG": {
        "bilinear": cv2.COLOR_BayerRGGB2BGR,
        "ea": cv2.COLOR_BayerRGGB2BGR_EA,
        "vng": cv2.COLOR_BayerRGGB2BGR_VNG,
    },
    "GR": {
        "bilinear": cv2.COLOR_BayerGRBG2BGR,
        "ea": cv2.COLOR_BayerGRBG2BGR_EA,
        "vng": cv2.COLOR_BayerGRBG2BGR_VNG,
    },
    "GB": {
        "bilinear": cv2.COLOR_BayerGBRG2BGR,
        "ea": cv2.COLOR_BayerGBRG2BGR_EA,
        "vng": cv2.COLOR_BayerGBRG2BGR_VNG,
    },
    "BG": {
        "bilinear": cv2.COLOR_BayerBGGR2BGR,
        "ea": cv2.COLOR_BayerBGGR2BGR_EA,
        "vng": cv2.COLOR_BayerBGGR2BGR_VNG,
    },
}

SUPPORTED_FORMATS: tuple[str, ...] = (
    "Mono8",
    "BGR8",
    "RGB8",
    "BayerRG8",
    "BayerGR8",
    "BayerGB8",
    "BayerBG8",
)


def debayer(raw: np.ndarray, pattern: BayerPattern, *, method: Demosaic = "bilinear") -> np.ndarray:
    """Demosaic a ``(H, W)`` uint8 Bayer mosaic with PFNC ``pattern`` into ``(H, W, 3)`` BGR."""
    return cv2.cvtColor(raw, _BAYER_CODES[pattern][method])


def decode(
    frame: Frame,
    *,
    demosaic: Demosaic = "bilinear",
    bayer_pattern: BayerPattern | None = None,
) -> np.ndarray:
    """Decode ``frame`` into ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR.

    ``bayer_pattern`` tells a camera that reports Mono8 its real sensor pattern.
    Raises InputError for an unsupported format or a buffer of the wrong size.
    """
    fmt = frame.pixel_format
    if fmt == "Mono8" and bayer_pattern is not None:
        fmt = f"Bayer{bayer_pattern}8"
    h, w = frame.height, frame.width
    data = frame.data
    if fmt in ("Mono8", "BayerRG8", "BayerGR8", "BayerGB8", "BayerBG8"):
        img = _as_shape(data, (h, w), fmt)
        if fmt == "Mono8":
            return img
        return debayer(img, fmt[5:7], method=demosaic)  # type: ignore[arg-type]
    if fmt in ("BGR8", "RGB8"):
        img = _as_shape(data, (h, w, 3), fmt)
        return img if fmt == "BGR8" else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    msg = f"unsupported pixel format: expected one of {', '.join(SUPPORTED_FORMATS)}, got {fmt!r}"
    raise InputError(msg)


def _as_shape(data: np.ndarray, shape: tuple[int, ...], fmt: str) -> np.ndarray:
    if data.dtype != np.uint8:
        msg = f"{fmt}: expected uint8 data, got {data.dtype}"
        raise InputError(msg)
    if data.shape == shape:
        return data
    expected = int(np.prod(shape))
    if data.size != expected:
        msg = f"{fmt}: expected {expected} bytes for {shape}, got {data.size}"
        raise InputError(msg)
    return data.reshape(shape)
