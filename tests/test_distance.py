"""Distance: LTU's reading (0 clone, < 1 match, 1..2 similar, 2 unrelated)."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
from _refs_helpers import capture, paint_square, world

from edged.checks.distance import decision_for, distance, distance_prepared, prepare_distance
from edged.core.errors import InputError

SIZE = (320, 240)


@pytest.fixture(scope="module")
def wld() -> np.ndarray:
    return world(SIZE, seed=11, colour=True)


@pytest.fixture(scope="module")
def ref(wld: np.ndarray) -> np.ndarray:
    return capture(wld, noise=1.0, seed=1)


def test_identical_images_are_clones(ref: np.ndarray) -> None:
    d = distance(ref, ref.copy())
    assert d.distance == 0.0
    assert d.decision == "clone"
    assert d.box1_xywh == (0, 0, 320, 240)


def test_reencoded_copy_is_a_clone(ref: np.ndarray) -> None:
    ok, buf = cv2.imencode(".jpg", ref, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    d = distance(ref, cv2.imdecode(buf, cv2.IMREAD_COLOR))
    assert d.decision == "clone", d.to_dict()
    assert d.distance < 0.05


def test_same_part_moved_with_a_defect_is_a_match(wld: np.ndarray, ref: np.ndarray) -> None:
    q = paint_square(
        capture(wld, dx=6, dy=-4, angle_deg=1.5, gain=1.1, noise=2.0, seed=2), 150, 100, 12, -70
    )
    d = distance(ref, q)
    assert d.registered
    assert 0.05 <= d.distance < 1.0
    assert d.decision == "match"
    assert d.correlation is not None
    assert d.correlation > 0.9
    # the matching box on image2 is the part of the query image1 covers: nearly all of it
    assert d.box2_xywh is not None
    assert d.box2_xywh[2] * d.box2_xywh[3] > 0.8 * 320 * 240


def test_unrelated_images_are_two(ref: np.ndarray) -> None:
    noise = np.random.default_rng(0).integers(0, 256, ref.shape, dtype=np.uint8)
    d = distance(ref, cv2.GaussianBlur(noise, (0, 0), 3))
    assert not d.registered
    assert d.distance == 2.0
    assert d.decision == "unrelated"
    assert d.box1_xywh is None
    assert d.box2_xywh is None


def test_different_parts_with_the_same_print_are_similar(ref: np.ndarray) -> None:
    # Another part made the same way carries the same "LOT 42" print at the same place.
    other = capture(world(SIZE, seed=77, colour=True), noise=1.0)
    d = distance(ref, other)
    assert not d.registered
    assert d.decision == "similar"
    assert 1.0 <= d.distance < 2.0
    assert d.inliers >= 8
    # The matching boxes sit on the print (camera y ~ 170..205).
    assert d.box1_xywh is not None
    assert d.box2_xywh is not None
    for _, y, _, h in (d.box1_xywh, d.box2_xywh):
        assert y >= 160
        assert y + h <= 215


def test_changed_scene_is_similar(wld: np.ndarray, ref: np.ndarray) -> None:
    q = capture(wld, dx=3, noise=1.0, seed=3)
    other = capture(world(SIZE, seed=78, colour=True), noise=1.0)
    q[:, 200:] = other[:, 200:]  # 40 % of the scene replaced
    d = distance(ref, q)
    assert d.decision in ("match", "similar")
    assert 0.5 < d.distance < 2.0


@pytest.mark.parametrize(
    ("value", "decision"),
    [
        (0.0, "clone"),
        (0.049, "clone"),
        (0.05, "match"),
        (0.99, "match"),
        (1.0, "similar"),
        (1.8, "similar"),
        (2.0, "unrelated"),
    ],
)
def test_decision_boundaries(value: float, decision: str) -> None:
    assert decision_for(value) == decision


def test_bad_input_is_an_input_error(ref: np.ndarray) -> None:
    with pytest.raises(InputError, match="image2: expected"):
        distance(ref, np.zeros((5, 5), np.float32))


def test_a_prepared_reference_answers_every_query_as_the_one_shot_call(
    wld: np.ndarray, ref: np.ndarray
) -> None:
    # One reference, many queries of every kind (clone, match, unrelated, similar,
    # grey, larger), in both orders: the prepared reference (its ORB features found on
    # first use, then kept) answers each exactly as distance() on the pair.
    noise = np.random.default_rng(0).integers(0, 256, ref.shape, dtype=np.uint8)
    queries = [
        ref.copy(),
        paint_square(
            capture(wld, dx=6, dy=-4, angle_deg=1.5, noise=2.0, seed=2), 150, 100, 12, -70
        ),
        cv2.GaussianBlur(noise, (0, 0), 3),
        capture(world(SIZE, seed=77, colour=True), noise=1.0),
        cv2.cvtColor(ref, cv2.COLOR_BGR2GRAY),
        cv2.resize(ref, (640, 480)),
    ]
    for image1 in (ref, cv2.cvtColor(ref, cv2.COLOR_BGR2GRAY)):
        prepared = prepare_distance(image1)
        for query in queries + queries[::-1]:
            want = distance(image1, query)
            got = distance_prepared(prepared, query)
            assert dataclasses.astuple(got) == dataclasses.astuple(want)
    assert {distance_prepared(prepare_distance(ref), q).decision for q in queries} == {
        "clone",
        "match",
        "unrelated",
        "similar",
    }
