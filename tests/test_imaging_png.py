"""The fast PNG decoder: bit-identical to OpenCV, or it steps aside (None)."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Sequence

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from edged.http._decode import decode_encoded
from edged.imaging import png

pytestmark = pytest.mark.skipif(not png.available(), reason="isal is not installed")


def _opencv(data: bytes, *, grey: bool) -> np.ndarray:
    flags = cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR
    out = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    assert out is not None
    return out


def _chunk(name: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + name + body + struct.pack(">I", zlib.crc32(name + body))


def _handmade(
    rgb: np.ndarray, filters: list[int], *, extra: Sequence[tuple[bytes, bytes]] = ()
) -> bytes:
    """A PNG of ``rgb`` ((H, W) grey or (H, W, 3) RGB uint8) whose row ``y`` uses
    filter ``filters[y]`` (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth), written here so
    every filter mix can be tested."""
    h, w = rgb.shape[:2]
    c = 1 if rgb.ndim == 2 else 3
    rows = rgb.reshape(h, w * c).astype(np.int32)
    out = bytearray()
    for y in range(h):
        cur = rows[y]
        prev = rows[y - 1] if y else np.zeros_like(cur)
        left = np.concatenate([np.zeros(c, np.int32), cur[:-c]])
        upleft = np.concatenate([np.zeros(c, np.int32), prev[:-c]])
        f = filters[y]
        if f == 0:
            pred = np.zeros_like(cur)
        elif f == 1:
            pred = left
        elif f == 2:
            pred = prev
        elif f == 3:
            pred = (left + prev) // 2
        else:
            p = left + prev - upleft
            pa, pb, pc = np.abs(p - left), np.abs(p - prev), np.abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
        out.append(f)
        out += ((cur - pred) % 256).astype(np.uint8).tobytes()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2 if c == 3 else 0, 0, 0, 0)
    body = b"".join(_chunk(n, b) for n, b in extra)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + body
        + _chunk(b"IDAT", zlib.compress(bytes(out)))
        + _chunk(b"IEND", b"")
    )


def _fast(data: bytes) -> np.ndarray:
    out = png.decode_png(data)
    assert out is not None, "expected the fast path to take this file"
    return out


def _noise(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("shape", [(37, 53, 3), (37, 53), (1, 1, 3), (1, 1), (64, 1, 3)])
def test_opencv_written_pngs_decode_identically(shape: tuple[int, ...]) -> None:
    image = _noise(shape)
    ok, buf = cv2.imencode(".png", image)  # OpenCV's default: every row filtered Sub
    assert ok
    data = buf.tobytes()
    fast = png.decode_png(data)
    assert fast is not None, "OpenCV's default PNGs are the fast path's main customer"
    expected = _opencv(data, grey=len(shape) == 2)
    assert fast.dtype == np.uint8
    assert fast.shape == expected.shape
    assert np.array_equal(fast, expected)
    assert np.array_equal(fast, image)


@pytest.mark.parametrize("level", [0, 1, 9])
def test_any_png_decodes_the_same_through_the_http_decoder(level: int) -> None:
    """With an explicit compression level OpenCV filters adaptively (Average and Paeth
    rows too): those files go to OpenCV, and the answer is the same either way."""
    image = _noise((40, 30, 3), seed=level)
    _ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, level])
    decoded, fmt = decode_encoded(buf.tobytes(), max_pixels=10**6)
    assert fmt == "PNG"
    assert np.array_equal(decoded, image)


@pytest.mark.parametrize(
    "filters",
    [
        [0] * 9,
        [1] * 9,
        [2] * 9,
        [2, 1, 0, 2, 2, 1, 1, 0, 2],  # runs of each kind, Up after Sub and after None
        [1, 2, 1, 2, 1, 2, 1, 2, 1],  # alternating every row
    ],
)
def test_none_sub_up_in_any_mix_decode_identically(filters: list[int]) -> None:
    rgb = _noise((9, 11, 3), seed=len(filters) + sum(filters))
    data = _handmade(rgb, filters)
    fast = png.decode_png(data)
    assert fast is not None
    assert np.array_equal(fast, rgb[..., ::-1])  # BGR, as OpenCV gives
    assert np.array_equal(fast, _opencv(data, grey=False))
    grey = rgb[..., 0]
    data = _handmade(grey, filters)
    assert np.array_equal(_fast(data), grey)


@pytest.mark.parametrize("kind", [3, 4])
def test_average_and_paeth_are_left_to_opencv(kind: int) -> None:
    rgb = _noise((6, 7, 3))
    data = _handmade(rgb, [1, kind, 1, 1, 1, 1])
    assert png.decode_png(data) is None
    image, fmt = decode_encoded(data, max_pixels=10**6)  # the caller's fallback
    assert fmt == "PNG"
    assert np.array_equal(image, rgb[..., ::-1])


def test_text_chunks_are_taken_but_colour_changing_ones_are_not() -> None:
    rgb = _noise((5, 6, 3))
    taken = _handmade(rgb, [1] * 5, extra=[(b"tEXt", b"Comment\x00request 7"), (b"pHYs", bytes(9))])
    assert np.array_equal(_fast(taken), rgb[..., ::-1])
    refused = [
        (b"gAMA", struct.pack(">I", 45455)),
        (b"sBIT", b"\x05\x05\x05"),
        (b"tRNS", bytes(6)),
        (b"iCCP", b"x\x00\x00" + zlib.compress(b"p")),
    ]
    for name, body in refused:
        assert png.decode_png(_handmade(rgb, [1] * 5, extra=[(name, body)])) is None, name


@pytest.mark.parametrize("mode", ["P", "RGBA", "LA", "I;16", "1"])
def test_other_layouts_are_left_to_opencv(mode: str) -> None:
    image = Image.fromarray(_noise((8, 9, 3))).convert(mode)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    assert png.decode_png(buf.getvalue()) is None


def test_interlaced_is_left_to_opencv() -> None:
    _ok, buf = cv2.imencode(".png", _noise((8, 9, 3)))
    data = bytearray(buf.tobytes())
    data[28] = 1  # Adam7 in IHDR, with a matching CRC
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    assert png.decode_png(bytes(data)) is None
    data[28] = 0
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    assert png.decode_png(bytes(data)) is not None  # the same file, not interlaced


def test_damaged_files_are_left_to_opencv_which_refuses_them() -> None:
    _ok, buf = cv2.imencode(".png", _noise((20, 30, 3)))
    good = buf.tobytes()
    idat = good.index(b"IDAT")
    flipped = bytearray(good)
    flipped[idat + 20] ^= 0xFF  # inside the compressed data: the CRC no longer matches
    bad_crc = bytes(flipped)
    assert png.decode_png(bad_crc) is None
    with pytest.raises(Exception, match="expected decodable"):
        decode_encoded(bad_crc, max_pixels=10**6)
    truncated = good[: idat + 30]
    assert png.decode_png(truncated) is None
    assert png.decode_png(b"not a png at all") is None
    assert png.decode_png(b"") is None


def test_the_http_decoder_uses_it_and_answers_the_same() -> None:
    image = _noise((48, 64, 3), seed=3)
    _ok, buf = cv2.imencode(".png", image)
    decoded, fmt = decode_encoded(buf.tobytes(), max_pixels=10**6)
    assert fmt == "PNG"
    assert np.array_equal(decoded, image)


def test_large_images_decode_identically_on_two_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``_PIPELINE_BYTES`` inflating and unfiltering overlap band by band; with
    small bands the Up rows that open a band depend on the previous band's last row."""
    monkeypatch.setattr(png, "_PIPELINE_BYTES", 1000)
    monkeypatch.setattr(png, "_BAND_BYTES", 700)
    rgb = _noise((40, 23, 3), seed=9)
    filters = [2, 1, 0, 2] * 10  # every band boundary lands on a different filter
    data = _handmade(rgb, filters)
    assert np.array_equal(_fast(data), rgb[..., ::-1])
    ok, buf = cv2.imencode(".png", rgb)
    assert ok
    assert np.array_equal(_fast(buf.tobytes()), rgb)
    paeth_late = _handmade(rgb, [1] * 39 + [4])  # refused in the last band
    assert png.decode_png(paeth_late) is None
    short = _handmade(rgb[:39], [1] * 39)
    patched = bytearray(short)
    patched[20:24] = struct.pack(">I", 40)  # IHDR claims one row more than the data holds
    patched[29:33] = struct.pack(">I", zlib.crc32(bytes(patched[12:29])))
    assert png.decode_png(bytes(patched)) is None


@settings(max_examples=150, deadline=None)
@given(
    h=st.integers(1, 24),
    w=st.integers(1, 24),
    colour=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    data=st.data(),
)
def test_any_none_sub_up_png_decodes_exactly(
    h: int, w: int, colour: bool, seed: int, data: st.DataObject
) -> None:
    image = _noise((h, w, 3) if colour else (h, w), seed=seed)
    filters = data.draw(st.lists(st.integers(0, 2), min_size=h, max_size=h))
    decoded = _fast(_handmade(image, filters))
    assert np.array_equal(decoded, image[..., ::-1] if colour else image)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), flips=st.lists(st.integers(0, 10**6), max_size=4))
def test_damaged_bytes_never_give_other_pixels_than_opencv(seed: int, flips: list[int]) -> None:
    """Whatever a damaged file holds, the fast path either steps aside or returns
    exactly what OpenCV decodes from the same bytes; it never raises."""
    ok, buf = cv2.imencode(".png", _noise((9, 13, 3), seed=seed))
    assert ok
    damaged = bytearray(buf.tobytes())
    for f in flips:
        damaged[f % len(damaged)] ^= 1 + f % 255
    fast = png.decode_png(bytes(damaged))
    if fast is not None:
        slow = cv2.imdecode(np.frombuffer(bytes(damaged), np.uint8), cv2.IMREAD_COLOR)
        assert slow is not None
        assert np.array_equal(fast, slow)
