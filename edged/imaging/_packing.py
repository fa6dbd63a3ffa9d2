"""Unpacking of packed mono/Bayer pixel data, vectorised with NumPy.

Two packings exist on the wire:

* ``p`` — GenICam PFNC packed (``Mono10p``, ``Mono12p``, ``BayerRG12p`` ...): the
  pixels form one little-endian bit stream, each pixel's least significant bit
  first. ``12p`` packs 2 pixels in 3 bytes, ``10p`` 4 pixels in 5 bytes.
* ``packed`` — GigE Vision legacy (``Mono12Packed``, ``Mono10Packed`` ...): 2 pixels
  in 3 bytes; bytes 0 and 2 hold each pixel's 8 most significant bits, byte 1 holds
  the remaining low bits of both (``12Packed``: nibbles; ``10Packed``: bits 0-1 and
  4-5).

The 2-pixels-in-3-bytes packings (``12p``, ``12Packed``, ``10Packed``) go through
byte planes (``edged.imaging._planes``). ``10p`` is done here: each 5-byte group is read
as one little-endian word through an overlapping strided view (no copy of the
input) and split with shifts and masks into a word holding the group's four output
pixels; the work runs in cache-sized chunks. Only the very last group (whose word
read would pass the end of the buffer) and the partial groups at row ends go
through a small zero-padded copy.

Input is a ``(rows, row_bytes)`` uint8 view whose rows lie in one buffer (row
stride >= row_bytes, last axis contiguous); output is ``(rows, pixels)`` uint16
(full bit depth) or uint8 (the 8 most significant bits).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from edged.imaging._planes import unpack_pairs

Packing = Literal["p", "packed"]

_CHUNK_WORDS = 1 << 15

# A kernel maps the group words ``v`` into output words: ``out[...] = f(v)``, using
# ``tmp`` (same shape as ``v``) as scratch. Output words hold all pixels of a group.
_Kernel = Callable[[np.ndarray, np.ndarray, np.ndarray], None]


@dataclass(frozen=True, slots=True)
class _Layout:
    group_bytes: int
    group_px: int
    word: np.dtype[np.unsignedinteger]  # word read at each group start (>= group_bytes)
    out16: np.dtype[np.unsignedinteger]  # a word of group_px uint16 pixels
    out8: np.dtype[np.unsignedinteger]  # a word of group_px uint8 pixels


_L5 = _Layout(5, 4, np.dtype("<u8"), np.dtype("<u8"), np.dtype("<u4"))


def _k10p_16(v: np.ndarray, tmp: np.ndarray, out: np.ndarray) -> None:
    np.bitwise_and(v, 0x3FF, out=out, casting="unsafe")
    for k in (1, 2, 3):
        np.left_shift(v, 6 * k, out=tmp)
        tmp &= np.uint64(0x3FF << (16 * k))
        out |= tmp


def _k10p_8(v: np.ndarray, tmp: np.ndarray, out: np.ndarray) -> None:
    np.right_shift(v, 2, out=tmp)
    tmp &= np.uint64(0xFF)
    np.copyto(out, tmp, casting="unsafe")
    for k in (1, 2, 3):
        np.right_shift(v, 2 + 2 * k, out=tmp)
        tmp &= np.uint64(0xFF << (8 * k))
        np.bitwise_or(out, tmp, out=out, casting="unsafe")


_KERNELS: dict[tuple[Packing, int], tuple[_Layout, _Kernel, _Kernel]] = {
    ("p", 10): (_L5, _k10p_16, _k10p_8),
}
_PAIRS = {("p", 12), ("packed", 12), ("packed", 10)}  # two pixels in 3 bytes: edged.imaging._planes


def stream_bits(packing: Packing, bits: int) -> int:
    """Bits each pixel takes on the wire (legacy ``10Packed`` uses 12)."""
    return 12 if packing == "packed" else bits


def packed_row_bytes(packing: Packing, bits: int, width: int) -> int:
    """Bytes one row of ``width`` pixels takes when rows are packed separately."""
    return -(-width * stream_bits(packing, bits) // 8)


def supported(packing: Packing, bits: int) -> bool:
    return (packing, bits) in _KERNELS or (packing, bits) in _PAIRS


def unpack(
    rows: np.ndarray, width: int, *, packing: Packing, bits: int, out_bits: Literal[8, 16]
) -> np.ndarray:
    """Unpack ``rows`` ``(R, row_bytes)`` uint8 into ``(R, width)`` pixels.

    ``out_bits=16`` gives uint16 values in ``[0, 2**bits)``; ``out_bits=8`` gives the
    8 most significant bits as uint8.
    """
    if (packing, bits) in _PAIRS:
        return unpack_pairs(rows, width, packing=packing, bits=bits, out_bits=out_bits)
    layout, k16, k8 = _KERNELS[(packing, bits)]
    kernel = k16 if out_bits == 16 else k8
    out_dtype = np.uint16 if out_bits == 16 else np.uint8
    out_word = layout.out16 if out_bits == 16 else layout.out8
    n_rows = rows.shape[0]
    full = width // layout.group_px
    rest = width - full * layout.group_px
    out = np.empty((n_rows, width), dtype=out_dtype)
    _unpack_words(rows, out, full, layout, kernel, out_word)
    if n_rows and rest:
        start = full * layout.group_bytes
        tail = _padded(rows[:, start:], layout)
        tail_out = np.empty((n_rows, layout.group_px), dtype=out_dtype)
        _run(kernel, _group_words(tail, 1, layout), tail_out.view(out_word), layout)
        out[:, full * layout.group_px :] = tail_out[:, :rest]
    return out


def _unpack_words(
    rows: np.ndarray,
    out: np.ndarray,
    full: int,
    layout: _Layout,
    kernel: _Kernel,
    out_word: np.dtype[np.unsignedinteger],
) -> None:
    """The word kernels over the ``full`` complete groups of each row, into ``out``."""
    n_rows = rows.shape[0]
    if n_rows and full:
        words = _group_words(rows, full, layout)
        out_words = out[:, : full * layout.group_px].view(out_word)
        # The last group of the last row would read past the buffer: do it padded.
        if n_rows > 1:
            _run(kernel, words[:-1], out_words[:-1], layout)
        if full > 1:
            _run(kernel, words[-1:, :-1], out_words[-1:, :-1], layout)
        start = (full - 1) * layout.group_bytes
        last = _padded(rows[-1:, start : start + layout.group_bytes], layout)
        _run(kernel, _group_words(last, 1, layout), out_words[-1:, -1:], layout)


def _padded(part: np.ndarray, layout: _Layout) -> np.ndarray:
    """A zero-padded copy of a few bytes per row, wide enough for one word read."""
    buf = np.zeros((part.shape[0], layout.word.itemsize), dtype=np.uint8)
    buf[:, : part.shape[1]] = part
    return buf


def _group_words(rows: np.ndarray, groups: int, layout: _Layout) -> np.ndarray:
    """``(R, groups)`` little-endian words, one read at each group's first byte."""
    row_stride = rows.strides[0] if rows.shape[0] > 1 else 0
    view = np.lib.stride_tricks.as_strided(
        rows,
        shape=(rows.shape[0], groups, layout.word.itemsize),
        strides=(row_stride, layout.group_bytes, 1),
        writeable=False,
    )
    return view.view(layout.word)[..., 0]


def _run(kernel: _Kernel, words: np.ndarray, out: np.ndarray, layout: _Layout) -> None:
    """Apply ``kernel`` in chunks of about ``_CHUNK_WORDS`` words (cache friendly)."""
    n_rows, n_groups = words.shape
    if n_rows == 0 or n_groups == 0:
        return
    tmp = np.empty(min(n_rows * n_groups, _CHUNK_WORDS), dtype=layout.word)
    if n_groups >= _CHUNK_WORDS or n_rows == 1:
        for r in range(n_rows):
            for s in range(0, n_groups, _CHUNK_WORDS):
                e = min(s + _CHUNK_WORDS, n_groups)
                kernel(words[r, s:e], tmp[: e - s], out[r, s:e])
        return
    step = max(1, _CHUNK_WORDS // n_groups)
    for s in range(0, n_rows, step):
        e = min(s + step, n_rows)
        kernel(words[s:e], tmp[: (e - s) * n_groups].reshape(e - s, n_groups), out[s:e])
