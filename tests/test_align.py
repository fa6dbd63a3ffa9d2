"""Registration: known motions recovered, failures reported, precomputation reusable."""

from __future__ import annotations

import numpy as np
import pytest
from _refs_helpers import capture, world

from edged.checks._scale import shrink, working_size
from edged.checks.align import (
    Motion,
    UnregisteredError,
    align,
    align_prepared,
    original_matrix,
    prepare_alignment,
    prepare_registration,
    register,
)
from edged.core.errors import InputError, RegistrationError

SIZE = (320, 240)
CENTER = ((SIZE[0] - 1) / 2, (SIZE[1] - 1) / 2)


@pytest.fixture(scope="module")
def wld() -> np.ndarray:
    return world(SIZE, seed=3)


@pytest.fixture(scope="module")
def ref(wld: np.ndarray) -> np.ndarray:
    return capture(wld, noise=1.0, seed=10)


def _motion(ref: np.ndarray, query: np.ndarray, model: str = "euclidean") -> tuple[Motion, object]:
    tpl = prepare_registration(ref)
    reg = register(tpl, query, model=model)  # type: ignore[arg-type]
    return Motion.of(reg.ref_to_query, CENTER), reg


@pytest.mark.parametrize(
    ("dx", "dy", "angle"),
    [(3.4, -2.1, 1.3), (-7.6, 5.2, -1.8), (0.35, 0.0, 0.0), (6.0, 7.5, 0.7)],
)
def test_known_shift_and_rotation_recovered(
    wld: np.ndarray, ref: np.ndarray, dx: float, dy: float, angle: float
) -> None:
    query = capture(wld, dx=dx, dy=dy, angle_deg=angle, gain=1.08, offset=-6, noise=2.0, seed=11)
    motion, reg = _motion(ref, query)
    assert reg.ok, reg.reason  # type: ignore[attr-defined]
    assert abs(motion.dx - dx) <= 0.2
    assert abs(motion.dy - dy) <= 0.2
    assert abs(motion.angle_deg - angle) <= 0.05
    assert abs(motion.scale - 1.0) < 1e-9  # euclidean keeps the scale


def test_translation_model_recovers_a_pure_shift(wld: np.ndarray, ref: np.ndarray) -> None:
    query = capture(wld, dx=-4.25, dy=2.75, noise=1.5, seed=12)
    motion, reg = _motion(ref, query, "translation")
    assert reg.ok  # type: ignore[attr-defined]
    assert motion.dx == pytest.approx(-4.25, abs=0.1)
    assert motion.dy == pytest.approx(2.75, abs=0.1)
    assert motion.angle_deg == 0.0


def test_identical_images_register_to_identity(ref: np.ndarray) -> None:
    motion, reg = _motion(ref, ref.copy())
    assert reg.ok  # type: ignore[attr-defined]
    assert reg.correlation == pytest.approx(1.0, abs=1e-4)  # type: ignore[attr-defined]
    assert (motion.dx, motion.dy, motion.angle_deg) == pytest.approx((0, 0, 0), abs=1e-3)


def test_lighting_change_is_reported_as_gain_and_offset(wld: np.ndarray, ref: np.ndarray) -> None:
    query = capture(wld, dx=1.5, gain=1.1, offset=5.0, noise=1.0, seed=13)
    _, reg = _motion(ref, query)
    assert reg.gain == pytest.approx(1.1, abs=0.02)  # type: ignore[attr-defined]
    assert reg.offset == pytest.approx(5.0, abs=2.0)  # type: ignore[attr-defined]


def test_large_rotation_falls_back_to_features(wld: np.ndarray, ref: np.ndarray) -> None:
    query = capture(wld, dx=5.0, dy=-3.0, angle_deg=25.0, noise=1.0, seed=14)
    motion, reg = _motion(ref, query)
    assert reg.ok, reg.reason  # type: ignore[attr-defined]
    assert reg.method == "features"  # type: ignore[attr-defined]
    assert motion.angle_deg == pytest.approx(25.0, abs=0.05)
    assert (motion.dx, motion.dy) == pytest.approx((5.0, -3.0), abs=0.2)


def test_unrelated_images_are_reported_not_aligned(ref: np.ndarray) -> None:
    other = capture(world(SIZE, seed=99), noise=1.0)
    _, reg = _motion(ref, other)
    assert reg.ok is False  # type: ignore[attr-defined]
    assert "correlate" in reg.reason  # type: ignore[attr-defined]
    with pytest.raises(UnregisteredError) as info:
        align(ref, other)
    assert isinstance(info.value, RegistrationError)
    assert info.value.http_status == 422
    assert info.value.registration.ok is False


def test_align_gives_inverse_matrices_in_original_pixels(wld: np.ndarray, ref: np.ndarray) -> None:
    query = capture(wld, dx=2.0, dy=-1.0, angle_deg=0.5, noise=1.0, seed=15)
    al = align(ref, query, model="similarity", resolution=200)  # working size below the image
    assert al.motion.dx == pytest.approx(2.0, abs=0.2)
    assert al.motion.dy == pytest.approx(-1.0, abs=0.2)
    assert al.motion.angle_deg == pytest.approx(0.5, abs=0.05)
    np.testing.assert_allclose(al.matrix1 @ al.matrix2, np.eye(3), atol=1e-9)
    d = al.to_dict()
    assert len(d["matrix1"]) == 3
    assert all(len(row) == 3 for row in d["matrix2"])


def test_scale_geometry_is_exact_across_working_sizes(wld: np.ndarray, ref: np.ndarray) -> None:
    # The same shift measured at two working resolutions agrees in original pixels.
    query = capture(wld, dx=4.0, dy=3.0, noise=1.0, seed=16)
    out = []
    for resolution in (320, 160):
        ws = working_size(SIZE, resolution)
        tpl = prepare_registration(shrink(ref, ws))
        reg = register(tpl, shrink(query, ws))
        m = original_matrix(reg.ref_to_query, SIZE, ws, SIZE, ws)
        out.append(Motion.of(m, CENTER))
    for motion in out:
        assert (motion.dx, motion.dy) == pytest.approx((4.0, 3.0), abs=0.2)


def test_stored_features_rebuild_the_same_template(wld: np.ndarray, ref: np.ndarray) -> None:
    tpl = prepare_registration(ref)
    again = prepare_registration(ref, **tpl.arrays())
    query = capture(wld, dx=-3.0, dy=2.0, angle_deg=-1.0, noise=1.0, seed=17)
    a, b = register(tpl, query), register(again, query)
    np.testing.assert_allclose(a.ref_to_query, b.ref_to_query, atol=1e-9)


def test_unknown_motion_model_is_an_input_error(ref: np.ndarray) -> None:
    with pytest.raises(InputError, match="motion model: expected one of"):
        register(prepare_registration(ref), ref, model="warp")  # type: ignore[arg-type]


def test_a_prepared_image1_answers_every_query_as_the_one_shot_call(
    wld: np.ndarray, ref: np.ndarray
) -> None:
    # One golden image, many queries: preparing image1 once gives, for each query,
    # exactly the matrices and registration of align() on the pair.
    prepared = prepare_alignment(ref, resolution=200)
    queries = [
        capture(wld, dx=2.0, dy=-1.0, angle_deg=0.5, noise=1.0, seed=21),
        capture(wld, dx=-3.5, dy=2.5, angle_deg=-1.0, noise=1.0, seed=22),
        capture(wld, dx=2.0, dy=-1.0, angle_deg=0.5, noise=1.0, seed=21),
    ]
    for query in queries:
        want = align(ref, query, model="similarity", resolution=200)
        got = align_prepared(prepared, query, model="similarity")
        np.testing.assert_array_equal(got.matrix1, want.matrix1)
        np.testing.assert_array_equal(got.matrix2, want.matrix2)
        assert got.to_dict() == want.to_dict()


def test_a_prepared_image1_works_each_image_at_its_own_working_size(
    wld: np.ndarray, ref: np.ndarray
) -> None:
    # image1 smaller than the resolution is worked at its own size; image2 (twice as
    # large) is shrunk to the resolution, not to image1's working size: the matrix
    # maps image1 pixels to image2 pixels, a scale of 2.
    big = np.ascontiguousarray(np.repeat(np.repeat(ref, 2, axis=0), 2, axis=1))
    prepared = prepare_alignment(ref, resolution=400)
    assert prepared.work_wh == SIZE
    got = align_prepared(prepared, big, model="similarity")
    want = align(ref, big, model="similarity", resolution=400)
    np.testing.assert_array_equal(got.matrix1, want.matrix1)
    assert got.motion.scale == pytest.approx(2.0, abs=0.01)


def test_too_small_images_are_named_in_the_error(ref: np.ndarray) -> None:
    tiny = np.zeros((5, 40), np.uint8)
    with pytest.raises(
        InputError, match=r"image1: expected at least 8×8 pixels to align, got 40×5"
    ):
        prepare_alignment(tiny)
    with pytest.raises(
        InputError, match=r"image2: expected at least 8×8 pixels to align, got 40×5"
    ):
        align_prepared(prepare_alignment(ref), tiny)
