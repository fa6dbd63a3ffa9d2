"""Benchmark: what rendering one synthetic frame costs, noise bank vs a fresh draw.

The synthetic source renders every frame in a worker thread of the daemon, so its
CPU is taken from inspection in every benchmark and demo that uses it. This times
``SyntheticLine.render`` (the noise bank: one slice and a saturating add per frame)
against the same frame with its noise drawn afresh by ``cv2.randn`` (how frames
were made before), in interleaved rounds, as CPU time of this process (all threads)
and wall time, with the load average. Run from the repository root::

    .venv/bin/python tools/bench_synthetic.py                 # 2448x2048, ~10 s
    .venv/bin/python tools/bench_synthetic.py --size 1280x1024 --rounds 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np

from edged.config import SyntheticConfig
from edged.sources.synthetic import SyntheticLine


def fresh_draw_render(line: SyntheticLine, seq: int) -> np.ndarray:
    """Frame ``seq`` with its noise drawn afresh (the cost before the noise bank)."""
    bank = line._noise
    line._noise = None  # render without the bank, then add freshly drawn noise
    try:
        image = line.render(seq).image
    finally:
        line._noise = bank
    noise = np.empty(image.shape, np.int16)
    cv2.setRNGSeed(seq)
    cv2.randn(noise, 0, line.cfg.nuisance.noise_sigma)
    out: np.ndarray = cv2.add(image, noise, dtype=cv2.CV_8U)
    return out


def _time(fn: Callable[[int], object], seq: int) -> tuple[float, float]:
    c0, w0 = time.process_time(), time.perf_counter()
    fn(seq)
    return (time.process_time() - c0) * 1000.0, (time.perf_counter() - w0) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="2448x2048", help="WIDTHxHEIGHT")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    t0 = time.process_time()
    line = SyntheticLine(SyntheticConfig(scene="label", width=w, height=h, seed=11))
    setup_ms = (time.process_time() - t0) * 1000.0
    methods: dict[str, Callable[[int], object]] = {
        "noise bank (SyntheticLine.render)": line.render,
        "fresh cv2.randn draw (before)": lambda seq: fresh_draw_render(line, seq),
    }
    cpu: dict[str, list[float]] = {k: [] for k in methods}
    wall: dict[str, list[float]] = {k: [] for k in methods}
    load0 = os.getloadavg()[0]
    for r in range(args.rounds + 1):
        for name, fn in methods.items():
            cpu_ms, wall_ms = _time(fn, r)
            if r:  # round 0 warms up
                cpu[name].append(cpu_ms)
                wall[name].append(wall_ms)
    load1 = os.getloadavg()[0]
    print(
        f"synthetic label frame {w}x{h} BGR, {args.rounds} interleaved rounds, "
        f"{os.cpu_count()} cores, load {load0:.1f}->{load1:.1f} (median [min-max])"
    )
    print(f"line setup (scene + noise bank, once): {setup_ms:.0f} ms CPU")
    for name in methods:
        c, wl = cpu[name], wall[name]
        print(
            f"- {name}: CPU {statistics.median(c):.1f} ms [{min(c):.1f}-{max(c):.1f}], "
            f"wall {statistics.median(wl):.1f} ms [{min(wl):.1f}-{max(wl):.1f}]"
        )
    names = list(methods)
    ratio = statistics.median(cpu[names[1]]) / statistics.median(cpu[names[0]])
    print(f"CPU per frame, before over after: {ratio:.1f}x")


if __name__ == "__main__":
    main()
