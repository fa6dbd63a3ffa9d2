"""imgdiff: PixLab's mean square error, exact values."""

from __future__ import annotations

import numpy as np
import pytest

from edged.checks.imgdiff import imgdiff
from edged.core.errors import InputError


def test_mse_of_hand_built_images_is_exact() -> None:
    a = np.array([[0, 0], [0, 0]], np.uint8)
    b = np.array([[0, 0], [0, 2]], np.uint8)
    res = imgdiff(a, b)
    assert res.mse == 1.0  # (2^2) / 4
    np.testing.assert_array_equal(res.diff, b)
    assert res.to_dict() == {"diff": 1.0}


def test_mse_over_colour_channels_and_order() -> None:
    a = np.zeros((2, 3, 3), np.uint8)
    b = a.copy()
    b[0, 0] = (10, 0, 0)
    b[1, 2] = (0, 0, 255)
    expected = (100 + 255 * 255) / 18
    assert imgdiff(a, b).mse == pytest.approx(expected)
    assert imgdiff(b, a).mse == pytest.approx(expected)
    assert imgdiff(a, a).mse == 0.0


def test_grey_is_compared_with_colour_as_three_equal_channels() -> None:
    grey = np.full((4, 4), 100, np.uint8)
    colour = np.full((4, 4, 3), 100, np.uint8)
    colour[..., 2] = 103
    assert imgdiff(grey, colour).mse == pytest.approx(9 / 3)


def test_size_mismatch_is_a_clear_input_error() -> None:
    with pytest.raises(InputError, match="same size, got src 4x3 and target 3x4") as info:
        imgdiff(np.zeros((3, 4), np.uint8), np.zeros((4, 3), np.uint8))
    assert info.value.http_status == 400


def test_non_image_is_an_input_error() -> None:
    with pytest.raises(InputError, match="target: expected"):
        imgdiff(np.zeros((3, 3), np.uint8), np.zeros((3, 3), np.float64))


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 24])
def test_mse_is_the_exact_mean_whatever_the_histogram_chunks(
    chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sum of squares is counted from histograms of chunks of the pixels; any chunk
    # size gives the exact integer sum, so the MSE is that sum over the value count
    # (what squaring every difference in float64 gave before, bit for bit).
    import edged.checks.imgdiff as module

    monkeypatch.setattr(module, "_HIST_CHUNK", chunk)
    rng = np.random.default_rng(chunk)
    a = rng.integers(0, 256, (33, 47, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (33, 47, 3), dtype=np.uint8)
    d = np.abs(a.astype(np.int64) - b.astype(np.int64))
    exact = int((d * d).sum())
    assert imgdiff(a, b).mse == exact / a.size
    d64 = d.astype(np.float64)
    assert imgdiff(a, b).mse == float(np.mean(d64 * d64))


def test_mse_of_extreme_images_is_exact() -> None:
    white = np.full((40, 50, 3), 255, np.uint8)
    black = np.zeros((40, 50, 3), np.uint8)
    assert imgdiff(white, black).mse == 65025.0
    assert imgdiff(black, white).mse == 65025.0
