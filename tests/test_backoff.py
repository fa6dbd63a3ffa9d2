from __future__ import annotations

import random

import pytest

from edged.core.backoff import Backoff


def test_without_jitter_the_delays_double_up_to_the_cap() -> None:
    b = Backoff(0.5, 5.0)
    assert [b.next_delay_s() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert b.failures == 7


def test_reset_starts_again_from_min() -> None:
    b = Backoff(1.0, 100.0, factor=3.0)
    assert [b.next_delay_s() for _ in range(3)] == [1.0, 3.0, 9.0]
    b.reset()
    assert b.failures == 0
    assert [b.next_delay_s() for _ in range(2)] == [1.0, 3.0]


def test_a_min_above_the_cap_is_capped() -> None:
    b = Backoff(5.0, 1.0)
    assert [b.next_delay_s() for _ in range(3)] == [1.0, 1.0, 1.0]


def test_equal_min_and_max_is_a_constant_interval() -> None:
    b = Backoff(2.0, 2.0)
    assert [b.next_delay_s() for _ in range(4)] == [2.0, 2.0, 2.0, 2.0]


def test_jitter_only_shortens_and_a_seeded_source_repeats_the_sequence() -> None:
    b = Backoff(1.0, 8.0, jitter=0.5, rng=random.Random(42))
    delays = [b.next_delay_s() for _ in range(6)]
    # uniform in [d/2, d] for d = 1, 2, 4, 8, 8, 8; random.Random(42) draws these fractions:
    draws = random.Random(42)
    expected = [d * (1 - 0.5 * draws.random()) for d in (1.0, 2.0, 4.0, 8.0, 8.0, 8.0)]
    assert delays == expected
    assert delays[0] == pytest.approx(1 - 0.5 * 0.6394267984578837)
    for d, got in zip((1.0, 2.0, 4.0, 8.0, 8.0, 8.0), delays, strict=True):
        assert d / 2 <= got <= d
    again = Backoff(1.0, 8.0, jitter=0.5, rng=random.Random(42))
    assert [again.next_delay_s() for _ in range(6)] == delays


def test_full_jitter_never_exceeds_the_cap() -> None:
    b = Backoff(0.1, 0.4, jitter=1.0, rng=random.Random(1))
    assert all(0.0 <= b.next_delay_s() <= 0.4 for _ in range(200))


def test_fresh_counts_from_zero_with_the_same_settings() -> None:
    b = Backoff(1.0, 4.0)
    b.next_delay_s()
    b.next_delay_s()
    f = b.fresh()
    assert f.failures == 0
    assert (f.min_s, f.max_s, f.factor, f.jitter) == (1.0, 4.0, 2.0, 0.0)
    assert f.next_delay_s() == 1.0
    assert b.next_delay_s() == 4.0  # the original keeps its own count


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"min_s": 0.0, "max_s": 1.0}, "min_s > 0"),
        ({"min_s": 1.0, "max_s": -1.0}, "max_s > 0"),
        ({"min_s": 1.0, "max_s": 2.0, "factor": 0.5}, "factor >= 1"),
        ({"min_s": 1.0, "max_s": 2.0, "jitter": 1.5}, "jitter in [0, 1]"),
    ],
)
def test_bad_settings_say_what_was_expected(kwargs: dict[str, float], text: str) -> None:
    with pytest.raises(ValueError, match=text.replace("[", r"\[").replace("]", r"\]")):
        Backoff(**kwargs)
