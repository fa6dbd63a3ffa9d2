"""contours and edges on drawn shapes with known outlines."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from _checks_helpers import decode_png_b64, shapes_scene

from edged.checks.contours import find_contours
from edged.checks.edges import detect_edges
from edged.core.errors import InputError

# --------------------------------------------------------------------------- contours


def test_contours_are_sorted_largest_first_with_their_boxes() -> None:
    r = find_contours(shapes_scene())
    assert r.count == 3
    assert r.total == 3
    disk, rect, square = r.contours
    assert disk.area_px > rect.area_px > square.area_px
    # rectangles come back exactly; the 5x5 smoothing trims the disk's 1-pixel tips
    assert rect.bounding_box.to_dict() == {"x": 50, "y": 40, "width": 100, "height": 60}
    assert square.bounding_box.to_dict() == {"x": 10, "y": 250, "width": 20, "height": 20}
    b = disk.bounding_box
    assert abs(b.x - 250) <= 1
    assert abs(b.y - 150) <= 1
    assert abs(b.width - 101) <= 2
    assert abs(b.height - 101) <= 2
    assert rect.area_px == pytest.approx(99 * 59, abs=4)  # polygon through pixel centres
    assert disk.area_px == pytest.approx(np.pi * 50**2, rel=0.03)
    assert rect.perimeter_px == pytest.approx(2 * (99 + 59), abs=4)


def test_relative_vertices_are_fractions_of_the_image_size() -> None:
    r = find_contours(shapes_scene())
    rect = r.contours[1]
    pts = np.array(rect.relative_vertices) * [400, 300]
    assert len(pts) == 4
    corners = np.array([[50, 40], [50, 99], [149, 99], [149, 40]], np.float64)
    for corner in corners:  # every corner has a vertex within 1.5 px
        assert np.min(np.hypot(*(pts - corner).T)) <= 1.5
    disk = r.contours[0]
    d = np.array(disk.relative_vertices) * [400, 300]
    radii = np.hypot(d[:, 0] - 300, d[:, 1] - 200)
    assert len(d) >= 8
    assert np.all(np.abs(radii - 50) <= 1.5)


def test_max_contours_and_min_area_filter() -> None:
    img = shapes_scene()
    two = find_contours(img, max_contours=2)
    assert two.count == 2
    assert two.total == 3
    big = find_contours(img, min_area_px=1000)
    assert big.count == 2
    assert big.total == 2
    d = two.to_dict()
    assert d["count"] == 2
    assert d["total"] == 3
    assert len(d["contours"]) == 2
    assert set(d["contours"][0]) == {"boundingBox", "relativeVertices", "area_px", "perimeter_px"}


def test_s_channel_of_hsv_separates_colour_from_grey() -> None:
    # A saturated red patch and a grey patch of the same brightness on grey:
    # only S sees the red one.
    img = np.full((200, 300, 3), 128, np.uint8)
    img[50:150, 30:110] = (0, 0, 255)
    img[50:150, 180:260] = (200, 200, 200)
    s = find_contours(img, color_space="HSV", channel="S")
    assert s.channel == "S"
    assert s.count == 1
    assert s.contours[0].bounding_box.to_dict() == {"x": 30, "y": 50, "width": 80, "height": 100}
    v = find_contours(img, color_space="HSV", channel="V")
    assert v.count == 2


def test_fixed_level_and_polarity() -> None:
    img = np.full((100, 100), 200, np.uint8)
    img[20:40, 20:40] = 50
    dark = find_contours(img, color_space="G", level=120, polarity="dark")
    assert dark.count == 1
    assert dark.contours[0].bounding_box.to_dict() == {"x": 20, "y": 20, "width": 20, "height": 20}
    assert dark.level == 120.0


def test_full_frame_contours_map_back_within_the_work_factor() -> None:
    img = np.zeros((2048, 2448), np.uint8)
    cv2.rectangle(img, (301, 401), (1300, 900), 255, -1)  # 1000 x 500
    r = find_contours(img)
    assert r.work_factor == 2
    b = r.contours[0].bounding_box
    assert abs(b.x - 301) <= 2
    assert abs(b.y - 401) <= 2
    assert abs(b.width - 1000) <= 2
    assert abs(b.height - 500) <= 2
    exact = find_contours(img, max_side_px=0)
    assert exact.contours[0].bounding_box.to_dict() == {
        "x": 301, "y": 401, "width": 1000, "height": 500,
    }  # fmt: skip


def test_contour_options_out_of_range_are_refused() -> None:
    img = shapes_scene()
    with pytest.raises(ValueError, match=r"level: expected 0\.\.255"):
        find_contours(img, level=300)
    with pytest.raises(ValueError, match="max_contours >= 1"):
        find_contours(img, max_contours=0)
    with pytest.raises(ValueError, match="channel for color_space HSV"):
        find_contours(img, channel="Q")
    with pytest.raises(InputError):
        find_contours(np.zeros((5, 5, 2), np.uint8))


# --------------------------------------------------------------------------- edges


def _rectangle() -> np.ndarray:
    img = np.zeros((100, 100), np.uint8)
    cv2.rectangle(img, (20, 30), (79, 59), 200, -1)  # x 20..79, y 30..59
    return img


def test_edges_of_a_drawn_rectangle_trace_its_outline() -> None:
    e = detect_edges(_rectangle())
    assert set(np.unique(e.edges)) == {0, 255}
    # Canny marks one pixel per step: x = 19 and 79, y = 29 and 59; it cuts each
    # corner diagonally (one pixel fewer per corner).
    outline = np.zeros((100, 100), np.uint8)
    cv2.rectangle(outline, (19, 29), (79, 59), 1, 1)
    assert e.edge_px == int(outline.sum()) - 4 == 176
    near = cv2.dilate(outline, np.ones((3, 3), np.uint8))
    assert np.all(near[e.edges == 255] == 1)
    corners = np.zeros_like(outline)
    for x, y in [(19, 29), (79, 29), (19, 59), (79, 59)]:
        cv2.rectangle(corners, (x - 1, y - 1), (x + 1, y + 1), 1, -1)
    assert np.all(e.edges[(outline == 1) & (corners == 0)] == 255)
    assert e.edge_fraction == pytest.approx(176 / 10_000)


@pytest.mark.parametrize("size_hw", [(2, 3), (127, 50), (129, 61), (300, 257), (2048, 2448)])
def test_edges_equal_opencv_canny_exactly(size_hw: tuple[int, int]) -> None:
    rng = np.random.default_rng(9)
    img = cv2.GaussianBlur(rng.integers(0, 256, size_hw, dtype=np.uint8), (0, 0), 1.5)
    for lo, hi in [(20, 60), (100, 200), (0, 0), (500, 500)]:
        e = detect_edges(img, threshold_min=lo, threshold_max=hi)
        assert np.array_equal(e.edges, cv2.Canny(img, lo, hi)), (lo, hi)


def test_edge_thickness_widens_the_edges() -> None:
    thin = detect_edges(_rectangle())
    thick = detect_edges(_rectangle(), edge_thickness=3)
    assert thick.edge_px > 2.5 * thin.edge_px
    assert np.all(thick.edges[thin.edges == 255] == 255)


def test_thresholds_decide_which_steps_are_edges() -> None:
    img = np.zeros((60, 60), np.uint8)
    img[:, 30:] = 20  # a 20-level step: gradient magnitude 80 (3x3 Sobel)
    assert detect_edges(img, threshold_min=100, threshold_max=200).edge_px == 0
    assert detect_edges(img, threshold_min=40, threshold_max=60).edge_px == 60


def test_edges_to_dict_has_the_png_and_fraction() -> None:
    e = detect_edges(cv2.cvtColor(_rectangle(), cv2.COLOR_GRAY2BGR))
    d = e.to_dict()
    assert np.array_equal(decode_png_b64(d["edges"]) > 0, e.edges == 255)
    assert d["edge_px"] == 176
    assert d["resolution_wh"] == [100, 100]
    assert d["edge_fraction"] == pytest.approx(0.0176)
    assert e.to_dict(images=False)["edges"] is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold_min": -1},
        {"threshold_max": 501},
        {"threshold_min": 300, "threshold_max": 200},
        {"edge_thickness": 0},
        {"edge_thickness": 32},
    ],
)
def test_edge_options_out_of_range_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="expected"):
        detect_edges(_rectangle(), **kwargs)  # type: ignore[arg-type]
