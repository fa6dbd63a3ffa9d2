"""Safe image decoding for the image services: PNG, JPEG, GIF, BMP, TIFF and WebP.

``decode_image(data, max_pixels=...)`` reads the width and height from the file
header *before* decoding, so a small file that would inflate to gigapixels (a
decompression bomb) is refused with 413 without allocating it. Garbage, unknown
formats and truncated files are InputError (400). PNG and JPEG go through the
same decoder as the analyze endpoints (:mod:`edged.http._decode`); this module
adds GIF (the LTU document's fourth format: its first frame), BMP, TIFF and
WebP. Output follows the check contract: ``(H, W)`` uint8 grey or ``(H, W, 3)``
uint8 BGR (16-bit samples are scaled to 8 bits, alpha is dropped, EXIF orientation
is ignored so pixel coordinates match the stored pixel grid).
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

from edged.core.errors import InputError
from edged.http._decode import check_pixels, decode_encoded
from edged.http._imagehead import read_head
from edged.imaging.png import SIGNATURE as PNG_SIGNATURE

FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WebP")
_EXPECTED = "expected a PNG, JPEG, GIF, BMP, TIFF or WebP image"
_JPEG_SOI = b"\xff\xd8"


def image_size(data: bytes) -> tuple[str, int, int]:
    """``(format, width, height)`` from an image header; InputError when unreadable."""
    if data.startswith((PNG_SIGNATURE, _JPEG_SOI)):
        head = read_head(data)
        return head.format, head.width, head.height
    if len(data) < 16:
        raise InputError(f"image: {_EXPECTED}, got {_show(data)} ({len(data)} bytes)")
    if data[:6] in (b"GIF87a", b"GIF89a"):
        w, h = struct.unpack_from("<HH", data, 6)
        return "GIF", w, h
    if data.startswith(b"BM"):
        return _bmp(data)
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp(data)
    raise InputError(f"image: {_EXPECTED}, got data starting with {_show(data)}")


def decode_image(data: bytes, *, max_pixels: int) -> np.ndarray:
    """Decode ``data`` to ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR.

    Raises TooLargeError (413) when the header's ``width * height`` exceeds
    ``max_pixels``, InputError (400) for anything that is not a complete image.
    """
    if data.startswith((PNG_SIGNATURE, _JPEG_SOI)):
        return decode_encoded(data, max_pixels=max_pixels)[0]
    fmt, w, h = image_size(data)
    if w <= 0 or h <= 0:
        raise InputError(f"image: {fmt} header gives an empty size {w}×{h}")
    check_pixels(w, h, max_pixels, f"{fmt} image")
    flags = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as exc:
        msg = f"image: {fmt} of {w}×{h} could not be decoded ({exc.err or exc})"
        raise InputError(msg) from exc
    if image is None:
        raise InputError(f"image: {fmt} of {w}×{h} could not be decoded (corrupt or truncated)")
    if image.shape[:2] != (h, w):
        msg = f"image: {fmt} header says {w}×{h}, decoded {image.shape[1]}×{image.shape[0]}"
        raise InputError(msg)
    if image.dtype != np.uint8:  # pragma: no cover - ANYCOLOR without ANYDEPTH gives 8 bits
        image = cv2.convertScaleAbs(image, alpha=255.0 / float(np.iinfo(image.dtype).max))
    return np.ascontiguousarray(image)


def _show(data: bytes) -> str:
    return repr(data[:12])


def _truncated(fmt: str, what: str) -> InputError:
    return InputError(f"image: expected a complete {fmt} file, got a truncated one ({what})")


def _bmp(data: bytes) -> tuple[str, int, int]:
    if len(data) < 26:
        raise _truncated("BMP", "header")
    (dib,) = struct.unpack("<I", data[14:18])
    if dib == 12:
        w, h = struct.unpack("<HH", data[18:22])
    else:
        w, h = struct.unpack("<ii", data[18:26])
    (offset,) = struct.unpack("<I", data[10:14])
    if offset >= len(data):
        raise _truncated("BMP", "no pixel data")
    return "BMP", abs(w), abs(h)


def _tiff(data: bytes) -> tuple[str, int, int]:
    endian = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(endian + "I", data[4:8])
    if ifd + 2 > len(data):
        raise _truncated("TIFF", "first IFD beyond the end")
    (count,) = struct.unpack(endian + "H", data[ifd : ifd + 2])
    found: dict[int, int] = {}
    for k in range(count):
        at = ifd + 2 + 12 * k
        if at + 12 > len(data):
            raise _truncated("TIFF", "IFD")
        tag, typ = struct.unpack(endian + "HH", data[at : at + 4])
        if tag in (256, 257):
            if typ == 3:
                (value,) = struct.unpack(endian + "H", data[at + 8 : at + 10])
            elif typ == 4:
                (value,) = struct.unpack(endian + "I", data[at + 8 : at + 12])
            else:
                raise InputError(f"image: TIFF size tag {tag} has unsupported type {typ}")
            found[tag] = value
    if 256 not in found or 257 not in found:
        raise InputError("image: TIFF without ImageWidth/ImageLength tags")
    return "TIFF", found[256], found[257]


def _webp(data: bytes) -> tuple[str, int, int]:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return "WebP", w, h
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack("<HH", data[26:30])
        return "WebP", w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return "WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    raise InputError(f"image: WebP with an unreadable header (chunk {chunk!r})")
