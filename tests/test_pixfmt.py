"""Pixel formats: Bayer patterns, packed formats, padding, colour orders, bad sizes."""

from __future__ import annotations

import numpy as np
import pytest

from edged.core.errors import InputError
from edged.core.frames import Frame
from edged.imaging.pixfmt import (
    SUPPORTED_FORMATS,
    HighImage,
    debayer,
    decode,
    decode_high,
    pixel_format,
)

PATTERNS = ("RG", "GR", "GB", "BG")
# Channel (B=0, G=1, R=2) at (y % 2, x % 2) for each PFNC pattern, read as a sentence:
# "RG" = first row R G, second row G B.
CHANNEL_AT = {
    "RG": ((2, 1), (1, 0)),
    "GR": ((1, 2), (0, 1)),
    "GB": ((1, 0), (2, 1)),
    "BG": ((0, 1), (1, 2)),
}


def frame(data: np.ndarray, fmt: str, w: int, h: int) -> Frame:
    return Frame(data=data, pixel_format=fmt, width=w, height=h, camera="t", seq=0, host_ts_ns=0)


def mosaic(bgr: np.ndarray, pattern: str) -> np.ndarray:
    """Sample a BGR image through a Bayer colour filter (the camera's job)."""
    h, w = bgr.shape[:2]
    out = np.empty((h, w), dtype=bgr.dtype)
    for dy in (0, 1):
        for dx in (0, 1):
            ch = CHANNEL_AT[pattern][dy][dx]
            out[dy::2, dx::2] = bgr[dy::2, dx::2, ch]
    return out


def quadrants(h: int, w: int, colours: list[tuple[int, int, int]], dtype: type) -> np.ndarray:
    img = np.empty((h, w, 3), dtype=dtype)
    img[: h // 2, : w // 2] = colours[0]
    img[: h // 2, w // 2 :] = colours[1]
    img[h // 2 :, : w // 2] = colours[2]
    img[h // 2 :, w // 2 :] = colours[3]
    return img


def centres(img: np.ndarray) -> list[np.ndarray]:
    h, w = img.shape[:2]
    return [
        img[h // 4, w // 4],
        img[h // 4, 3 * w // 4],
        img[3 * h // 4, w // 4],
        img[3 * h // 4, 3 * w // 4],
    ]


# ------------------------------------------------------------------- reference packers


def pack_pfnc(px: np.ndarray, bits: int) -> np.ndarray:
    """PFNC ``p`` packing by its definition: a LSB-first bit stream of all pixels."""
    as_bits = np.unpackbits(
        px.astype("<u2").reshape(-1, 1).view(np.uint8), axis=1, bitorder="little"
    )[:, :bits]
    return np.packbits(as_bits.reshape(-1), bitorder="little")


def pack_legacy(px: np.ndarray, bits: int) -> np.ndarray:
    """GigE Vision legacy ``Mono12Packed``/``Mono10Packed``: 2 pixels in 3 bytes."""
    px = px.reshape(-1).astype(np.uint16)
    n_bytes = -(-px.size * 12 // 8)
    if px.size % 2:
        px = np.append(px, 0)
    p0, p1 = px[0::2], px[1::2]
    lo = bits - 8
    out = np.empty((p0.size, 3), dtype=np.uint8)
    out[:, 0] = p0 >> lo
    out[:, 2] = p1 >> lo
    mask = (1 << lo) - 1
    out[:, 1] = (p0 & mask) | ((p1 & mask) << 4)
    return out.reshape(-1)[:n_bytes]


def pack(px: np.ndarray, packing: str, bits: int) -> np.ndarray:
    return pack_pfnc(px, bits) if packing == "p" else pack_legacy(px, bits)


def suffix(bits: int, packing: str) -> str:
    return {"none": str(bits), "p": f"{bits}p", "packed": f"{bits}Packed"}[packing]


# ------------------------------------------------------------------------------ Bayer

COLOURS_8 = [(30, 60, 220), (40, 200, 70), (210, 90, 20), (250, 250, 250)]  # BGR


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("method", ["bilinear", "ea", "vng"])
def test_bayer8_each_pattern_comes_back_with_its_colours(pattern: str, method: str) -> None:
    bgr = quadrants(32, 48, COLOURS_8, np.uint8)
    raw = mosaic(bgr, pattern)
    out = decode(frame(raw, f"Bayer{pattern}8", 48, 32), demosaic=method)  # type: ignore[arg-type]
    assert out.shape == (32, 48, 3)
    assert out.dtype == np.uint8
    for got, want in zip(centres(out), COLOURS_8, strict=True):
        np.testing.assert_allclose(got, want, atol=2)


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize(
    ("bits", "packing"),
    [
        (10, "none"),
        (12, "none"),
        (16, "none"),
        (10, "p"),
        (12, "p"),
        (10, "packed"),
        (12, "packed"),
    ],
)
def test_deep_bayer_each_pattern_and_packing(pattern: str, bits: int, packing: str) -> None:
    h, w = 16, 24
    colours16 = [tuple(c * (1 << (bits - 8)) + 3 for c in col) for col in COLOURS_8]
    bgr = quadrants(h, w, colours16, np.uint16)  # type: ignore[arg-type]
    raw = mosaic(bgr, pattern)
    data = raw if packing == "none" else pack(raw.reshape(-1), packing, bits)
    if packing == "none":
        data = raw.astype("<u2").view(np.uint8).reshape(-1)  # wire bytes, little-endian
    f = frame(data, f"Bayer{pattern}{suffix(bits, packing)}", w, h)
    out8 = decode(f)
    for got, want in zip(centres(out8), COLOURS_8, strict=True):
        np.testing.assert_allclose(got, want, atol=2)
    high = decode_high(f)
    assert isinstance(high, HighImage)
    assert high.bits == bits
    assert high.image.dtype == np.uint16
    assert high.image.shape == (h, w, 3)
    for got, want in zip(centres(high.image), colours16, strict=True):
        np.testing.assert_array_equal(got, want)


def test_pfnc_rg_is_not_opencv_legacy_rg() -> None:
    """The trap: PFNC BayerRG through COLOR_BayerRG2BGR would swap red and blue."""
    import cv2

    bgr = quadrants(8, 8, [(0, 0, 255)] * 4, np.uint8)  # pure red
    raw = mosaic(bgr, "RG")
    assert tuple(debayer(raw, "RG")[4, 4]) == (0, 0, 255)
    assert tuple(cv2.cvtColor(raw, cv2.COLOR_BayerRG2BGR)[4, 4]) == (255, 0, 0)


def test_mono_camera_told_its_real_pattern() -> None:
    bgr = quadrants(16, 16, COLOURS_8, np.uint8)
    raw = mosaic(bgr, "GB")
    grey = decode(frame(raw, "Mono8", 16, 16))
    assert grey.shape == (16, 16)
    colour = decode(frame(raw, "Mono8", 16, 16), bayer_pattern="GB")
    for got, want in zip(centres(colour), COLOURS_8, strict=True):
        np.testing.assert_allclose(got, want, atol=2)
    packed = pack_pfnc(raw.astype(np.uint16) << 4, 12)
    colour12 = decode(frame(packed, "Mono12p", 16, 16), bayer_pattern="GB")
    for got, want in zip(centres(colour12), COLOURS_8, strict=True):
        np.testing.assert_allclose(got, want, atol=2)


def test_vng_refuses_deep_data_with_a_reason() -> None:
    raw = np.zeros((8, 8), np.uint16)
    with pytest.raises(InputError, match="vng demosaic: expected 8-bit"):
        debayer(raw, "RG", method="vng")


# ---------------------------------------------------------------------- mono / packed


@pytest.mark.parametrize("bits", [10, 12])
@pytest.mark.parametrize("packing", ["p", "packed"])
@pytest.mark.parametrize(("h", "w"), [(4, 8), (3, 7), (5, 5), (1, 1), (2, 3), (7, 13)])
def test_packed_round_trip_stream(bits: int, packing: str, h: int, w: int) -> None:
    rng = np.random.default_rng(bits * 100 + w)
    px = rng.integers(0, 1 << bits, size=(h, w), dtype=np.uint16)
    f = frame(pack(px.reshape(-1), packing, bits), f"Mono{suffix(bits, packing)}", w, h)
    np.testing.assert_array_equal(decode_high(f).image, px)
    np.testing.assert_array_equal(decode(f), (px >> (bits - 8)).astype(np.uint8))


@pytest.mark.parametrize("bits", [10, 12])
@pytest.mark.parametrize("packing", ["p", "packed"])
@pytest.mark.parametrize(("h", "w", "pad"), [(4, 7, 3), (3, 9, 1), (6, 16, 8)])
def test_packed_rows_with_end_padding(bits: int, packing: str, h: int, w: int, pad: int) -> None:
    """Each row packed on its own, then padded to a stride (GenTL x padding)."""
    rng = np.random.default_rng(w * pad)
    px = rng.integers(0, 1 << bits, size=(h, w), dtype=np.uint16)
    rows = [pack(row, packing, bits) for row in px]
    stride = rows[0].size + pad
    buf = np.full((h, stride), 0xAB, dtype=np.uint8)
    for y, row in enumerate(rows):
        buf[y, : row.size] = row
    f = frame(buf.reshape(-1), f"Mono{suffix(bits, packing)}", w, h)
    np.testing.assert_array_equal(decode_high(f).image, px)
    np.testing.assert_array_equal(decode(f), (px >> (bits - 8)).astype(np.uint8))


@pytest.mark.parametrize("bits", [10, 12])
@pytest.mark.parametrize("packing", ["p", "packed"])
@pytest.mark.parametrize(("w", "pad"), [(1024, 0), (1024, 16), (1001, 0), (1001, 5)])
def test_packed_large_frames_through_the_planar_path(
    bits: int, packing: str, w: int, pad: int
) -> None:
    """Frames big enough to be unpacked in several bands (and, as one bit stream,
    in pseudo-rows plus a remainder), with and without row padding and with an odd
    width (one pixel left over per row)."""
    h = 200
    rng = np.random.default_rng(w + pad + bits)
    px = rng.integers(0, 1 << bits, size=(h, w), dtype=np.uint16)
    if pad:
        rows = [pack(row, packing, bits) for row in px]
        buf = np.full((h, rows[0].size + pad), 0x5A, dtype=np.uint8)
        for y, row in enumerate(rows):
            buf[y, : row.size] = row
        data = buf.reshape(-1)
    else:
        data = pack(px.reshape(-1), packing, bits)
    f = frame(data, f"Mono{suffix(bits, packing)}", w, h)
    grey = decode(f)
    assert grey.shape == (h, w)
    assert grey.dtype == np.uint8
    np.testing.assert_array_equal(grey, (px >> (bits - 8)).astype(np.uint8))
    np.testing.assert_array_equal(decode_high(f).image, px)


def test_harvesters_unpacked_uint16_for_packed_format() -> None:
    """harvesters hands packed formats over already unpacked to uint16."""
    px = np.arange(12, dtype=np.uint16).reshape(3, 4) * 300
    f = frame(px.reshape(-1), "Mono12p", 4, 3)
    np.testing.assert_array_equal(decode_high(f).image, px)
    np.testing.assert_array_equal(decode(f), (px >> 4).astype(np.uint8))


@pytest.mark.parametrize(
    ("fmt", "bits"), [("Mono10", 10), ("Mono12", 12), ("Mono14", 14), ("Mono16", 16)]
)
def test_unpacked_deep_mono_from_bytes_and_words(fmt: str, bits: int) -> None:
    px = np.array([[0, 1, (1 << bits) - 1], [255, 256, 1 << (bits - 1)]], dtype=np.uint16)
    want8 = (px >> (bits - 8)).astype(np.uint8)
    for data in (px, px.astype("<u2").view(np.uint8).reshape(-1)):
        f = frame(data, fmt, 3, 2)
        np.testing.assert_array_equal(decode(f), want8)
        np.testing.assert_array_equal(decode_high(f).image, px)


def test_mono8_odd_width_with_row_padding_is_a_view() -> None:
    img = np.arange(5 * 7, dtype=np.uint8).reshape(5, 7)
    buf = np.zeros((5, 12), np.uint8)
    buf[:, :7] = img
    out = decode(frame(buf.reshape(-1), "Mono8", 7, 5))
    np.testing.assert_array_equal(out, img)
    assert np.shares_memory(out, buf)  # no copy for Mono8


def test_mono16_padded_rows() -> None:
    px = np.array([[1000, 2000, 65535]], dtype=np.uint16).repeat(3, axis=0)
    buf = np.zeros((3, 8), np.uint8)
    buf[:, :6] = px.astype("<u2").view(np.uint8)
    f = frame(buf.reshape(-1), "Mono16", 3, 3)
    np.testing.assert_array_equal(decode_high(f).image, px)
    np.testing.assert_array_equal(decode(f)[0], [3, 7, 255])


# ----------------------------------------------------------------------------- colour


def test_rgb_bgr_rgba_bgra_orders() -> None:
    bgr = np.array([[[10, 20, 30], [40, 50, 60], [70, 80, 90]]], dtype=np.uint8)
    rgb = bgr[..., ::-1]
    alpha = np.full((1, 3, 1), 7, np.uint8)
    cases = {
        "BGR8": bgr,
        "RGB8": rgb,
        "RGBa8": np.concatenate([rgb, alpha], axis=2),
        "BGRa8": np.concatenate([bgr, alpha], axis=2),
        "RGBA8Packed": np.concatenate([rgb, alpha], axis=2),
    }
    for fmt, data in cases.items():
        out = decode(frame(np.ascontiguousarray(data).reshape(-1), fmt, 3, 1))
        np.testing.assert_array_equal(out, bgr, err_msg=fmt)
    # BGR8 in its natural shape comes back as the same memory (the frame's view).
    f = frame(bgr, "BGR8", 3, 1)
    assert decode(f) is f.data
    assert np.shares_memory(f.data, bgr)


def test_rgb8_odd_width_with_row_padding() -> None:
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    buf = np.zeros((4, 5 * 3 + 1), np.uint8)
    buf[:, :15] = rgb.reshape(4, 15)
    out = decode(frame(buf.reshape(-1), "RGB8", 5, 4))
    np.testing.assert_array_equal(out, rgb[..., ::-1])


def yuv_expected(y: int, u: int, v: int) -> tuple[int, int, int]:
    """BT.601 video range (Y 16..235), the conversion OpenCV applies to YUV 4:2:2."""
    yy = 1.164 * (y - 16)
    r = yy + 1.596 * (v - 128)
    g = yy - 0.813 * (v - 128) - 0.391 * (u - 128)
    b = yy + 2.018 * (u - 128)
    return tuple(int(np.clip(round(c), 0, 255)) for c in (b, g, r))  # type: ignore[return-value]


def test_yuv422_both_orders() -> None:
    h, w = 2, 4
    y, u, v = 100, 110, 200  # a red
    yuyv = np.tile(np.array([y, u, y, v], np.uint8), h * w // 2)
    uyvy = np.tile(np.array([u, y, v, y], np.uint8), h * w // 2)
    a = decode(frame(yuyv, "YUV422_8", w, h))
    b = decode(frame(uyvy, "YUV422_8_UYVY", w, h))
    legacy = decode(frame(uyvy, "YUV422Packed", w, h))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, legacy)
    np.testing.assert_allclose(a[0, 0], yuv_expected(y, u, v), atol=3)
    assert a[0, 0, 2] > 190  # red, not blue: the byte orders are right
    assert a[0, 0, 0] < 80


def test_yuv422_odd_width_refused() -> None:
    with pytest.raises(InputError, match="expected an even width"):
        decode(frame(np.zeros(2 * 3 * 2, np.uint8), "YUV422_8", 3, 2))


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("fmt", "w", "h", "size", "expected"),
    [
        ("Mono8", 4, 3, 11, "12 bytes"),
        ("Mono12p", 4, 3, 17, "18 bytes"),
        ("BayerRG12Packed", 3, 3, 13, "14 bytes"),
        ("RGB8", 2, 2, 11, "12 bytes"),
        ("Mono16", 2, 2, 7, "8 bytes"),
    ],
)
def test_wrong_buffer_size_says_expected_and_got(
    fmt: str, w: int, h: int, size: int, expected: str
) -> None:
    f = frame(np.zeros(size, np.uint8), fmt, w, h)
    with pytest.raises(InputError, match=f"{fmt}: expected {expected}.*got {size}"):
        decode(f)


def test_unknown_format_and_wrong_dtype() -> None:
    with pytest.raises(InputError, match="got 'Coord3D_ABC32f'"):
        decode(frame(np.zeros(4, np.uint8), "Coord3D_ABC32f", 2, 2))
    with pytest.raises(InputError, match="expected uint8 raw bytes, got float32"):
        decode(frame(np.zeros(4, np.float32), "Mono8", 2, 2))


def test_table_is_complete() -> None:
    for name in (
        "Mono8",
        "Mono10",
        "Mono12",
        "Mono16",
        "Mono10p",
        "Mono12p",
        "Mono10Packed",
        "Mono12Packed",
        "RGB8",
        "BGR8",
        "RGBa8",
        "BGRa8",
        "YUV422_8",
        "YUV422_8_UYVY",
    ):
        assert name in SUPPORTED_FORMATS
    for p in PATTERNS:
        for s in ("8", "10", "12", "16", "10p", "12p", "10Packed", "12Packed"):
            assert pixel_format(f"Bayer{p}{s}").pattern == p
    assert pixel_format("Mono12p").frame_bytes(5, 3) == 23  # ceil(15 * 12 / 8)
    assert pixel_format("Mono10Packed").frame_bytes(4, 1) == 6
    assert pixel_format("BGR8Packed").name == "BGR8"


def test_bayer8_odd_width_with_row_padding() -> None:
    bgr = quadrants(20, 31, COLOURS_8, np.uint8)
    raw = mosaic(bgr, "BG")
    buf = np.zeros((20, 36), np.uint8)
    buf[:, :31] = raw
    out = decode(frame(buf.reshape(-1), "BayerBG8", 31, 20))
    assert out.shape == (20, 31, 3)
    for got, want in zip(centres(out), COLOURS_8, strict=True):
        np.testing.assert_allclose(got, want, atol=2)
