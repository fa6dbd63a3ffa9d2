"""Safe image decoding for HTTP input: size from the header first, then decode.

``decode_image(data, max_pixels=...)`` reads the width and height from the
PNG / JPEG / BMP / TIFF / WebP header *before* decoding, so a small file that
would inflate to gigapixels (a decompression bomb) is refused with 413 without
allocating it. Garbage, unknown formats and truncated files are InputError (400).
Output follows the check contract: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8
BGR (16-bit samples are scaled to 8 bits, alpha is dropped, EXIF orientation is
ignored so pixel coordinates match the stored pixel grid).
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

from edged.errors import InputError, TooLargeError

FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WebP")
_EXPECTED = "expected a PNG, JPEG, BMP, TIFF or WebP image"

# JPEG start-of-frame markers carry the size (C4 DHT, C8 JPG, CC DAC are not SOFs).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}


def image_size(data: bytes) -> tuple[str, int, int]:
    """``(format, width, height)`` from an image header; InputError when unreadable."""
    if len(data) < 16:
        raise InputError(f"image: {_EXPECTED}, got {_show(data)} ({len(data)} bytes)")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _png(data)
    if data.startswith(b"\xff\xd8"):
        return _jpeg(data)
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
    fmt, w, h = image_size(data)
    if w <= 0 or h <= 0:
        raise InputError(f"image: {fmt} header gives an empty size {w}x{h}")
    if w * h > max_pixels:
        msg = (
            f"image: expected at most {max_pixels} pixels (http.max_pixels), "
            f"got a {fmt} of {w}x{h} = {w * h}"
        )
        raise TooLargeError(msg)
    flags = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as exc:
        msg = f"image: {fmt} of {w}x{h} could not be decoded ({exc.err or exc})"
        raise InputError(msg) from exc
    if image is None:
        raise InputError(f"image: {fmt} of {w}x{h} could not be decoded (corrupt or truncated)")
    if image.shape[:2] != (h, w):
        msg = f"image: {fmt} header says {w}x{h}, decoded {image.shape[1]}x{image.shape[0]}"
        raise InputError(msg)
    if image.dtype != np.uint8:  # pragma: no cover - ANYCOLOR without ANYDEPTH gives 8 bits
        image = cv2.convertScaleAbs(image, alpha=255.0 / float(np.iinfo(image.dtype).max))
    return np.ascontiguousarray(image)


def _show(data: bytes) -> str:
    return repr(data[:12])


def _truncated(fmt: str, what: str) -> InputError:
    return InputError(f"image: expected a complete {fmt} file, got a truncated one ({what})")


def _png(data: bytes) -> tuple[str, int, int]:
    if data[12:16] != b"IHDR" or len(data) < 24:
        raise InputError("image: PNG signature without an IHDR header chunk")
    w, h = struct.unpack(">II", data[16:24])
    if data.rfind(b"IEND") < 0:
        raise _truncated("PNG", "no IEND chunk")
    return "PNG", w, h


def _jpeg(data: bytes) -> tuple[str, int, int]:
    size: tuple[int, int] | None = None
    i, n = 2, len(data)
    while i < n:
        if data[i] != 0xFF:
            raise InputError(f"image: JPEG marker expected at byte {i}, got {data[i]:#04x}")
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            break
        marker = data[i]
        i += 1
        if marker in _STANDALONE:
            continue
        if marker == 0xD9:
            raise InputError("image: JPEG ends (EOI) before any image data")
        if i + 2 > n:
            break
        (length,) = struct.unpack(">H", data[i : i + 2])
        if marker in _SOF and i + 7 <= n:
            h, w = struct.unpack(">HH", data[i + 3 : i + 7])
            size = (w, h)
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            if size is None:
                raise InputError("image: JPEG scan before any frame header (SOF)")
            if data.rfind(b"\xff\xd9") < i:
                raise _truncated("JPEG", "no end-of-image marker after the scan data")
            return "JPEG", size[0], size[1]
        i += length
    raise _truncated("JPEG", "headers end before the scan data")


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
