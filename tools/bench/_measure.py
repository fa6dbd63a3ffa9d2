"""Timing: repeated calls, medians and tail percentiles, interleaved rounds.

The machine may be shared, so every figure is a median of several calls and every
stage is compared with a floor measured in the same run. :func:`interleaved` runs
one call of each item per round, so a burst of load elsewhere hits all items alike
instead of whichever happened to be running, and shuffles the order per round.
"""

from __future__ import annotations

import gc
import math
import random
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Samples:
    """Wall-clock durations of repeated calls, in milliseconds."""

    ms: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.ms)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.ms)

    @property
    def p99_ms(self) -> float:
        return percentile(self.ms, 99.0)

    @property
    def min_ms(self) -> float:
        return min(self.ms)

    @property
    def max_ms(self) -> float:
        return max(self.ms)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation between order statistics."""
    if not values:
        msg = "percentile of no values"
        raise ValueError(msg)
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def time_call(fn: Callable[[], object], *, repeat: int, warmup: int = 1) -> Samples:
    """Call ``fn`` ``warmup`` times untimed, then ``repeat`` times timed."""
    for _ in range(warmup):
        fn()
    out: list[float] = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / 1e6)
    return Samples(tuple(out))


def interleaved(
    items: Mapping[str, Callable[[], object]], *, rounds: int, warmup: int = 1
) -> dict[str, Samples]:
    """Time every item once per round, ``rounds`` times.

    Each round runs the items in a fresh (seeded) order, so what depends on the
    neighbour — being first after a pause (cold caches, sleeping OpenCV threads),
    reusing or faulting in the memory the previous item freed — is shared by all
    items. Garbage collection is held off while timing and run between rounds.
    """
    names = list(items)
    shuffler = random.Random(len(names))
    for _ in range(warmup):
        for fn in items.values():
            fn()
    out: dict[str, list[float]] = {name: [] for name in names}
    was_enabled = gc.isenabled()
    try:
        for r in range(rounds):
            gc.collect()
            gc.disable()
            order = names[:]
            if r:
                shuffler.shuffle(order)
            for name in order:
                fn = items[name]
                t0 = time.perf_counter_ns()
                fn()
                out[name].append((time.perf_counter_ns() - t0) / 1e6)
            gc.enable()
    finally:
        if was_enabled:
            gc.enable()
    return {name: Samples(tuple(v)) for name, v in out.items()}
