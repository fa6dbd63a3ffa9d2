"""The shortcuts of preparing a reference give what the long way gave (issue 21).

A single image's model is built without a trainer, the reference's ORB features are
detected only when a query needs them, and a pyramid level's normal matrices only for
the motion models used: each is checked against the long way here; the end-to-end
answers are pinned in ``test_difference_golden.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from _refs_helpers import capture, world

from edged.checks._coarse import orb
from edged.checks._lk import SLICES, make_level, pyramid
from edged.checks.align import prepare_registration, register
from edged.checks.difference import compare
from edged.checks.prepared import prepare_reference
from edged.checks.variation import VariationTrainer, single


@pytest.fixture(scope="module")
def ref() -> np.ndarray:
    return capture(world((320, 240), seed=7), noise=1.0, seed=20)


@pytest.mark.parametrize("robust", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_single_image_model_is_what_the_trainer_gives(
    ref: np.ndarray, robust: bool, dtype: type
) -> None:
    image = ref.astype(dtype)
    trainer = VariationTrainer(image.shape, robust=robust)
    trainer.add(image)
    want, got = trainer.model(), single(image)
    for name in ("mean", "std", "count"):
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_array_equal(a, b)
    assert (got.n, got.robust) == (want.n, want.robust)
    assert not np.shares_memory(got.mean, image)


def test_reference_features_are_detected_only_when_a_query_needs_them(
    ref: np.ndarray,
) -> None:
    prepared = prepare_reference([ref])
    feats = prepared.registration.features
    assert feats.keypoints_xy is None  # not detected while preparing
    res = compare(prepared, capture(world((320, 240), seed=7), dx=3, dy=-2, seed=5))
    assert res.registration.method == "phase"
    assert feats.keypoints_xy is None  # phase correlation sufficed
    tpl = prepare_registration(ref)
    want_kp, want_des = orb(pyramid(ref, tpl.feature_level)[tpl.feature_level], 0, None)
    np.testing.assert_array_equal(tpl.keypoints_xy, want_kp)
    np.testing.assert_array_equal(tpl.descriptors, want_des)
    assert tpl.features.image is None  # the level image is let go once detected


def test_features_use_the_image_as_it_was_when_prepared(ref: np.ndarray) -> None:
    image = ref.copy()
    tpl = prepare_registration(image)
    image[:] = 0  # a caller reusing its buffer must not change the reference
    assert len(tpl.keypoints_xy) == len(orb(ref, 0, None)[0]) > 0


def test_a_turned_query_detects_the_features_and_registers(ref: np.ndarray) -> None:
    tpl = prepare_registration(ref)
    q = capture(world((320, 240), seed=7), dx=9, dy=-6, angle_deg=60, noise=2, seed=21)
    reg = register(tpl, q, model="similarity")
    assert reg.ok
    assert reg.method == "features"
    assert tpl.features.keypoints_xy is not None


def test_level_normal_matrices_are_the_full_products_over_usable_pixels(ref: np.ndarray) -> None:
    roi = np.zeros_like(ref)
    roi[20:200, 30:300] = 255
    lvl = make_level(0, ref, roi)
    d = lvl.design.astype(np.float64) * lvl.usable.ravel().astype(np.float64)
    full = d @ lvl.design.astype(np.float64).T
    for model, sl in SLICES.items():
        np.testing.assert_allclose(lvl.hessian(model), full[sl, sl], rtol=1e-12, atol=1e-9)
        assert lvl.hessian(model) is lvl.hessian(model)  # computed once
