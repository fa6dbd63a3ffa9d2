"""Unpacking of 3-byte pixel pairs through byte planes (OpenCV + in-place NumPy).

``12p`` (PFNC), ``12Packed`` and ``10Packed`` (GigE Vision legacy) all pack two
pixels in three bytes ``b0 b1 b2``:

=============  ==============================  ==============================
packing        pixel 0                         pixel 1
=============  ==============================  ==============================
``12p``        ``b0 | (b1 & 0xF) << 8``        ``b1 >> 4 | b2 << 4``
``12Packed``   ``b0 << 4 | b1 & 0xF``          ``b2 << 4 | b1 >> 4``
``10Packed``   ``b0 << 2 | b1 & 0x3``          ``b2 << 2 | (b1 >> 4) & 0x3``
=============  ==============================  ==============================

OpenCV splits a band of groups into three contiguous byte planes, NumPy combines
them in place (8-bit output: the 8 most significant bits are one byte or two
nibbles; 16-bit output: widened planes), and OpenCV interleaves the two pixel
planes straight into the output. Bands of about ``BAND_BYTES`` of input keep the
planes in cache. At 2448x2048 this took half (8-bit) to three quarters (16-bit)
of the time of the word kernels it replaced, warm or cold
(``tools/bench_acquisition.py``). An odd width's last pixel per row goes through
the same path in a zero-padded group.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

Packing = Literal["p", "packed"]

BAND_BYTES = 1 << 18


def unpack_pairs(
    rows: np.ndarray, width: int, *, packing: Packing, bits: int, out_bits: Literal[8, 16]
) -> np.ndarray:
    """``width`` pixels of each row, packed two in three bytes, as ``(R, width)``.

    ``rows``: ``(R, row_bytes)`` uint8, last axis contiguous, at least ``ceil(1.5 ·
    width)`` bytes a row. An odd width leaves one pixel in two bytes at each row's end.
    ``out_bits=8``: the 8 most significant bits (uint8); 16: values in ``[0, 2**bits)``.
    """
    full, rest = divmod(width, 2)
    if not rest or rows.shape[0] == 0:
        return _groups(rows, full, packing=packing, bits=bits, out_bits=out_bits)
    out = np.empty((rows.shape[0], width), dtype=np.uint8 if out_bits == 8 else np.uint16)
    out[:, :-1] = _groups(rows, full, packing=packing, bits=bits, out_bits=out_bits)
    last = np.zeros((rows.shape[0], 3), dtype=np.uint8)  # the odd pixel's group, zero-padded
    tail = rows[:, 3 * full : 3 * full + 3]
    last[:, : tail.shape[1]] = tail
    out[:, -1] = _groups(last, 1, packing=packing, bits=bits, out_bits=out_bits)[:, 0]
    return out


def _groups(
    rows: np.ndarray, full: int, *, packing: Packing, bits: int, out_bits: Literal[8, 16]
) -> np.ndarray:
    """The ``full`` complete 3-byte groups of each row as ``(R, 2 * full)`` pixels."""
    n_rows = rows.shape[0]
    out = np.empty((n_rows, 2 * full), dtype=np.uint8 if out_bits == 8 else np.uint16)
    groups = rows[:, : full * 3].reshape(n_rows, full, 3)  # a view: rows' last axis is contiguous
    pairs = out.reshape(n_rows, full, 2)
    if n_rows == 0 or full == 0:
        return out
    if n_rows == 1:  # one long bit stream: cut it into pseudo-rows of whole groups
        per_row = max(1, BAND_BYTES // 3)
        cut = full - full % per_row
        if cut:
            head = cut // per_row
            _bands(
                groups[0, :cut].reshape(head, per_row, 3),
                pairs[0, :cut].reshape(head, per_row, 2),
                packing,
                bits,
            )
        if cut < full:
            _bands(groups[:, cut:], pairs[:, cut:], packing, bits)
        return out
    _bands(groups, pairs, packing, bits)
    return out


def _bands(groups: np.ndarray, pairs: np.ndarray, packing: Packing, bits: int) -> None:
    """``pairs[r, g]`` = the two pixels of ``groups[r, g]``, a band of rows at a time."""
    n_rows, n_groups = groups.shape[:2]
    band = max(1, BAND_BYTES // (3 * n_groups))
    wide = pairs.dtype == np.uint16
    scratch = np.empty((3, min(band, n_rows), n_groups), np.uint16) if wide else None
    for s in range(0, n_rows, band):
        b0, b1, b2 = cv2.split(groups[s : s + band])
        if scratch is None:
            p0, p1 = _msb8(b0, b1, b2, packing)
        else:
            p0, p1 = _full16(b0, b1, b2, scratch[:, : b0.shape[0]], packing, bits)
        dst = pairs[s : s + band]
        merged = cv2.merge([p0, p1], dst)
        if merged.ctypes.data != dst.ctypes.data:  # OpenCV could not write in place
            np.copyto(dst, merged.reshape(dst.shape))


def _msb8(
    b0: np.ndarray, b1: np.ndarray, b2: np.ndarray, packing: Packing
) -> tuple[np.ndarray, np.ndarray]:
    """The 8 most significant bits of both pixels (overwrites the planes)."""
    if packing == "p":  # b0 >> 4 | b1 << 4 (uint8: only b1's low nibble survives)
        np.right_shift(b0, 4, out=b0)
        np.left_shift(b1, 4, out=b1)
        np.bitwise_or(b0, b1, out=b0)
    return b0, b2  # legacy: the MSBs are bytes 0 and 2


def _full16(
    b0: np.ndarray,
    b1: np.ndarray,
    b2: np.ndarray,
    scratch: np.ndarray,
    packing: Packing,
    bits: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Both pixels at full depth, in ``scratch[0]`` and ``scratch[1]``."""
    p0, p1, t = scratch
    np.copyto(p0, b0)
    np.copyto(p1, b2)
    if packing == "p":
        np.copyto(t, b1)
        t &= 0xF
        t <<= 8
        p0 |= t
        np.copyto(t, b1)
        t >>= 4
        p1 <<= 4
        p1 |= t
        return p0, p1
    low = bits - 8  # legacy: bytes 0 and 2 are the MSBs, byte 1 holds both LSB groups
    mask = (1 << low) - 1
    p0 <<= low
    np.copyto(t, b1)
    t &= mask
    p0 |= t
    p1 <<= low
    np.copyto(t, b1)
    t >>= 4
    t &= mask
    p1 |= t
    return p0, p1
