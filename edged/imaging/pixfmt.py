"""Pixel formats: turn a Frame's raw buffer into an image the checks accept.

:func:`decode` gives ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR (the 8 most
significant bits of deeper formats); :func:`decode_high` gives the full bit depth
as uint16 for checks that want it.

Supported (GenICam PFNC names, GigE Vision legacy aliases accepted):

* mono: ``Mono8``, ``Mono10``, ``Mono12``, ``Mono14``, ``Mono16``, ``Mono10p``,
  ``Mono12p`` (PFNC packed), ``Mono10Packed``, ``Mono12Packed`` (GigE legacy)
* Bayer ``RG``/``GR``/``GB``/``BG`` in the same depths and packings, e.g.
  ``BayerRG8``, ``BayerGB12p``, ``BayerBG12Packed``
* colour: ``RGB8``, ``BGR8``, ``RGBa8``, ``BGRa8``, ``YUV422_8`` (YUYV order) and
  ``YUV422_8_UYVY`` (converted as BT.601 video range, as OpenCV does)

A frame's data may be the raw bytes (1-D or any shape; rows may carry padding at
their end, which is inferred from the buffer size) or, for deeper formats, the
uint16 pixels harvesters already unpacked. Views are used wherever the layout
allows; the only copies are the conversions themselves.

GenICam PFNC Bayer names are offset from OpenCV's conversion-code names: PFNC
``BayerRG`` (first row R G) is OpenCV ``COLOR_BayerRGGB2BGR``. Using OpenCV's
legacy name that merely *looks* the same (``COLOR_BayerRG2BGR``) swaps red and blue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, cast

import cv2
import numpy as np

from edged.core.errors import InputError
from edged.core.frames import Frame
from edged.imaging import _packing

BayerPattern = Literal["RG", "GR", "GB", "BG"]
Demosaic = Literal["bilinear", "ea", "vng"]
Kind = Literal["mono", "bayer", "rgb", "bgr", "rgba", "bgra", "yuyv", "uyvy"]
Packing = Literal["none", "p", "packed"]

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

_COLOUR_CODES: dict[Kind, int] = {
    "rgb": cv2.COLOR_RGB2BGR,
    "rgba": cv2.COLOR_RGBA2BGR,
    "bgra": cv2.COLOR_BGRA2BGR,
    "yuyv": cv2.COLOR_YUV2BGR_YUYV,
    "uyvy": cv2.COLOR_YUV2BGR_UYVY,
}


@dataclass(frozen=True, slots=True)
class PixelFormat:
    """What a PFNC pixel format name means for decoding.

    Attributes:
        name: canonical PFNC name, e.g. ``"BayerRG12p"``.
        kind: ``mono``, ``bayer``, ``rgb``, ``bgr``, ``rgba``, ``bgra``, ``yuyv`` or ``uyvy``.
        bits: significant bits per component (8 to 16).
        packing: ``none`` (8- or 16-bit containers), ``p`` (PFNC LSB-first bit
            stream) or ``packed`` (GigE Vision legacy, 2 pixels in 3 bytes).
        pattern: PFNC Bayer pattern (first row's first two colours), Bayer only.
    """

    name: str
    kind: Kind
    bits: int
    packing: Packing = "none"
    pattern: BayerPattern | None = None

    @property
    def channels(self) -> int:
        """Bytes (8-bit) or words (deeper) per pixel in an unpacked row."""
        return {"rgb": 3, "bgr": 3, "rgba": 4, "bgra": 4, "yuyv": 2, "uyvy": 2}.get(self.kind, 1)

    @property
    def container_bytes(self) -> int:
        """Bytes per component when unpacked: 1 for 8-bit, 2 for deeper formats."""
        return 1 if self.bits == 8 else 2

    def row_bytes(self, width: int) -> int:
        """Bytes of one row without padding, packed rows aligned to a byte."""
        if self.packing == "none":
            return width * self.channels * self.container_bytes
        return _packing.packed_row_bytes(self.packing, self.bits, width)

    def frame_bytes(self, width: int, height: int) -> int:
        """Bytes of a whole unpadded frame (packed formats: one continuous stream)."""
        if self.packing == "none":
            return self.row_bytes(width) * height
        return -(-width * height * _packing.stream_bits(self.packing, self.bits) // 8)

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind,
            "bits": self.bits,
            "packing": self.packing,
            "pattern": self.pattern,
        }


def _build_table() -> dict[str, PixelFormat]:
    table: dict[str, PixelFormat] = {}
    depths: list[tuple[str, int, Packing]] = [
        ("8", 8, "none"),
        ("10", 10, "none"),
        ("12", 12, "none"),
        ("14", 14, "none"),
        ("16", 16, "none"),
        ("10p", 10, "p"),
        ("12p", 12, "p"),
        ("10Packed", 10, "packed"),
        ("12Packed", 12, "packed"),
    ]
    patterns: tuple[BayerPattern, ...] = ("RG", "GR", "GB", "BG")
    for suffix, bits, packing in depths:
        table[f"Mono{suffix}"] = PixelFormat(f"Mono{suffix}", "mono", bits, packing)
        for pattern in patterns:
            name = f"Bayer{pattern}{suffix}"
            table[name] = PixelFormat(name, "bayer", bits, packing, pattern)
    for name, kind in (
        ("RGB8", "rgb"),
        ("BGR8", "bgr"),
        ("RGBa8", "rgba"),
        ("BGRa8", "bgra"),
        ("YUV422_8", "yuyv"),
        ("YUV422_8_UYVY", "uyvy"),
    ):
        table[name] = PixelFormat(name, cast(Kind, kind), 8)
    return table


_FORMATS = _build_table()

# GigE Vision 1.x / older SFNC names for the same layouts.
_ALIASES: dict[str, str] = {
    "RGB8Packed": "RGB8",
    "BGR8Packed": "BGR8",
    "RGBA8Packed": "RGBa8",
    "BGRA8Packed": "BGRa8",
    "RGBA8": "RGBa8",
    "BGRA8": "BGRa8",
    "YUV422Packed": "YUV422_8_UYVY",
    "YUV422_YUYV_Packed": "YUV422_8",
    "YUYV": "YUV422_8",
    "UYVY": "YUV422_8_UYVY",
}

SUPPORTED_FORMATS: tuple[str, ...] = tuple(_FORMATS)


def pixel_format(name: str) -> PixelFormat:
    """Look up a pixel format by PFNC name or legacy alias; InputError if unknown."""
    fmt = _FORMATS.get(name) or _FORMATS.get(_ALIASES.get(name, ""))
    if fmt is None:
        msg = (
            "unsupported pixel format: expected a PFNC name such as Mono8, Mono12p, "
            f"BayerRG8, BayerGB12Packed, RGB8, RGBa8 or YUV422_8, got {name!r}"
        )
        raise InputError(msg)
    return fmt


def _with_pattern(fmt: PixelFormat, bayer_pattern: BayerPattern | None) -> PixelFormat:
    """A mono format read from a Bayer sensor: the same layout, demosaicked."""
    if bayer_pattern is None or fmt.kind != "mono":
        return fmt
    name = re.sub(r"^Mono", f"Bayer{bayer_pattern}", fmt.name)
    return PixelFormat(name, "bayer", fmt.bits, fmt.packing, bayer_pattern)


# --------------------------------------------------------------------------- public


def debayer(raw: np.ndarray, pattern: BayerPattern, *, method: Demosaic = "bilinear") -> np.ndarray:
    """Demosaic a ``(H, W)`` Bayer mosaic with PFNC ``pattern`` into ``(H, W, 3)`` BGR.

    ``raw`` is uint8 (every method) or uint16 (``bilinear`` and ``ea``; OpenCV's VNG
    is 8-bit only). The output has the input's dtype.
    """
    if raw.dtype != np.uint8 and method == "vng":
        msg = f"vng demosaic: expected 8-bit Bayer data, got {raw.dtype}; use bilinear or ea"
        raise InputError(msg)
    return cv2.cvtColor(raw, _BAYER_CODES[pattern][method])


def decode(
    frame: Frame,
    *,
    demosaic: Demosaic = "bilinear",
    bayer_pattern: BayerPattern | None = None,
) -> np.ndarray:
    """Decode ``frame`` into ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR.

    Deeper formats keep their 8 most significant bits. ``bayer_pattern`` tells a
    camera that reports a mono format its real sensor pattern. Raises InputError for
    an unsupported format or a buffer of the wrong size (saying expected vs got).
    """
    fmt = _with_pattern(pixel_format(frame.pixel_format), bayer_pattern)
    h, w = frame.height, frame.width
    if fmt.kind in ("mono", "bayer"):
        plane = _plane(frame.data, fmt, h, w, out_bits=8)
        if fmt.kind == "mono":
            return plane
        assert fmt.pattern is not None
        return debayer(plane, fmt.pattern, method=demosaic)
    img = _colour8(frame.data, fmt, h, w)
    if fmt.kind == "bgr":
        return img
    return cv2.cvtColor(img, _COLOUR_CODES[fmt.kind])


@dataclass(frozen=True, slots=True)
class HighImage:
    """A frame at its full bit depth.

    Attributes:
        image: ``(H, W)`` uint16 grey or ``(H, W, 3)`` uint16 BGR, values in
            ``[0, 2**bits)`` (not scaled).
        bits: significant bits per component of the source format.
    """

    image: np.ndarray
    bits: int

    @property
    def max_value(self) -> int:
        return (1 << self.bits) - 1

    def to_dict(self) -> dict[str, object]:
        return {"shape": list(self.image.shape), "bits": self.bits}


def decode_high(
    frame: Frame,
    *,
    demosaic: Literal["bilinear", "ea"] = "bilinear",
    bayer_pattern: BayerPattern | None = None,
) -> HighImage:
    """Decode ``frame`` at full bit depth: ``(H, W)`` or ``(H, W, 3)`` BGR uint16.

    8-bit formats come back widened to uint16 with ``bits=8`` so the return type
    never changes. Raises InputError like :func:`decode`.
    """
    fmt = _with_pattern(pixel_format(frame.pixel_format), bayer_pattern)
    h, w = frame.height, frame.width
    if fmt.kind in ("mono", "bayer"):
        plane = _plane(frame.data, fmt, h, w, out_bits=16)
        if fmt.kind == "bayer":
            assert fmt.pattern is not None
            plane = debayer(plane, fmt.pattern, method=demosaic)
        return HighImage(plane, fmt.bits)
    bgr = decode(frame)
    return HighImage(bgr.astype(np.uint16), 8)


# --------------------------------------------------------------------------- layout


def _flat(data: np.ndarray) -> np.ndarray:
    """``data`` as 1-D (a view when it is contiguous)."""
    return np.ascontiguousarray(data).reshape(-1)


def _rows(data: np.ndarray, fmt: PixelFormat, h: int, row_bytes: int, total: int) -> np.ndarray:
    """``(h, row_bytes)`` uint8 view of a byte buffer, skipping any row padding.

    ``total`` is the size of an unpadded frame. A larger buffer that divides into
    ``h`` equal rows of at least ``row_bytes`` is taken as rows with end padding.
    """
    if data.dtype != np.uint8:
        msg = f"{fmt.name}: expected uint8 raw bytes, got {data.dtype} data"
        raise InputError(msg)
    flat = _flat(data)
    if h > 0 and flat.size != total and flat.size % h == 0 and flat.size // h >= row_bytes:
        return flat.reshape(h, flat.size // h)[:, :row_bytes]
    if flat.size != total:
        msg = (
            f"{fmt.name}: expected {total} bytes for {h} rows of {row_bytes} bytes "
            f"(or {h} equal padded rows), got {flat.size}"
        )
        raise InputError(msg)
    return flat.reshape(h, row_bytes) if h > 0 else flat.reshape(0, row_bytes)


def _words16(data: np.ndarray, fmt: PixelFormat, h: int, width_words: int) -> np.ndarray:
    """``(h, width_words)`` uint16 pixels from uint16 data or little-endian bytes."""
    if data.dtype == np.uint16:
        flat = _flat(data)
        total = h * width_words
        if flat.size == total:
            return flat.reshape(h, width_words)
        if h > 0 and flat.size % h == 0 and flat.size // h >= width_words:
            return flat.reshape(h, flat.size // h)[:, :width_words]
        msg = (
            f"{fmt.name}: expected {total} uint16 values for {h} rows of {width_words}, "
            f"got {flat.size}"
        )
        raise InputError(msg)
    rows = _rows(data, fmt, h, width_words * 2, h * width_words * 2)
    if rows.strides[0] % 2 == 0 and rows.flags.c_contiguous:
        return rows.view("<u2")
    return np.ascontiguousarray(rows).view("<u2")


def _plane(
    data: np.ndarray, fmt: PixelFormat, h: int, w: int, *, out_bits: Literal[8, 16]
) -> np.ndarray:
    """One mono/Bayer plane, ``(h, w)`` uint8 (8 MSBs) or uint16 (full depth)."""
    if fmt.bits == 8:
        if data.shape == (h, w) and data.dtype == np.uint8:
            return data if out_bits == 8 else data.astype(np.uint16)
        plane8 = _rows(data, fmt, h, w, h * w)
        return plane8 if out_bits == 8 else plane8.astype(np.uint16)
    if fmt.packing != "none" and data.dtype == np.uint8:
        packing: _packing.Packing = "p" if fmt.packing == "p" else "packed"
        stream_total = fmt.frame_bytes(w, h)
        flat = _flat(data)
        if flat.size == stream_total:
            # One continuous bit stream across rows (PFNC packing).
            out = _packing.unpack(
                flat.reshape(1, -1), h * w, packing=packing, bits=fmt.bits, out_bits=out_bits
            )
            return out.reshape(h, w)
        rows = _rows(flat, fmt, h, fmt.row_bytes(w), stream_total)
        return _packing.unpack(rows, w, packing=packing, bits=fmt.bits, out_bits=out_bits)
    words = _words16(data, fmt, h, w)
    if out_bits == 16:
        return words
    out = np.empty((h, w), dtype=np.uint8)
    np.right_shift(words, fmt.bits - 8, out=out, casting="unsafe")
    return out


def _colour8(data: np.ndarray, fmt: PixelFormat, h: int, w: int) -> np.ndarray:
    """An 8-bit interleaved colour buffer as ``(h, w, channels)`` uint8."""
    if fmt.kind in ("yuyv", "uyvy") and w % 2:
        msg = f"{fmt.name}: expected an even width (2 pixels share U and V), got {w}"
        raise InputError(msg)
    ch = fmt.channels
    if data.shape == (h, w, ch) and data.dtype == np.uint8:
        return data
    rows = _rows(data, fmt, h, w * ch, h * w * ch)
    return rows.reshape(h, w, ch)
