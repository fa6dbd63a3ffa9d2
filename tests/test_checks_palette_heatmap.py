"""colorPalette and the interest heat map on images with known colours and texture."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from _checks_helpers import decode_png_b64

from edged.checks.heatmap import interest_heatmap
from edged.checks.palette import color_palette
from edged.core.errors import InputError
from edged.imaging.render import colorize_heatmap

# --------------------------------------------------------------------------- palette


def _two_colours() -> np.ndarray:
    img = np.empty((300, 400, 3), np.uint8)
    img[:] = (200, 30, 10)  # BGR -> RGB (10, 30, 200): 70 %
    img[:, :120] = (0, 128, 255)  # RGB (255, 128, 0): 120/400 = 30 %
    return img


def test_two_colour_image_gives_those_colours_at_their_true_shares() -> None:
    p = color_palette(_two_colours())
    assert p.colors == ((10, 30, 200, 70.0), (255, 128, 0, 30.0))
    assert p.count == 2
    assert p.to_dict() == {
        "colors": [[10, 30, 200, 70.0], [255, 128, 0, 30.0]],
        "count": 2,
        "sampled_px": 120_000,
    }


def test_count_one_gives_the_mean_colour() -> None:
    (c,) = color_palette(_two_colours(), count=1).colors
    assert c[:3] == (round(0.7 * 10 + 0.3 * 255), round(0.7 * 30 + 0.3 * 128), 140)
    assert c[3] == pytest.approx(100.0)


def test_full_frame_shares_are_right_from_the_sample() -> None:
    img = np.empty((2048, 2448, 3), np.uint8)
    img[:] = (0, 255, 0)  # green 50 %
    img[:, :734] = (255, 0, 0)  # blue 734/2448 ~ 29.98 %
    img[:, 734:1224] = (0, 0, 255)  # red 490/2448 ~ 20.02 %
    p = color_palette(img)
    assert p.sampled_px <= 262_144
    rgb = [c[:3] for c in p.colors]
    assert rgb == [(0, 255, 0), (0, 0, 255), (255, 0, 0)]
    shares = [c[3] for c in p.colors]
    assert shares == pytest.approx([50.0, 734 / 24.48, 490 / 24.48], abs=0.3)


def test_palette_is_deterministic_and_sorted() -> None:
    rng = np.random.default_rng(2)
    img = cv2.GaussianBlur(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8), (0, 0), 5)
    a = color_palette(img, count=6)
    b = color_palette(img.copy(), count=6)
    assert a == b
    assert a.count == 6
    shares = [c[3] for c in a.colors]
    assert shares == sorted(shares, reverse=True)
    assert sum(shares) == pytest.approx(100.0)


def test_grey_image_gives_grey_colours() -> None:
    img = np.full((50, 80), 40, np.uint8)
    img[:, 60:] = 220
    p = color_palette(img)
    assert p.colors == ((40, 40, 40, 75.0), (220, 220, 220, 25.0))


def test_palette_options_and_bad_images_are_refused() -> None:
    with pytest.raises(ValueError, match=r"count: expected 1\.\.32"):
        color_palette(_two_colours(), count=0)
    with pytest.raises(ValueError, match="max_samples"):
        color_palette(_two_colours(), max_samples=10)
    with pytest.raises(InputError):
        color_palette(np.zeros((4, 4, 3), np.int32))


# --------------------------------------------------------------------------- heat map


def _textured_patch() -> tuple[np.ndarray, tuple[slice, slice]]:
    img = np.full((600, 800), 120, np.uint8)
    patch = (slice(100, 250), slice(500, 700))
    img[patch] = np.random.default_rng(4).integers(0, 256, (150, 200), dtype=np.uint8)
    return img, patch


@pytest.mark.parametrize("method", ["contrast", "keypoints"])
def test_heat_lies_on_the_textured_patch(method: str) -> None:
    img, _patch = _textured_patch()
    h = interest_heatmap(img, method=method)  # type: ignore[arg-type]
    m = h.heatmap
    assert m.shape == (600, 800)
    assert m.dtype == np.float32
    assert float(m.min()) >= 0.0
    assert float(m.max()) <= 1.0
    assert float(m[140:210, 540:660].mean()) > 0.5  # inside the patch
    assert float(m[350:, :400].max()) == 0.0  # far from it: flat and noise-free
    x, y = h.peak_xy
    assert 480 <= x <= 720
    assert 80 <= y <= 270
    assert 0.02 < h.hot_fraction < 0.12  # the patch is 6.25 % of the image


def test_contrast_is_absolute_and_full_scale_sets_it() -> None:
    img = np.zeros((100, 100), np.uint8)
    img[:, ::2] = 20  # columns 0/20: std 10 (in a 51-px window 26 vs 25 columns)
    low = interest_heatmap(img, full_scale=40.0, window_frac=0.5)
    assert low.window_px == 51
    assert float(low.heatmap.mean()) == pytest.approx(0.25, abs=0.01)
    high = interest_heatmap(img, full_scale=10.0, window_frac=0.5)
    assert float(high.heatmap.mean()) == pytest.approx(1.0, abs=0.01)


def test_flat_image_has_no_heat() -> None:
    for method in ("contrast", "keypoints"):
        h = interest_heatmap(np.full((64, 64, 3), 99, np.uint8), method=method)  # type: ignore[arg-type]
        assert float(h.heatmap.max()) == 0.0
        assert h.mean == 0.0
        assert h.hot_fraction == 0.0


def test_heatmap_png_is_the_working_map_in_colour() -> None:
    img, _ = _textured_patch()
    h = interest_heatmap(img)
    d = h.to_dict()
    png = decode_png_b64(d["heatmap"])
    assert png.shape == (300, 400, 3)  # 800x600 reduced by 2 to fit 512
    assert d["png_resolution_wh"] == [400, 300]
    assert d["resolution_wh"] == [800, 600]
    assert np.array_equal(png, colorize_heatmap(h.work_map))
    assert h.to_dict(images=False)["heatmap"] is None


@pytest.mark.parametrize(
    "kwargs",
    [{"method": "sift"}, {"window_frac": 0.001}, {"full_scale": 0.0}, {"max_side_px": 8}],
)
def test_heatmap_options_out_of_range_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="expected"):
        interest_heatmap(np.zeros((64, 64), np.uint8), **kwargs)  # type: ignore[arg-type]
