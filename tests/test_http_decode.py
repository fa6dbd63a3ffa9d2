"""Body decoding with limits: header sizes, every PNG/JPEG variant, raw layouts, shm names."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edged.core.errors import InputError, NotFoundError, TooLargeError
from edged.http._decode import decode_encoded, decode_raw, read_shared_memory, shm_path
from edged.http._errors import UnsupportedMediaError
from edged.http._imagehead import read_head

RNG = np.random.default_rng(3)
BGR = RNG.integers(0, 256, (37, 53, 3), dtype=np.uint8)
GREY = RNG.integers(0, 256, (37, 53), dtype=np.uint8)


def enc(ext: str, img: np.ndarray, *params: int) -> bytes:
    ok, buf = cv2.imencode(ext, img, list(params))
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize(
    ("data", "fmt", "grey"),
    [
        (enc(".png", BGR), "PNG", False),
        (enc(".png", GREY), "PNG", True),
        (enc(".png", (GREY.astype(np.uint16) * 257)), "PNG", True),
        (enc(".png", np.dstack([BGR, GREY])), "PNG", False),
        (enc(".jpg", BGR), "JPEG", False),
        (enc(".jpg", GREY), "JPEG", True),
        (enc(".jpg", BGR, cv2.IMWRITE_JPEG_PROGRESSIVE, 1), "JPEG", False),
    ],
    ids=["png-bgr", "png-grey", "png-grey16", "png-bgra", "jpg", "jpg-grey", "jpg-progressive"],
)
def test_header_size_and_decode(data: bytes, fmt: str, grey: bool) -> None:
    head = read_head(data)
    assert (head.format, head.width, head.height, head.grey) == (fmt, 53, 37, grey)
    image, pixel_format = decode_encoded(data, max_pixels=53 * 37)
    assert pixel_format == fmt
    assert image.dtype == np.uint8
    assert image.shape == ((37, 53) if grey else (37, 53, 3))


def test_png_pixels_exact_and_16_bit_scaled() -> None:
    np.testing.assert_array_equal(decode_encoded(enc(".png", BGR), max_pixels=10**6)[0], BGR)
    np.testing.assert_array_equal(decode_encoded(enc(".png", GREY), max_pixels=10**6)[0], GREY)
    deep, _ = decode_encoded(enc(".png", GREY.astype(np.uint16) * 257), max_pixels=10**6)
    np.testing.assert_array_equal(deep, GREY)  # 16 → 8 bits
    bgra, _ = decode_encoded(enc(".png", np.dstack([BGR, GREY])), max_pixels=10**6)
    np.testing.assert_array_equal(bgra, BGR)  # alpha dropped


def test_jpeg_with_exif_segment_before_the_frame_header() -> None:
    jpg = enc(".jpg", BGR)
    app1 = b"\xff\xe1" + (2 + 10).to_bytes(2, "big") + b"Exif\x00\x00\xff\xd9\xff\xc0"
    spliced = jpg[:2] + app1 + jpg[2:]
    head = read_head(spliced)
    assert (head.width, head.height) == (53, 37)


def test_pixel_limit_is_checked_from_the_header() -> None:
    with pytest.raises(TooLargeError, match=r"53×37 = 1961"):
        decode_encoded(enc(".png", BGR), max_pixels=1960)


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [
        (b"", InputError, "empty"),
        (b"BM" + b"\x00" * 60, UnsupportedMediaError, "42 4d"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, InputError, "IHDR"),
        (b"\xff\xd8\xff\xda\x00\x02", InputError, "SOF"),
        (b"\xff\xd8\xff\xe0\x00\x01", InputError, "length"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", InputError, "ending before"),
    ],
)
def test_bad_headers(data: bytes, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        read_head(data)


def test_zero_size_headers() -> None:
    png = bytearray(enc(".png", BGR))
    png[16:24] = b"\x00" * 8
    with pytest.raises(InputError, match="non-zero"):
        read_head(bytes(png))


def test_raw_layouts() -> None:
    img, fmt = decode_raw(BGR.tobytes(), width=53, height=37, bayer=None)
    assert fmt == "BGR8"
    np.testing.assert_array_equal(img, BGR)
    img, fmt = decode_raw(GREY.tobytes(), width=53, height=37, bayer=None)
    assert fmt == "Mono8"
    np.testing.assert_array_equal(img, GREY)
    img, fmt = decode_raw(GREY[:36, :52].tobytes(), width=52, height=36, bayer="BG")
    assert fmt == "BayerBG8"
    assert img.shape == (36, 52, 3)
    with pytest.raises(InputError, match=r"expected 5883 bytes .* or 1961 bytes .* got 1960"):
        decode_raw(b"\x00" * 1960, width=53, height=37, bayer=None)


@pytest.mark.parametrize("name", ["psm_1a2b", "/psm_1a2b", "edged.frame-1", "A" * 251])
def test_shm_names_accepted(name: str) -> None:
    assert shm_path(name, shm_dir=Path("/x")) == Path("/x") / name.lstrip("/")


@pytest.mark.parametrize("name", ["", "/", "//a", "a/b", "..", ".x", "a b", "é", "A" * 252])
def test_shm_names_refused(name: str) -> None:
    with pytest.raises(InputError, match="name"):
        shm_path(name)


def test_shared_memory_from_a_directory(tmp_path: Path) -> None:
    """Same code on a plain directory: sizes must match exactly; pixels are copied."""
    (tmp_path / "blk").write_bytes(BGR.tobytes())
    img, fmt = read_shared_memory("blk", width=53, height=37, bayer=None, shm_dir=tmp_path)
    assert fmt == "BGR8"
    np.testing.assert_array_equal(img, BGR)
    (tmp_path / "blk").write_bytes(b"\x00" * 10)  # the copy does not follow the block
    np.testing.assert_array_equal(img, BGR)
    with pytest.raises(InputError, match=r"expected 5883 .* or 1961 .* got 10"):
        read_shared_memory("blk", width=53, height=37, bayer=None, shm_dir=tmp_path)
    with pytest.raises(NotFoundError):
        read_shared_memory("none", width=53, height=37, bayer=None, shm_dir=tmp_path)
    (tmp_path / "dir").mkdir()
    with pytest.raises(InputError):
        read_shared_memory("dir", width=1, height=1, bayer=None, shm_dir=tmp_path)
