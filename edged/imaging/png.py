"""Exact fast decoding of the PNGs most machine-vision clients send.

A 2448×2048 colour PNG written by OpenCV (``cv2.imencode(".png", ...)``) takes
~75 ms to decode with ``cv2.imdecode`` on one core, two thirds of it in zlib's
inflate. :func:`decode_png` decodes the same file bit for bit identically in a
third of that: inflate by ISA-L (``isal``, ~3× zlib) and the row filters
OpenCV and most encoders use for camera images (None, Sub, Up) undone with NumPy
prefix sums over whole runs of rows.

It takes only what it can decode exactly like OpenCV: 8-bit grey (colour type 0)
or RGB (2), not interlaced, rows filtered with None / Sub / Up, chunks limited to
the image data and text, physical size and time (no palette, transparency,
gamma, colour profile or significant-bits chunk that could change what OpenCV
returns), every chunk's CRC correct. For anything else it returns ``None`` and
the caller decodes with OpenCV as before (Average and Paeth filters, which
libpng's adaptive filtering often picks, fall back there too).
"""

from __future__ import annotations

import queue
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
"""The eight bytes every PNG file starts with."""
_ANCILLARY_OK = frozenset({b"tEXt", b"zTXt", b"iTXt", b"pHYs", b"tIME"})
"""Chunks that cannot change the pixels OpenCV returns for 8-bit grey or RGB."""


class _Inflater(Protocol):
    """What ``isal_zlib.decompressobj()`` gives (the zlib module's interface)."""

    @property
    def unconsumed_tail(self) -> bytes: ...

    @property
    def eof(self) -> bool: ...

    def decompress(self, data: bytes, max_length: int = 0, /) -> bytes: ...


_Crc = Callable[[memoryview, int], int]


def _codec() -> tuple[Callable[[], _Inflater], _Crc] | None:
    try:
        from isal import isal_zlib
    except ImportError:  # pragma: no cover - isal is a dependency; without it OpenCV decodes
        return None

    def inflater() -> _Inflater:
        out: _Inflater = isal_zlib.decompressobj()
        return out

    def crc(data: memoryview, value: int) -> int:
        out: int = isal_zlib.crc32(data, value)
        return out

    return inflater, crc


_CODEC = _codec()
_BAND_BYTES = 1 << 21
"""Inflated bytes handed to the unfiltering thread at a time (about 2 MB)."""
_PIPELINE_BYTES = 1 << 22
"""Images with more filtered bytes than this inflate and unfilter on two threads."""


def available() -> bool:
    """Whether the fast path can run here (``isal`` importable)."""
    return _CODEC is not None


def decode_png(data: bytes | bytearray) -> np.ndarray | None:
    """Decode a PNG exactly as ``cv2.imdecode`` does, or say it cannot (``None``).

    data: a complete PNG file.
    Returns ``(H, W)`` uint8 for grey files (as ``cv2.IMREAD_GRAYSCALE``) and
    ``(H, W, 3)`` uint8 BGR for RGB files (as ``cv2.IMREAD_COLOR``); ``None`` when
    the file uses a feature this decoder leaves to OpenCV, or is damaged in any way
    (OpenCV then reports the damage). Never raises for bad data.
    """
    if _CODEC is None or bytes(data[:8]) != SIGNATURE:
        return None
    inflater, crc = _CODEC
    view = memoryview(data)
    try:
        chunks = list(_chunks(view, crc))
    except ValueError:
        return None
    if not chunks or chunks[0][0] != b"IHDR" or chunks[-1][0] != b"IEND":
        return None
    ihdr = chunks[0][1]
    if len(ihdr) != 13:
        return None
    width, height, depth, colour, method, filtering, interlace = struct.unpack(">IIBBBBB", ihdr)
    if (depth, method, filtering, interlace) != (8, 0, 0, 0) or colour not in (0, 2):
        return None
    idat: list[memoryview] = []
    for name, body in chunks[1:-1]:
        if name == b"IDAT":
            idat.append(body)
        elif name not in _ANCILLARY_OK:
            return None
    channels = 3 if colour == 2 else 1
    if not idat or width == 0 or height == 0:
        return None
    out = np.empty((height, width, channels), np.uint8)
    # RGB is written straight into BGR order (a reversed view of the last axis).
    target = out[..., ::-1] if channels == 3 else out
    if not _inflate_unfilter(inflater(), b"".join(idat), target):
        return None
    return out.reshape(height, width) if channels == 1 else out


def _inflate_unfilter(inflater: _Inflater, data: bytes, out: np.ndarray) -> bool:
    """Inflate ``data`` (the IDAT stream) and undo the row filters into ``out``
    (``(H, W, C)``, may be a strided view). Large images are inflated band by band
    while another thread unfilters the bands already inflated (both release the
    GIL), so the two costs overlap on two cores. False on any inconsistency."""
    height, width, channels = out.shape
    row_bytes = width * channels + 1
    total = height * row_bytes
    band_rows = height if total <= _PIPELINE_BYTES else max(1, _BAND_BYTES // row_bytes)
    bands: queue.SimpleQueue[tuple[int, bytes] | None] = queue.SimpleQueue()
    unfiltered = [True]

    def unfilter_bands() -> None:
        while (item := bands.get()) is not None:
            row0, raw = item
            if unfiltered[0]:
                rows = np.frombuffer(raw, np.uint8).reshape(-1, row_bytes)
                filtered = rows[:, 1:].reshape(-1, width, channels)
                unfiltered[0] = _unfilter(rows[:, 0], filtered, out, row0=row0)

    worker = None
    if band_rows < height:
        worker = threading.Thread(target=unfilter_bands, name="edged-png-unfilter", daemon=True)
        worker.start()
    inflated = True
    try:
        tail, row0 = data, 0
        while row0 < height and unfiltered[0]:
            n = min(band_rows, height - row0)
            raw = inflater.decompress(tail, n * row_bytes)
            tail = inflater.unconsumed_tail
            if len(raw) != n * row_bytes:
                inflated = False
                break
            bands.put((row0, raw))
            row0 += n
        # The stream must end here, its checksum verified, with nothing left over.
        inflated = inflated and not inflater.decompress(tail, 1) and inflater.eof
    except Exception:  # isal raises its own error types; OpenCV will say what is wrong
        inflated = False
    finally:
        bands.put(None)
        if worker is None:
            unfilter_bands()
        else:
            worker.join()
    return inflated and unfiltered[0]


def _chunks(view: memoryview, crc: _Crc) -> Iterator[tuple[bytes, memoryview]]:
    """``(type, body)`` of each chunk up to IEND; ValueError on any inconsistency."""
    pos = 8
    end = len(view)
    while pos + 12 <= end:
        (length,) = struct.unpack_from(">I", view, pos)
        name = bytes(view[pos + 4 : pos + 8])
        body_end = pos + 8 + length
        if length > 0x7FFFFFFF or body_end + 4 > end:
            msg = "chunk past the end"
            raise ValueError(msg)
        (stored,) = struct.unpack_from(">I", view, body_end)
        if crc(view[pos + 4 : body_end], 0) & 0xFFFFFFFF != stored:
            msg = "CRC mismatch"
            raise ValueError(msg)
        yield name, view[pos + 8 : body_end]
        if name == b"IEND":
            return
        pos = body_end + 4
    msg = "no IEND chunk"
    raise ValueError(msg)


def _unfilter(kinds: np.ndarray, filtered: np.ndarray, out: np.ndarray, *, row0: int) -> bool:
    """Undo the row filters None (0), Sub (1) and Up (2) of ``(n, W, C)`` bytes into
    ``out[row0 : row0 + n]`` (``out`` the whole image, may be a strided view; rows
    above ``row0`` already done).

    Consecutive rows with the same filter are undone together: Sub is a running
    sum along the row per channel, Up a running sum down the rows added to the row
    above, both modulo 256 (uint8 arithmetic). False when a row uses another
    filter (Average, Paeth, or an invalid type).
    """
    if kinds.size and int(kinds.max()) > 2:
        return False
    starts = np.concatenate(([0], np.flatnonzero(np.diff(kinds)) + 1, [kinds.size]))
    for a, b in zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True):
        kind = int(kinds[a])
        dest = out[row0 + a : row0 + b]
        if kind == 0:
            dest[...] = filtered[a:b]
        elif kind == 1:
            np.cumsum(filtered[a:b], axis=1, dtype=np.uint8, out=dest)
        else:
            np.cumsum(filtered[a:b], axis=0, dtype=np.uint8, out=dest)
            if row0 + a > 0:
                np.add(dest, out[row0 + a - 1], out=dest)
    return True
