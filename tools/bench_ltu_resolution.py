"""What the LTU ``differences`` working size does to detection: 400 px (the LTU
document's default, edged's since issue 14) against 900 px (the document's maximum,
edged's old default), same pairs.

    python tools/bench_ltu_resolution.py            # 1024x768 and 2448x2048 scenes
    python tools/bench_ltu_resolution.py --quick    # a small slice

Scenes and nuisance are tools/_scenes.py's (shift up to ±8 px, rotation ±2°, gain,
offset, noise; half the queries with one defect: spot, scratch, missing patch,
stain). Each pair runs :func:`edged.checks.difference.differences` (one-shot, as the
HTTP service) with the default settings at both working sizes. Reported per image
size: recall on defective pairs, false alarms on good ones, localised (a region
touches the defect), the smallest defect found (its box's shorter side in image
pixels) and the median milliseconds per pair.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edged.checks.align import UnregisteredError
from edged.checks.difference import differences
from tools import _scenes

RESOLUTIONS = (400, 900)


@dataclass
class Tally:
    bad: int = 0
    good: int = 0
    hits: int = 0
    localised: int = 0
    false_alarms: int = 0
    missed_sides: list[int] = field(default_factory=list)
    found_sides: list[int] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)


def _touches(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _one(t: Tally, ref: np.ndarray, q: np.ndarray, d: _scenes.Defect | None, res: int) -> None:
    t0 = time.perf_counter()
    try:
        boxes = [r.box2_xywh for r in differences(ref, q, resolution=res).regions]
    except UnregisteredError:
        boxes = [(0, 0, q.shape[1], q.shape[0])]
    t.ms.append((time.perf_counter() - t0) * 1000.0)
    if d is None:
        t.good += 1
        t.false_alarms += bool(boxes)
        return
    t.bad += 1
    side = min(d.box_xywh[2], d.box_xywh[3])
    if boxes:
        t.hits += 1
    if any(_touches(b, d.box_xywh) for b in boxes):
        t.localised += 1
        t.found_sides.append(side)
    else:
        t.missed_sides.append(side)


def run(sizes: list[tuple[int, int]], worlds: int, queries: int) -> dict[str, Tally]:
    tallies: dict[str, Tally] = {}
    for w, h in sizes:
        for kind_i, kind in enumerate(_scenes.KINDS):
            for colour in (True, False):
                for wi in range(worlds):
                    seed = 7_000 + kind_i * 100 + wi * 10 + int(colour) + w
                    rng = np.random.default_rng(seed)
                    wld = _scenes.world(kind, (w, h), colour=colour, seed=seed)
                    ref = _scenes.capture(wld, _scenes.REFERENCE_POSE, (w, h), rng)
                    for qi in range(queries):
                        defect = None if qi % 2 == 0 else _scenes.DEFECTS[(qi // 2 + wi) % 4]
                        q, _pose, d = _scenes.query(wld, (w, h), rng, defect)
                        for res in RESOLUTIONS:
                            _one(tallies.setdefault(f"{w}x{h}@{res}", Tally()), ref, q, d, res)
            print(f"{w}x{h} {kind} done", file=sys.stderr, flush=True)
    return tallies


def table(tallies: dict[str, Tally]) -> str:
    lines = [
        "| image @ working px | pairs | recall | false alarms | localised "
        "| smallest found px | largest missed px | median ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, t in tallies.items():

        def pct(n: int, d: int) -> str:
            return f"{100 * n / d:.1f} %" if d else "–"

        lines.append(
            f"| {name} | {t.bad + t.good} | {pct(t.hits, t.bad)} | {pct(t.false_alarms, t.good)} "
            f"| {pct(t.localised, t.bad)} | {min(t.found_sides, default='–')} "
            f"| {max(t.missed_sides, default='–')} | {statistics.median(t.ms):.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small slice")
    args = ap.parse_args(argv)
    if args.quick:
        tallies = run([(1024, 768)], worlds=1, queries=4)
    else:
        tallies = run([(1024, 768), (2448, 2048)], worlds=2, queries=6)
    print(table(tallies))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
