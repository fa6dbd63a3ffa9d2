"""PNG and base64 encoding shared by the checks' ``to_dict()``.

Binary masks are written as 1-bit PNGs: the stored samples are exactly 1 (object)
and 0 (background), and any viewer shows them white on black. Decoding with
OpenCV gives 0/255.
"""

from __future__ import annotations

import base64

import cv2
import numpy as np

from edged.imaging.png_write import encode_png

# zlib level 1: masks and edge maps compress well at once; level 9 costs ~3x time.
_FAST = [cv2.IMWRITE_PNG_COMPRESSION, 1]


def mask_png_bytes(mask: np.ndarray) -> bytes:
    """Encode an ``(H, W)`` uint8 mask (non-zero = 1) as a 1-bit greyscale PNG."""
    ok, buf = cv2.imencode(".png", mask, [cv2.IMWRITE_PNG_BILEVEL, 1, *_FAST])
    if not ok:  # pragma: no cover
        msg = f"PNG encoding failed for a mask of shape {mask.shape}, dtype {mask.dtype}"
        raise ValueError(msg)
    return buf.tobytes()


def b64(data: bytes) -> str:
    """Standard base64 text (RFC 4648, with padding)."""
    return base64.b64encode(data).decode("ascii")


def png_base64(image: np.ndarray) -> str:
    """``image`` (``(H, W)`` or ``(H, W, 3)`` uint8 BGR) as base64 PNG text."""
    return b64(encode_png(image))


def mask_png_base64(mask: np.ndarray) -> str:
    """A binary mask as base64 1-bit PNG text (samples 1 = object, 0 = background)."""
    return b64(mask_png_bytes(mask))


def image_object(png_b64: str | None) -> dict[str, str] | None:
    """An LTU image object: ``{"encoding": "base64", "format": "image/png", "value"}``
    around base64 PNG text (None stays None)."""
    if png_b64 is None:
        return None
    return {"encoding": "base64", "format": "image/png", "value": png_b64}
