"""imageQuality: exposure, sharpness and noise against images with known answers."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from _checks_helpers import decode_png_b64

from edged.checks.quality import image_quality


def _grey_with(count: int, value: int, *, base: int = 128, seed: int = 3) -> np.ndarray:
    """100×200 grey at ``base`` with exactly ``count`` random pixels set to ``value``."""
    img = np.full((100, 200), base, np.uint8)
    idx = np.random.default_rng(seed).choice(img.size, size=count, replace=False)
    img.flat[idx] = value
    return img


def test_exactly_ten_percent_saturated_gives_over_per_10() -> None:
    img = _grey_with(2000, 255)  # 2000 of 20000 pixels
    q = image_quality(img)
    assert q.encoding == "OK"
    assert q.brightness is not None
    assert q.brightness.over_per == pytest.approx(10.0, abs=0.1)
    assert q.brightness.under_per == 0.0


def test_saturated_colour_pixels_count_through_the_luma() -> None:
    grey = _grey_with(2000, 255)
    bgr = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    q = image_quality(bgr)
    assert q.brightness is not None
    assert q.brightness.over_per == pytest.approx(10.0, abs=0.1)


def test_tolerance_sets_the_exposure_bands_exactly() -> None:
    # tolerance 0.02 -> u = floor(5.1) = 5: under L <= 5, over L >= 250
    img = np.full((10, 10), 128, np.uint8)
    img[0, :5] = [0, 5, 6, 249, 250]
    img[1, :2] = [255, 254]
    b = image_quality(img, tolerance=0.02).brightness
    assert b is not None
    assert b.under_per == pytest.approx(2.0)  # 0 and 5
    assert b.over_per == pytest.approx(3.0)  # 250, 255, 254
    b0 = image_quality(img, tolerance=0.0).brightness
    assert b0 is not None
    assert (b0.under_per, b0.over_per) == (pytest.approx(1.0), pytest.approx(1.0))


def test_mean_std_and_histogram_are_exact() -> None:
    img = np.full((10, 20), 100, np.uint8)
    img[:, 10:] = 200
    b = image_quality(img, bins=4).brightness
    assert b is not None
    assert b.l_mean == pytest.approx(150.0)
    assert b.l_std == pytest.approx(50.0)
    assert b.l_hist == (0, 100, 0, 100)  # bins 0-63, 64-127, 128-191, 192-255
    assert sum(image_quality(img, bins=7).brightness.l_hist) == 200  # type: ignore[union-attr]


def test_masks_only_when_asked_and_they_mark_the_pixels() -> None:
    img = _grey_with(300, 255)
    img[0, :7] = 0
    off = image_quality(img).to_dict()
    assert off["brightness"]["over_mask"] is None
    assert off["brightness"]["under_mask"] is None
    on = image_quality(img, masks=True).to_dict()
    over = decode_png_b64(on["brightness"]["over_mask"])
    under = decode_png_b64(on["brightness"]["under_mask"])
    assert over.shape == img.shape
    assert np.array_equal(over > 0, img == 255)
    assert np.array_equal(under > 0, img == 0)


def test_stripes_give_the_exact_laplacian_figures() -> None:
    # columns alternate 0 / 100: the x second difference is +-200, y's is 0
    img = np.zeros((12, 10), np.uint8)
    img[:, 1::2] = 100
    s = image_quality(img).sharpness
    assert s is not None
    assert s.val == pytest.approx(40000.0)
    assert s.sml == pytest.approx(200.0)
    assert s.val_norm == pytest.approx(40000.0 / 40100.0)
    assert s.sml_norm == pytest.approx(200.0 / 208.0)


def test_blurred_copy_is_less_sharp() -> None:
    rng = np.random.default_rng(5)
    img = cv2.resize(rng.integers(0, 256, (60, 80), dtype=np.uint8), (320, 240))
    cv2.rectangle(img, (50, 50), (200, 180), 255, 3)
    sharp = image_quality(img).sharpness
    blurred = image_quality(cv2.GaussianBlur(img, (0, 0), 2.0)).sharpness
    assert sharp is not None
    assert blurred is not None
    assert blurred.val < 0.5 * sharp.val
    assert blurred.sml < 0.7 * sharp.sml
    assert blurred.val_norm < sharp.val_norm
    assert blurred.sml_norm < sharp.sml_norm
    for v in (sharp.val_norm, sharp.sml_norm, blurred.val_norm, blurred.sml_norm):
        assert 0.0 <= v < 1.0


@pytest.mark.parametrize("sigma", [2.0, 5.0, 10.0])
def test_noise_of_known_sigma_is_estimated_within_15_percent(sigma: float) -> None:
    # A ramp (an illumination gradient) plus Gaussian noise: the ramp does not count.
    ramp = np.tile(np.linspace(60.0, 190.0, 640), (480, 1))
    noisy = ramp + np.random.default_rng(11).normal(0.0, sigma, ramp.shape)
    img = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    q = image_quality(img)
    assert q.noise == pytest.approx(sigma, rel=0.15)


def test_a_noise_free_plane_has_zero_noise() -> None:
    y, x = np.mgrid[0:100, 0:120]
    q = image_quality((x + y).astype(np.uint8))
    assert q.noise == 0.0


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        (np.zeros((10, 10), np.uint16), "dtype uint16"),
        (np.zeros((10, 10), np.float32), "dtype float32"),
        (np.zeros((10, 10, 4), np.uint8), "shape (10, 10, 4)"),
        (np.zeros((0, 10), np.uint8), "non-empty"),
        ([[1, 2], [3, 4]], "list"),
    ],
)
def test_unusable_input_is_reported_in_encoding(image: object, reason: str) -> None:
    q = image_quality(image)  # type: ignore[arg-type]
    assert q.encoding.startswith("unusable:")
    assert reason in q.encoding
    d = q.to_dict()
    assert d["brightness"] is None
    assert d["sharpness"] is None
    assert d["noise"] is None


def test_constant_image_is_unusable_but_measured() -> None:
    q = image_quality(np.full((20, 30, 3), 77, np.uint8))
    assert q.encoding == "unusable: constant image (every pixel is 77)"
    assert q.brightness is not None
    assert q.brightness.l_mean == pytest.approx(77.0)
    assert q.sharpness is not None
    assert q.sharpness.val == 0.0
    assert q.noise == 0.0


def test_to_dict_has_the_ltu_shape() -> None:
    d = image_quality(_grey_with(100, 0)).to_dict()
    assert set(d) == {"encoding", "brightness", "sharpness", "noise", "resolution_wh"}
    assert set(d["brightness"]) == {
        "under_per", "under_mask", "over_per", "over_mask", "l_mean", "l_std", "l_hist",
    }  # fmt: skip
    assert set(d["sharpness"]) == {"val", "sml", "val_norm", "sml_norm"}
    assert d["resolution_wh"] == [200, 100]
    assert not math.isnan(d["noise"])


@pytest.mark.parametrize(
    "kwargs", [{"bins": 0}, {"bins": 257}, {"tolerance": 0.6}, {"val_half": 0.0}]
)
def test_options_out_of_range_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="expected"):
        image_quality(np.zeros((4, 4), np.uint8), **kwargs)  # type: ignore[arg-type]


def _reference(grey: np.ndarray) -> tuple[float, float, float]:
    """Whole-frame NumPy reference for val, sml and noise (float64, no bands)."""
    g = grey.astype(np.float64)
    c = g[1:-1, 1:-1]
    d2x = g[1:-1, :-2] - 2 * c + g[1:-1, 2:]
    d2y = g[:-2, 1:-1] - 2 * c + g[2:, 1:-1]
    nx = g[:, :-2] - 2 * g[:, 1:-1] + g[:, 2:]
    n = nx[:-2] - 2 * nx[1:-1] + nx[2:]
    lap = d2x + d2y
    sigma = math.sqrt(math.pi / 2) * np.abs(n).sum() / (6 * c.size)
    return float(lap.var()), float((np.abs(d2x) + np.abs(d2y)).mean()), float(sigma)


@pytest.mark.parametrize("size_hw", [(3, 3), (4, 7), (127, 40), (129, 33), (300, 257)])
def test_banded_pass_matches_a_whole_frame_reference(size_hw: tuple[int, int]) -> None:
    rng = np.random.default_rng(8)
    bgr = rng.integers(0, 256, (*size_hw, 3), dtype=np.uint8)
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    q = image_quality(bgr, masks=True, tolerance=0.1)
    assert q.sharpness is not None
    assert q.brightness is not None
    val, sml, noise = _reference(grey)
    assert q.sharpness.val == pytest.approx(val, rel=1e-9)
    assert q.sharpness.sml == pytest.approx(sml, rel=1e-9)
    assert q.noise == pytest.approx(noise, rel=1e-9)
    assert q.brightness.l_mean == pytest.approx(float(grey.mean()), rel=1e-12)
    assert q.brightness.l_std == pytest.approx(float(grey.std()), rel=1e-9)
    assert q.brightness.under_mask is not None
    assert q.brightness.over_mask is not None
    assert np.array_equal(q.brightness.under_mask == 1, grey <= 25)
    assert np.array_equal(q.brightness.over_mask == 1, grey >= 230)


def test_images_too_small_for_the_filters_have_zero_sharpness() -> None:
    q = image_quality(np.array([[0, 255], [255, 0]], np.uint8))
    assert q.encoding == "OK"
    assert q.sharpness is not None
    assert q.sharpness.val == 0.0
    assert q.noise == 0.0


def test_pair_histogram_flushes_exactly() -> None:
    from edged.checks._hist import PairHistogram, hist256

    class Tiny(PairHistogram):
        _LIMIT = 100  # flush every few rows

    rng = np.random.default_rng(2)
    total = np.zeros(256, np.float64)
    hist = Tiny(total)
    expected = np.zeros(256, np.int64)
    for w in (31, 40, 1):
        block = rng.integers(0, 256, (9, w), dtype=np.uint8)
        hist.add(block)
        expected += np.bincount(block.ravel(), minlength=256)
    hist.flush()
    assert np.array_equal(total, expected.astype(np.float64))
    img = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    assert np.array_equal(hist256(img), np.bincount(img.ravel(), minlength=256))
