"""The fast PNG encoder: lossless for every decoder, the file laid out as stated."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from edged.imaging import png, png_write
from edged.imaging.png_write import encode_png

fast = pytest.mark.skipif(png_write._CODEC is None, reason="isal is not installed")


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, body) of every chunk, each CRC checked with the standard library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, out = 8, []
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        name, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        assert crc == zlib.crc32(name + body), name
        out.append((name, body))
        pos += 12 + length
    return out


@fast
def test_layout_and_sub_filtered_rows_of_a_hand_built_image() -> None:
    # Grey 3x2: each row is filter byte 1 (Sub), then each byte minus its left
    # neighbour modulo 256.
    grey = np.array([[10, 20, 15], [0, 255, 1]], np.uint8)
    chunks = _chunks(encode_png(grey))
    assert [n for n, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    assert struct.unpack(">IIBBBBB", chunks[0][1]) == (3, 2, 8, 0, 0, 0, 0)
    raw = zlib.decompress(chunks[1][1])
    assert list(raw) == [1, 10, 10, 251, 1, 0, 255, 2]
    assert chunks[2][1] == b""


@fast
def test_bgr_is_written_as_rgb_with_sub_per_channel() -> None:
    bgr = np.array([[[1, 2, 3], [11, 12, 13]]], np.uint8)  # one row, two pixels
    chunks = _chunks(encode_png(bgr))
    assert struct.unpack(">IIBBBBB", chunks[0][1]) == (2, 1, 8, 2, 0, 0, 0)
    # RGB of pixel 0, then pixel 1 minus pixel 0 per channel.
    assert list(zlib.decompress(chunks[1][1])) == [1, 3, 2, 1, 10, 10, 10]


@pytest.mark.parametrize("level", png_write.LEVELS)
@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (9, 1), (37, 53), (4, 5, 3), (64, 33, 3)])
def test_every_decoder_gets_the_pixels_back(shape: tuple[int, ...], level: int) -> None:
    rng = np.random.default_rng(sum(shape) + level)
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    data = encode_png(img, level=level)
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(back, img)
    pil = np.asarray(Image.open(io.BytesIO(data)))
    np.testing.assert_array_equal(pil, img if img.ndim == 2 else img[..., ::-1])
    if png.available():
        decoded = png.decode_png(data)  # edged's fast decoder takes these files
        assert decoded is not None
        np.testing.assert_array_equal(decoded, img)


@settings(max_examples=100, deadline=None)
@given(
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    colour=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    smooth=st.booleans(),
)
def test_any_image_round_trips_exactly(
    h: int, w: int, colour: bool, seed: int, smooth: bool
) -> None:
    rng = np.random.default_rng(seed)
    shape = (h, w, 3) if colour else (h, w)
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    if smooth:  # long runs and small differences, as in real images
        img = np.cumsum(img // 64, axis=1, dtype=np.uint8)
    back = cv2.imdecode(np.frombuffer(encode_png(img), np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(back, img)


def test_views_and_strided_images_are_encoded_as_they_look() -> None:
    rng = np.random.default_rng(5)
    big = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    view = big[3:15:2, 29:4:-3]  # non-contiguous, negative strides
    back = cv2.imdecode(np.frombuffer(encode_png(view), np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(back, view)


@pytest.mark.parametrize(
    ("dtype", "shape"), [(np.uint16, (6, 7)), (np.uint8, (6, 7, 4)), (np.uint16, (5, 4, 3))]
)
def test_other_layouts_are_encoded_by_opencv_losslessly(
    dtype: type[np.integer], shape: tuple[int, ...]
) -> None:
    img = np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape) * 7
    back = cv2.imdecode(np.frombuffer(encode_png(img), np.uint8), cv2.IMREAD_UNCHANGED)
    assert back.dtype == img.dtype
    np.testing.assert_array_equal(back, img)


@pytest.mark.parametrize("level", [-1, 4, 9, 1.0, True])
def test_an_unknown_level_is_refused_with_the_choices(level: object) -> None:
    with pytest.raises(ValueError, match=r"expected one of \[0, 1, 2, 3\], got"):
        encode_png(np.zeros((2, 2), np.uint8), level=level)  # type: ignore[arg-type]


@fast
def test_camera_like_images_are_no_larger_than_opencvs() -> None:
    # A lit, noisy scene as cameras deliver it: the Sub-filtered ISA-L file is not
    # bigger than OpenCV's level-1 file (measured: 2-9 % smaller on camera frames).
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:240, 0:320]
    scene = np.stack([(xx * 0.5 + yy * 0.2) % 256, (xx * 0.3) % 256, (yy * 0.6) % 256], -1)
    img = np.clip(scene + rng.normal(0, 3, scene.shape), 0, 255).astype(np.uint8)
    ok, ref = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    assert ok
    assert len(encode_png(img)) <= len(ref.tobytes())


@fast
@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 30),
    w=st.integers(1, 30),
    colour=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    level=st.sampled_from(png_write.LEVELS),
)
def test_two_halves_deflated_apart_make_one_valid_stream(
    h: int, w: int, colour: bool, seed: int, level: int
) -> None:
    # Large images are deflated in two halves on two threads; with the threshold at 0
    # every image takes that path. The joined stream must be one zlib stream with the
    # right Adler-32 (the standard library checks it) and give back every pixel.
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3) if colour else (h, w), dtype=np.uint8)
    saved = png_write._PARALLEL_BYTES
    png_write._PARALLEL_BYTES = 0
    try:
        data = encode_png(img, level=level)
    finally:
        png_write._PARALLEL_BYTES = saved
    chunks = _chunks(data)
    raw = zlib.decompress(chunks[1][1])  # raises on a bad stream or checksum
    assert len(raw) == h * (w * (3 if colour else 1) + 1)
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(back, img)
    pil = np.asarray(Image.open(io.BytesIO(data)))
    np.testing.assert_array_equal(pil, img if img.ndim == 2 else img[..., ::-1])


@fast
def test_a_large_frame_takes_the_two_thread_path_and_round_trips() -> None:
    rng = np.random.default_rng(9)
    img = rng.integers(0, 256, (1200, 1300, 3), dtype=np.uint8)  # 4.7 MB of rows
    assert img.size + img.shape[0] > png_write._PARALLEL_BYTES
    data = encode_png(img)
    zlib.decompress(_chunks(data)[1][1])
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(back, img)
