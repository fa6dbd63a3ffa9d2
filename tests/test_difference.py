"""Differences: drawn defects found where they are, nuisance ignored, failures reported."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from _refs_helpers import capture, paint_square, to_query, world

from edged.checks.align import UnregisteredError
from edged.checks.difference import DifferenceSettings, compare, differences
from edged.checks.prepared import PreparedReference, ReferenceParams, prepare_reference
from edged.core.errors import InputError

SIZE = (320, 240)
POSE = {"dx": 4.3, "dy": -3.2, "angle_deg": 1.4}


@pytest.fixture(scope="module")
def wld() -> np.ndarray:
    return world(SIZE, seed=7)


@pytest.fixture(scope="module")
def ref(wld: np.ndarray) -> np.ndarray:
    return capture(wld, noise=1.0, seed=20)


@pytest.fixture(scope="module")
def prepared(ref: np.ndarray) -> PreparedReference:
    return prepare_reference([ref])


def test_identical_images_have_no_regions_and_score_zero(
    prepared: PreparedReference, ref: np.ndarray
) -> None:
    res = compare(prepared, ref.copy())
    assert res.count == 0
    assert res.regions == ()
    assert res.score == 0.0
    assert res.area_px == 0
    assert res.model == "single"
    assert res.registration.ok


def test_nuisance_alone_is_not_a_difference(prepared: PreparedReference, wld: np.ndarray) -> None:
    for i, (gain, offset, noise) in enumerate([(1.12, -8, 3.0), (0.88, 8, 1.0), (1.05, 3, 2.0)]):
        q = capture(wld, **POSE, gain=gain, offset=offset, noise=noise, seed=30 + i)
        res = compare(prepared, q)
        assert res.count == 0, [r.to_dict() for r in res.regions]
        assert res.score == 0.0


def test_drawn_defect_is_found_with_its_box(prepared: PreparedReference, wld: np.ndarray) -> None:
    q = capture(wld, **POSE, gain=1.06, offset=-4, noise=2.0, seed=40)
    q = paint_square(q, 200, 60, 10, -70)  # a dark 10x10 spot, in query pixels
    res = compare(prepared, q)
    assert res.count == 1
    (region,) = res.regions
    x, y, w, h = region.box2_xywh
    assert (x, y) == pytest.approx((200, 60), abs=1)
    assert (w, h) == pytest.approx((10, 10), abs=2)
    assert region.polarity == "dark"
    assert 40 <= region.contrast <= 70
    assert 80 <= region.area_px <= 130
    # On image1 (the reference) the box sits where the spot's centre maps back to.
    cx, cy = region.circle1_xyr[:2]
    back = to_query(cx, cy, SIZE, **POSE)
    assert back == pytest.approx((205, 65), abs=1.5)
    assert res.motion.dx == pytest.approx(POSE["dx"], abs=0.2)
    assert res.motion.angle_deg == pytest.approx(POSE["angle_deg"], abs=0.05)
    assert res.score == pytest.approx(100.0 * region.area_px / res.compared_px, rel=0.05)


def test_bright_scratch_is_found(prepared: PreparedReference, wld: np.ndarray) -> None:
    q = capture(wld, **POSE, noise=2.0, seed=41)
    line = np.zeros_like(q)
    cv2.line(line, (60, 150), (130, 175), 60, 2, cv2.LINE_AA)
    q = cv2.add(q, line)
    res = compare(prepared, q)
    assert res.count >= 1
    x, y, w, h = res.regions[0].box2_xywh
    assert 55 <= x <= 64
    assert 145 <= y <= 154
    assert 62 <= w <= 80
    assert 20 <= h <= 34
    assert res.regions[0].polarity == "bright"


def test_roi_excludes_a_region(ref: np.ndarray, wld: np.ndarray) -> None:
    roi = np.full(ref.shape, 255, np.uint8)
    roi[40:110, 170:260] = 0  # the area around the spot is not inspected
    prep = prepare_reference([ref], roi=roi)
    q = paint_square(capture(wld, noise=1.0, seed=42), 200, 60, 10, -70)
    assert compare(prep, q).count == 0
    assert compare(prepare_reference([ref]), q).count == 1


def test_margin_ignores_the_border(prepared: PreparedReference, ref: np.ndarray) -> None:
    q = paint_square(ref, 2, 100, 8, 80)
    assert compare(prepared, q).count == 1
    assert compare(prepared, q, DifferenceSettings(margin_px=12)).count == 0


def test_presets_trade_detail_for_robustness(prepared: PreparedReference, ref: np.ndarray) -> None:
    q = paint_square(ref, 150, 150, 5, 30)  # small and faint
    assert compare(prepared, q, DifferenceSettings.preset(1)).count == 1
    assert compare(prepared, q, DifferenceSettings.preset(5)).count == 0


def test_unregistered_query_is_an_error_not_identity(prepared: PreparedReference) -> None:
    other = capture(world(SIZE, seed=123), noise=1.0)
    with pytest.raises(UnregisteredError, match="does not register") as info:
        compare(prepared, other)
    assert info.value.registration.ok is False


def test_min_area_px_is_in_image1_pixels(ref: np.ndarray) -> None:
    big = cv2.resize(ref, (640, 480), interpolation=cv2.INTER_LINEAR)
    prep = prepare_reference([big], params=ReferenceParams(resolution=320))
    q = paint_square(big, 300, 300, 12, 80)  # 144 px in image1, 36 working px
    assert compare(prep, q, DifferenceSettings(min_area_px=100)).count == 1
    assert compare(prep, q, DifferenceSettings(min_area_px=200)).count == 0
    region = compare(prep, q).regions[0]
    assert region.box1_xywh == pytest.approx((300, 300, 12, 12), abs=2)
    assert region.area_px == pytest.approx(144, abs=40)


def test_variation_model_tolerates_what_good_parts_do(wld: np.ndarray) -> None:
    goods = []
    for i in range(4):
        img = capture(wld, dx=i * 0.7, dy=-i * 0.5, noise=1.5, seed=50 + i)
        goods.append(paint_square(img, 40, 40, 20, 30 * i))  # a lamp that is sometimes on
    single = prepare_reference(goods[:1])
    varied = prepare_reference(goods)
    assert varied.kind == "variation"
    assert varied.n_images == 4
    q = paint_square(capture(wld, dx=2.0, noise=1.5, seed=60), 42, 40, 20, 60)
    assert compare(single, q).count >= 1
    res = compare(varied, q)
    assert res.count == 0
    assert res.model == "variation"
    # ...while a real defect elsewhere is still found.
    assert compare(varied, paint_square(q, 200, 150, 10, -70)).count == 1


def test_hue_behaviour_sees_an_isoluminant_colour_change() -> None:
    wld = world(SIZE, seed=8, colour=True)
    ref = capture(wld, noise=1.0, seed=70)
    q = ref.copy()
    patch = q[100:120, 100:120].astype(np.float32)
    # Swap towards red and away from blue/green keeping the luma (0.114 B + 0.587 G + 0.299 R).
    patch[..., 2] += 60
    patch[..., 1] -= 60 * 0.299 / 0.587
    q[100:120, 100:120] = np.clip(patch, 0, 255).astype(np.uint8)
    luma_only = prepare_reference([ref], params=ReferenceParams(colour="off"))
    assert compare(luma_only, q).count == 0
    # The default (colour auto) compares the chroma of colour references too.
    assert compare(prepare_reference([ref]), q).count == 1
    assert compare(prepare_reference([ref]), q, DifferenceSettings(colour="off")).count == 0
    colour = prepare_reference([ref], params=ReferenceParams(behaviors=("L", "H")))
    res = compare(colour, q, DifferenceSettings(behaviors=("L", "H")))
    assert res.count == 1
    assert res.regions[0].box2_xywh == pytest.approx((100, 100, 20, 20), abs=2)


def test_settings_and_behaviours_are_validated(
    prepared: PreparedReference, ref: np.ndarray
) -> None:
    with pytest.raises(InputError, match=r"threshold: expected a number in \[1, 255\], got 0"):
        DifferenceSettings(threshold=0)
    with pytest.raises(InputError, match=r"preset: expected an integer 1\.\.5, got 7"):
        DifferenceSettings.preset(7)
    with pytest.raises(InputError, match="behaviors: expected letters from"):
        DifferenceSettings(behaviors=("X",))
    with pytest.raises(InputError, match="prepare it again"):
        compare(prepared, ref, DifferenceSettings(behaviors=("S",)))
    with pytest.raises(InputError, match="expected BGR reference images, got grey"):
        prepare_reference([ref], params=ReferenceParams(behaviors=("H",)))
    with pytest.raises(InputError, match=r"expected \(H, W\) uint8 grey"):
        compare(prepared, ref.astype(np.float32))


def test_differences_one_shot_accepts_different_sizes(ref: np.ndarray) -> None:
    bigger = cv2.resize(ref, (480, 360), interpolation=cv2.INTER_AREA)
    q = paint_square(bigger, 300, 90, 15, -80)
    res = differences(ref, q, settings=DifferenceSettings(motion_model="similarity"))
    assert res.count == 1
    assert res.motion.scale == pytest.approx(1.5, abs=0.01)
    assert res.regions[0].box2_xywh == pytest.approx((300, 90, 15, 15), abs=2)
    assert res.regions[0].box1_xywh == pytest.approx((200, 60, 10, 10), abs=2)
