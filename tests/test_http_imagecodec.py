"""Safe decoding of uploaded images: header sizes, bombs, truncation, formats."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from edged.core.errors import InputError, TooLargeError
from edged.http._imagecodec import decode_image, image_size
from edged.http._input import decode_base64

_y, _x = np.mgrid[0:30, 0:40]
IMG = np.dstack([_x * 6, _y * 8, (_x + _y) * 3]).astype(np.uint8)  # smooth: lossy stays close
ENCODINGS = [
    (".png", [], "PNG"),
    (".jpg", [], "JPEG"),
    (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1], "JPEG"),
    (".bmp", [], "BMP"),
    (".tiff", [], "TIFF"),
    (".webp", [], "WebP"),  # lossless (VP8L)
    (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80], "WebP"),  # lossy (VP8)
]


def _encode(ext: str, params: list[int], image: np.ndarray = IMG) -> bytes:
    ok, buf = cv2.imencode(ext, image, params)
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize(("ext", "params", "fmt"), ENCODINGS)
def test_header_size_and_decode_for_each_format(ext: str, params: list[int], fmt: str) -> None:
    data = _encode(ext, params)
    assert image_size(data) == (fmt, 40, 30)
    out = decode_image(data, max_pixels=1200)
    assert out.shape == (30, 40, 3)
    assert out.dtype == np.uint8
    lossless = fmt in ("PNG", "BMP", "TIFF") or (fmt == "WebP" and not params)
    if lossless:
        assert np.array_equal(out, IMG)
    else:
        assert float(np.abs(out.astype(int) - IMG).mean()) < 8  # lossy, same picture


@pytest.mark.parametrize(("ext", "params", "fmt"), ENCODINGS)
def test_one_pixel_over_the_limit_is_413(ext: str, params: list[int], fmt: str) -> None:
    with pytest.raises(TooLargeError, match=f"^{fmt} image: expected at most 1199 pixels") as err:
        decode_image(_encode(ext, params), max_pixels=1199)
    assert "got 40×30 = 1200" in str(err.value)


@pytest.mark.parametrize(("ext", "params", "fmt"), ENCODINGS)
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_files_are_400(ext: str, params: list[int], fmt: str, keep: float) -> None:
    data = _encode(ext, params)
    with pytest.raises(InputError, match=fmt):
        decode_image(data[: int(len(data) * keep)], max_pixels=10**6)


def test_grey_and_sixteen_bit_become_the_contract() -> None:
    grey = np.arange(1200, dtype=np.uint16).reshape(30, 40) * 50
    out = decode_image(_encode(".png", [], grey), max_pixels=10**6)
    assert out.shape == (30, 40)
    assert out.dtype == np.uint8
    assert np.array_equal(out, (grey >> 8).astype(np.uint8))
    rgba = np.dstack([IMG, np.full((30, 40), 7, np.uint8)])
    assert decode_image(_encode(".png", [], rgba), max_pixels=10**6).shape == (30, 40, 3)


def test_jpeg_bomb_header_is_refused_before_decoding() -> None:
    data = bytearray(_encode(".jpg", []))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60000, 60000)  # height, width
    with pytest.raises(TooLargeError, match="60000×60000"):
        decode_image(bytes(data), max_pixels=50_000_000)


@pytest.mark.parametrize(
    ("data", "shown"),
    [
        (b"", "expected a PNG, JPEG, GIF, BMP, TIFF or WebP image"),
        (b"GIF89a" + b"\x00" * 20, "GIF header gives an empty size 0×0"),
        (b"GIF89a\x10\x00\x10\x00" + b"\x00" * 20, "GIF of 16×16 could not be decoded"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "PNG: expected an IHDR chunk"),
        (b"\xff\xd8\xff\xd9" + b"\x00" * 20, "JPEG: expected a frame header (SOF)"),
        (b"BM" + b"\x00" * 20, "BMP"),
        (b"II*\x00\xff\xff\x00\x00" + b"\x00" * 20, "TIFF"),
    ],
)
def test_garbage_is_400_saying_what_came(data: bytes, shown: str) -> None:
    with pytest.raises(InputError) as err:
        decode_image(data, max_pixels=10**6)
    assert shown in str(err.value)


def test_gif_is_decoded_and_a_gif_bomb_refused() -> None:
    img = np.zeros((20, 30, 3), np.uint8)
    img[5:10, 5:20] = (0, 0, 255)
    ok, buf = cv2.imencode(".gif", img)
    assert ok
    out = decode_image(buf.tobytes(), max_pixels=10**6)
    assert out.shape == (20, 30, 3)
    assert out[7, 7, 2] > 240
    assert out[7, 7, :2].max() < 16
    bomb = bytearray(buf.tobytes())
    bomb[6:10] = struct.pack("<HH", 60000, 60000)
    with pytest.raises(TooLargeError, match="60000×60000"):
        decode_image(bytes(bomb), max_pixels=50_000_000)


def test_corrupt_pixel_data_is_400() -> None:
    data = bytearray(_encode(".png", []))
    idat = data.find(b"IDAT")
    data[idat + 4 : idat + 40] = b"\x00" * 36  # wreck the compressed stream
    with pytest.raises(InputError, match=r"cannot decode|could not be decoded"):
        decode_image(bytes(data), max_pixels=10**6)


def test_base64_variants() -> None:
    raw = bytes(range(256))
    import base64

    std = base64.b64encode(raw).decode()
    assert decode_base64(std) == raw
    assert decode_base64(std.rstrip("=")) == raw
    assert decode_base64(base64.urlsafe_b64encode(raw).decode()) == raw
    assert decode_base64("data:image/png;base64," + std) == raw
    assert decode_base64(std.replace("+", " ")) == raw
    wrapped = "\n".join(std[i : i + 76] for i in range(0, len(std), 76))
    assert decode_base64(wrapped) == raw
    with pytest.raises(InputError, match="reference: expected base64"):
        decode_base64("ab$cd", "reference")
