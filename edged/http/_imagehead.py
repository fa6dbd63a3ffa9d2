"""Read an encoded image's size from its header, without decoding any pixels.

This is the guard against decompression bombs: a few hundred bytes of PNG can
claim 100 000 × 100 000 pixels, so the size is checked against the limit before
OpenCV allocates anything. Only JPEG and PNG are accepted.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from edged.core.errors import InputError
from edged.http._errors import UnsupportedMediaError
from edged.imaging.png import SIGNATURE as PNG_SIGNATURE

_JPEG_SOI = b"\xff\xd8"
# Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})

ImageFormat = Literal["JPEG", "PNG"]


@dataclass(frozen=True, slots=True)
class ImageHead:
    """What the header says: format, size in pixels and whether it is grey."""

    format: ImageFormat
    width: int
    height: int
    grey: bool

    @property
    def pixels(self) -> int:
        return self.width * self.height


def read_head(data: bytes | bytearray) -> ImageHead:
    """The size and kind of a JPEG or PNG from its first bytes.

    Raises UnsupportedMediaError for other formats and InputError for a header that
    is truncated or impossible.
    """
    if not data:
        msg = "image: expected a JPEG or PNG file as the request body, got an empty body"
        raise InputError(msg)
    if data.startswith(PNG_SIGNATURE):
        return _png_head(data)
    if data.startswith(_JPEG_SOI):
        return _jpeg_head(data)
    msg = (
        "image: expected a JPEG (FF D8) or PNG (89 50 4E 47) file, "
        f"got {len(data)} bytes starting {data[:8].hex(' ')}"
    )
    raise UnsupportedMediaError(msg)


def _png_head(data: bytes | bytearray) -> ImageHead:
    if len(data) < 33 or data[12:16] != b"IHDR":
        msg = f"PNG: expected an IHDR chunk after the signature, got {len(data)} bytes in all"
        raise InputError(msg)
    width, height = struct.unpack(">II", data[16:24])
    colour_type = data[25]
    if width == 0 or height == 0:
        msg = f"PNG: expected a non-zero size in IHDR, got {width}×{height}"
        raise InputError(msg)
    if colour_type not in (0, 2, 3, 4, 6):
        msg = f"PNG: expected colour type 0, 2, 3, 4 or 6 in IHDR, got {colour_type}"
        raise InputError(msg)
    return ImageHead("PNG", width, height, grey=colour_type in (0, 4))


def _jpeg_head(data: bytes | bytearray) -> ImageHead:
    i, n = 2, len(data)
    while i < n:
        if data[i] != 0xFF:
            msg = f"JPEG: expected a marker (FF xx) at byte {i}, got {data[i]:02x}"
            raise InputError(msg)
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            break
        marker = data[i]
        i += 1
        if marker in _STANDALONE:
            continue
        if marker in (0xD8, 0xD9, 0xDA):
            msg = f"JPEG: expected a frame header (SOF) before marker FF {marker:02X}, got none"
            raise InputError(msg)
        if i + 2 > n:
            break
        seg_len = (data[i] << 8) | data[i + 1]
        if seg_len < 2:
            msg = f"JPEG: expected a segment length >= 2 at byte {i}, got {seg_len}"
            raise InputError(msg)
        if marker in _SOF_MARKERS:
            if i + 8 > n:
                break
            height = (data[i + 3] << 8) | data[i + 4]
            width = (data[i + 5] << 8) | data[i + 6]
            components = data[i + 7]
            if width == 0 or height == 0:
                msg = f"JPEG: expected a non-zero size in the frame header, got {width}×{height}"
                raise InputError(msg)
            if components not in (1, 3, 4):
                msg = f"JPEG: expected 1, 3 or 4 colour components, got {components}"
                raise InputError(msg)
            return ImageHead("JPEG", width, height, grey=components == 1)
        i += seg_len
    msg = f"JPEG: expected a frame header (SOF) in the data, got {n} bytes ending before one"
    raise InputError(msg)


def looks_complete(data: bytes | bytearray, head: ImageHead) -> bool:
    """True when the file ends the way its format must (JPEG EOI, PNG IEND chunk).

    Trailing zero bytes (padding some cameras add) are allowed.
    """
    tail = data.rstrip(b"\x00")
    if head.format == "JPEG":
        return tail.endswith(b"\xff\xd9")
    return tail.endswith(b"IEND\xae\x42\x60\x82")
