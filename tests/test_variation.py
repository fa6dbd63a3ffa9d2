"""Variation model: exact statistics and limits on hand-built images."""

from __future__ import annotations

import numpy as np
import pytest

from edged.checks.variation import Limits, VariationTrainer, excess, train
from edged.core.errors import InputError


def _const(v: float, shape: tuple[int, int] = (8, 10)) -> np.ndarray:
    return np.full(shape, v, np.uint8)


def test_mean_and_std_of_three_images_are_exact() -> None:
    model = train([_const(100), _const(110), _const(120)])
    assert model.n == 3
    np.testing.assert_allclose(model.mean, 110.0)
    np.testing.assert_allclose(model.std, 10.0, rtol=1e-6)  # sample std (n - 1)


@pytest.mark.parametrize(
    ("abs_t", "var_t", "bright", "dark"),
    [(5, 2, 130, 90), (25, 2, 135, 85), (5, 0, 115, 105), (0, 3.5, 145, 75)],
)
def test_limits_are_mean_plus_minus_max_of_abs_and_var(
    abs_t: float, var_t: float, bright: int, dark: int
) -> None:
    model = train([_const(100), _const(110), _const(120)])
    lim = model.limits(abs_threshold=abs_t, var_threshold=var_t, edge_tolerance_px=0)
    assert lim.bright.dtype == np.uint8
    assert np.all(lim.bright == bright)
    assert np.all(lim.dark == dark)


def test_single_image_model_has_zero_std_and_abs_limits() -> None:
    model = train([_const(50)])
    assert model.n == 1
    assert np.all(model.std == 0)
    lim = model.limits(abs_threshold=20, var_threshold=3, edge_tolerance_px=0)
    assert np.all(lim.bright == 70)
    assert np.all(lim.dark == 30)


def test_limits_saturate_at_the_ends_of_the_range() -> None:
    lim = train([_const(250), _const(5)]).limits(
        abs_threshold=30, var_threshold=0, edge_tolerance_px=0
    )
    # mean 127.5 -> ceil/floor keep integer queries exact
    assert int(lim.bright[0, 0]) == 157
    assert int(lim.dark[0, 0]) == 98
    high = train([_const(240)]).limits(abs_threshold=40, var_threshold=0, edge_tolerance_px=0)
    assert np.all(high.bright == 255)
    assert np.all(high.dark == 200)


def test_edge_tolerance_uses_local_extremes_of_the_mean() -> None:
    step = np.zeros((6, 8), np.uint8)
    step[:, 4:] = 200
    model = train([step])
    exact = model.limits(abs_threshold=10, var_threshold=0, edge_tolerance_px=0)
    tolerant = model.limits(abs_threshold=10, var_threshold=0, edge_tolerance_px=1)
    # Column 3 is dark but next to the bright edge: a one-pixel shift must not be a defect.
    assert exact.bright[2, 3] == 10
    assert tolerant.bright[2, 3] == 210
    assert tolerant.dark[2, 4] == 0  # and the bright side tolerates the dark neighbour
    assert tolerant.bright[2, 1] == 10  # away from the edge nothing changes


def test_incremental_training_equals_batch_statistics() -> None:
    rng = np.random.default_rng(5)
    images = [rng.integers(0, 256, (12, 16), dtype=np.uint8) for _ in range(9)]
    trainer = VariationTrainer((12, 16))
    for img in images:
        trainer.add(img)
    model = trainer.model()
    stack = np.stack(images).astype(np.float64)
    np.testing.assert_allclose(model.mean, stack.mean(0), atol=1e-3)
    np.testing.assert_allclose(model.std, stack.std(0, ddof=1), atol=1e-3)


def test_validity_masks_count_only_covered_pixels() -> None:
    valid = np.ones((8, 10), np.uint8)
    valid[0, 0] = 0
    model = train([_const(100), _const(110), _const(200)], valid=[None, None, valid])  # type: ignore[list-item]
    assert model.count[0, 0] == 2
    assert model.mean[0, 0] == pytest.approx(105.0)
    assert model.mean[1, 1] == pytest.approx(410 / 3, rel=1e-5)


def test_robust_model_ignores_an_outlier_image() -> None:
    images = [_const(v) for v in (100, 102, 98, 101, 99, 250)]
    robust = train(images, robust=True)
    assert robust.robust
    np.testing.assert_allclose(robust.mean, 100.5)  # median of the six
    # MAD of |x - 100.5| = median(0.5, 1.5, 2.5, 0.5, 1.5, 149.5) = 1.5
    np.testing.assert_allclose(robust.std, 1.5 * 1.4826, rtol=1e-5)
    plain = train(images)
    assert float(plain.mean[0, 0]) > 120  # the mean is dragged by the outlier


def test_excess_is_how_far_beyond_the_limits() -> None:
    lim = Limits(dark=_const(90), bright=_const(130))
    img = _const(110)
    img[1, 1], img[2, 2], img[3, 3] = 140, 75, 130
    bright, dark = excess(lim, img)
    assert bright[1, 1] == 10
    assert dark[2, 2] == 15
    assert bright[3, 3] == 0  # on the limit is good
    assert int(bright.sum()) == 10
    assert int(dark.sum()) == 15


def test_training_rejects_wrong_shapes_and_empty_sets() -> None:
    trainer = VariationTrainer((4, 4))
    with pytest.raises(InputError, match=r"expected shape \(4, 4\), got \(5, 4\)"):
        trainer.add(np.zeros((5, 4), np.uint8))
    with pytest.raises(InputError, match="at least one training image"):
        trainer.model()
    with pytest.raises(InputError, match="abs_threshold >= 0"):
        train([_const(1)]).limits(abs_threshold=-1, var_threshold=0)
