"""edged.imaging.render: pure drawing and heat-map functions, checked pixel by pixel."""

from __future__ import annotations

import cv2
import numpy as np

from edged.checks import Region
from edged.imaging.png_write import encode_png
from edged.imaging.render import (
    BOX_BGR,
    annotate,
    colorize_heatmap,
    encode_jpeg,
    regions_heatmap,
    to_bgr,
)


def jet(level: int) -> np.ndarray:
    return cv2.applyColorMap(np.array([[level]], np.uint8), cv2.COLORMAP_JET)[0, 0]


def test_regions_heatmap_paints_boxes_with_their_scores() -> None:
    regions = [
        Region(2, 3, 4, 2, "spot", "c", score=0.5),
        Region(4, 3, 4, 4, "spot", "c", score=0.8),  # overlaps: the higher score wins
        Region(-2, -2, 3, 3, "edge", "c"),  # no score counts 1; clipped to the image
        Region(50, 50, 5, 5, "away", "c", score=0.9),  # outside: ignored
    ]
    heat = regions_heatmap(regions, (10, 12))
    assert heat.shape == (10, 12)
    assert heat.dtype == np.float32
    expected = np.zeros((10, 12), np.float32)
    expected[3:5, 2:6] = 0.5
    expected[3:7, 4:8] = 0.8
    expected[0:1, 0:1] = 1.0
    np.testing.assert_array_equal(heat, expected)


def test_colorize_heatmap_uses_jet_and_resizes() -> None:
    heat = np.array([[0.0, 1.0], [0.5, np.nan]], np.float32)
    out = colorize_heatmap(heat)
    assert out.shape == (2, 2, 3)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0], jet(0))
    np.testing.assert_array_equal(out[0, 1], jet(255))
    np.testing.assert_array_equal(out[1, 0], jet(128))
    np.testing.assert_array_equal(out[1, 1], jet(0))  # NaN counts as nothing
    big = colorize_heatmap(np.full((4, 4), 0.25, np.float32), shape_hw=(40, 30))
    assert big.shape == (40, 30, 3)
    np.testing.assert_array_equal(big[17, 11], jet(64))


def test_annotate_draws_box_outline_and_leaves_the_rest() -> None:
    image = np.full((60, 80), 100, np.uint8)
    before = image.copy()
    out = annotate(image, [Region(20, 30, 10, 8, "spot", "c", score=0.9)])
    np.testing.assert_array_equal(image, before)  # input untouched
    assert out.shape == (60, 80, 3)
    assert tuple(out[30, 25]) == BOX_BGR  # top edge
    assert tuple(out[37, 25]) == BOX_BGR  # bottom edge (y + h - 1)
    assert tuple(out[34, 20]) == BOX_BGR
    assert tuple(out[34, 29]) == BOX_BGR
    assert tuple(out[34, 25]) == (100, 100, 100)  # inside stays
    assert tuple(out[5, 70]) == (100, 100, 100)  # far away stays
    assert (out[15:30, 20:60] == BOX_BGR).all(axis=2).any()  # the label box above


def test_annotate_blends_heat_only_where_it_is_hot() -> None:
    image = np.full((20, 20, 3), 128, np.uint8)
    heat = np.zeros((10, 10), np.float32)
    heat[:5, :5] = 1.0  # top-left quarter (resized ×2)
    out = annotate(image, [], heatmap=heat, heat_alpha=0.5)
    np.testing.assert_array_equal(out[15:, 15:], image[15:, 15:])
    expected = np.rint(128 * 0.5 + jet(255).astype(np.float32) * 0.5).astype(np.uint8)
    np.testing.assert_array_equal(out[2, 2], expected)


def test_annotate_blend_is_the_per_pixel_mix_within_rounding() -> None:
    """Every pixel is ``image·(1 - a·heat) + jet(heat)·a·heat``, rounded (±1)."""
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    heat = rng.random((90, 120)).astype(np.float32)
    heat[:30] = 0.0
    out = annotate(image, [], heatmap=heat, heat_alpha=0.7)
    levels = np.rint(heat * 255).astype(np.uint8)
    colour = cv2.applyColorMap(levels, cv2.COLORMAP_JET).astype(np.float64)
    wt = (heat.astype(np.float64) * 0.7)[..., None]
    expected = image * (1 - wt) + colour * wt
    assert np.abs(out - expected).max() <= 1.0
    np.testing.assert_array_equal(out[:30], image[:30])  # cold rows: exactly the input


def test_tiny_image_gets_boxes_without_labels() -> None:
    out = annotate(np.zeros((6, 6), np.uint8), [Region(1, 1, 3, 3, "a-long-label", "c")])
    assert tuple(out[1, 2]) == BOX_BGR
    assert tuple(out[5, 5]) == (0, 0, 0)


def test_encoders_round_trip() -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    back = cv2.imdecode(np.frombuffer(encode_png(img), np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(back, img)
    grey = np.full((8, 8), 77, np.uint8)
    jpg = cv2.imdecode(np.frombuffer(encode_jpeg(grey, quality=95), np.uint8), 0)
    assert jpg.shape == (8, 8)
    assert abs(int(jpg[4, 4]) - 77) <= 1
    assert to_bgr(grey).shape == (8, 8, 3)


def test_unusable_heatmaps_count_as_nothing() -> None:
    image = np.full((8, 8, 3), 50, np.uint8)
    for bad in (np.zeros(5, np.float32), np.zeros((0, 4), np.float32), np.array([["a"]])):
        np.testing.assert_array_equal(annotate(image, [], heatmap=bad), image)
        np.testing.assert_array_equal(colorize_heatmap(bad, shape_hw=(8, 8))[3, 3], jet(0))
