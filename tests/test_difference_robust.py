"""Reference inspection on what a real line adds: perspective, uneven light, colour-only
defects, the border a moved part leaves uncovered, and parts no motion model follows."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from _refs_helpers import OVERSAMPLE, capture, world

from edged.checks._lighting import fit_lighting
from edged.checks._lk import apply
from edged.checks.align import UnregisteredError, align
from edged.checks.difference import DifferenceSettings, compare
from edged.checks.prepared import ReferenceParams, prepare_reference

SIZE = (320, 240)
CORNERS = np.array([[0, 0], [319, 0], [319, 239], [0, 239]], float)
# camera pixel -> world pixel of the 2x world (area resize geometry)
TO_WORLD = np.array([[OVERSAMPLE, 0, 0.5], [0, OVERSAMPLE, 0.5], [0, 0, 1]], float)


def _tilted(wld: np.ndarray, corner_shift_px: np.ndarray, noise: float = 1.0) -> tuple:
    """A capture of ``wld`` under the homography moving the image corners by
    ``corner_shift_px`` (4x2, camera pixels); returns (image, true ref->query 3x3)."""
    h_cam = cv2.getPerspectiveTransform(
        CORNERS.astype(np.float32), (CORNERS + corner_shift_px).astype(np.float32)
    )
    h_world = TO_WORLD @ h_cam @ np.linalg.inv(TO_WORLD)
    big = cv2.warpPerspective(
        wld, h_world, (wld.shape[1], wld.shape[0]), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )  # fmt: skip
    img = cv2.resize(big, SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
    img += np.random.default_rng(3).standard_normal(img.shape).astype(np.float32) * noise
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), h_cam


@pytest.fixture(scope="module")
def wld() -> np.ndarray:
    return world(SIZE, seed=11)


@pytest.fixture(scope="module")
def ref(wld: np.ndarray) -> np.ndarray:
    return capture(wld, noise=1.0, seed=5)


TILT = np.array([[3.0, -2.0], [-2.5, 1.5], [2.0, 3.0], [-3.0, -2.5]])


@pytest.mark.parametrize("model", ["homography", "auto"])
def test_a_known_homography_is_recovered_within_a_third_of_a_pixel(
    wld: np.ndarray, ref: np.ndarray, model: str
) -> None:
    q, truth = _tilted(wld, TILT)
    al = align(ref, q, model=model)  # type: ignore[arg-type]
    err = np.abs(apply(al.matrix1, CORNERS) - apply(truth, CORNERS)).max()
    assert err < 0.3, err
    assert al.registration.model == "homography"


def test_auto_stays_a_similarity_when_that_is_enough(wld: np.ndarray, ref: np.ndarray) -> None:
    q = capture(wld, dx=5.2, dy=-3.7, angle_deg=1.8, noise=1.0, seed=9)
    al = align(ref, q, model="auto")
    assert al.registration.model == "similarity"
    assert al.motion.dx == pytest.approx(5.2, abs=0.1)
    assert al.motion.angle_deg == pytest.approx(1.8, abs=0.05)


def test_a_tilted_part_is_no_difference_with_the_default_model(
    wld: np.ndarray, ref: np.ndarray
) -> None:
    q, _ = _tilted(wld, TILT)
    prepared = prepare_reference([ref])
    assert compare(prepared, q).count == 0
    # A similarity cannot follow the tilt: the residual check says so...
    with pytest.raises(UnregisteredError, match="local shifts"):
        compare(prepared, q, DifferenceSettings(motion_model="similarity"))
    # ...where without it the misfit would read as differences along the edges.
    off = DifferenceSettings(motion_model="similarity", max_residual_px=0, contrast_tolerance=0)
    assert compare(prepared, q, off).count > 0


def _gradient(img: np.ndarray, low: float, high: float) -> np.ndarray:
    ramp = np.linspace(low, high, img.shape[1], dtype=np.float32)[None, :]
    return np.clip(np.rint(img.astype(np.float32) * ramp), 0, 255).astype(np.uint8)


def test_a_gain_gradient_without_defect_gives_zero_regions(
    wld: np.ndarray, ref: np.ndarray
) -> None:
    q = _gradient(capture(wld, dx=2.5, dy=1.5, noise=1.0, seed=7), 0.85, 1.15)
    prepared = prepare_reference([ref])
    res = compare(prepared, q)
    assert res.count == 0, [r.to_dict() for r in res.regions]
    assert res.lighting_spread == pytest.approx(0.15, abs=0.03)
    # One gain and offset cannot explain it: the test can fail.
    assert compare(prepared, q, DifferenceSettings(lighting="global")).count > 0
    # ...and a real defect under the gradient is still found.
    q[100:110, 150:160] = np.clip(q[100:110, 150:160].astype(int) - 60, 0, 255)
    found = compare(prepared, q)
    assert found.count == 1
    assert found.regions[0].box2_xywh == pytest.approx((150, 100, 10, 10), abs=2)


def test_the_lighting_fit_recovers_a_known_field() -> None:
    rng = np.random.default_rng(0)
    ref = rng.uniform(40, 200, (120, 160)).astype(np.float32)
    u = np.linspace(-0.5, 0.5, 160, dtype=np.float32)[None, :]
    q = ref * (1.1 + 0.2 * u) + 5.0
    lit = fit_lighting(ref, q, np.full(ref.shape, 255, np.uint8), gain=1.0, offset=0.0)
    assert lit.coefficients[0] == pytest.approx(1.1, abs=1e-3)
    assert lit.coefficients[1] == pytest.approx(0.2, abs=1e-3)
    assert lit.offset == pytest.approx(5.0, abs=0.1)


def test_a_colour_only_disk_is_found_in_colour_mode_and_ignored_in_grey_mode() -> None:
    wld = world(SIZE, seed=4, colour=True)
    ref = capture(wld, noise=1.0, seed=1)
    q = capture(wld, dx=1.5, dy=-1.0, noise=1.0, seed=2)
    disk = np.zeros(SIZE[::-1], np.uint8)
    cv2.circle(disk, (200, 80), 12, 255, -1)
    f = q.astype(np.float32)
    luma = f @ np.array([0.114, 0.587, 0.299], np.float32)
    tint = np.array([80.0, -40.0, 40.0], np.float32)  # blue and red up, green down...
    tint -= float(tint @ np.array([0.114, 0.587, 0.299], np.float32)) / 1.0  # ...same luma
    f[disk > 0] += tint
    q = np.clip(np.rint(f), 0, 255).astype(np.uint8)
    new_luma = q.astype(np.float32) @ np.array([0.114, 0.587, 0.299], np.float32)
    assert float(np.abs(new_luma - luma)[disk > 0].mean()) < 3.0  # brightness unchanged
    prepared = prepare_reference([ref])
    res = compare(prepared, q)
    assert res.count == 1
    assert res.channels == ("L", "ca", "cb")
    assert res.regions[0].box2_xywh == pytest.approx((188, 68, 25, 25), abs=3)
    assert compare(prepared, q, DifferenceSettings(colour="off")).count == 0
    grey_ref = prepare_reference([ref], params=ReferenceParams(colour="off"))
    assert compare(grey_ref, q).channels == ("L",)
    assert compare(grey_ref, q).count == 0


def test_the_border_band_of_a_shifted_query_is_not_inspected(
    wld: np.ndarray, ref: np.ndarray
) -> None:
    # The part moved 10 px right: the reference's right-hand 10 columns are not in the
    # query (the capture fills them with mirrored content, which must not be a defect).
    q = capture(wld, dx=10.0, noise=1.0, seed=8)
    res = compare(prepare_reference([ref]), q)
    assert res.count == 0
    # Inspected: the overlap less a margin of 4 px (interpolation, smoothing, edge
    # tolerance) along the query's borders.
    w, h, m = SIZE[0], SIZE[1], 4
    expected = w * h - (w - 10 - 2 * m) * (h - 2 * m)
    assert res.not_inspected_px == pytest.approx(expected, rel=0.05)
    assert res.compared_px + res.not_inspected_px == SIZE[0] * SIZE[1]
    assert res.to_dict()["not_inspected_px"] == res.not_inspected_px
    unmoved = compare(prepare_reference([ref]), capture(wld, noise=1.0, seed=8))
    assert unmoved.not_inspected_px < res.not_inspected_px


def test_a_part_no_model_follows_is_unregistered_not_defective(
    wld: np.ndarray, ref: np.ndarray
) -> None:
    q = capture(wld, noise=1.0, seed=6)
    h, w = q.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    bend = (3.0 * np.sin(2 * np.pi * yy / h * 1.5)).astype(np.float32)  # a wavy part
    q = cv2.remap(q, xx + bend, yy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    with pytest.raises(UnregisteredError, match="local shifts") as info:
        compare(prepare_reference([ref]), q)
    assert info.value.registration.residual_px > 1.0
    # Switched off, the same pair reads as differences instead.
    res = compare(prepare_reference([ref]), q, DifferenceSettings(max_residual_px=0))
    assert res.count > 0
