"""Benchmark the image checks on full camera frames; print a Markdown table.

Each case runs ``--repeats`` times on the same frame after one warm-up call, the
cases interleaved round by round; the table gives the median in milliseconds
next to a floor measured in the same rounds (``cv2.mean`` over the frame: one
read of every pixel) and the ratio to it, so figures from different machines
compare, and the median CPU time of the process (all threads; with OpenCV's
threads on an idle machine the wall time is at most that). The machine's load
average is printed with the table: on a shared machine both figures grow with
it. Frames come from edged's synthetic line (a printed label on a part, BGR),
at each ``--sizes`` resolution.

    python tools/bench_checks.py                       # 2448x2048 and 1280x1024
    python tools/bench_checks.py --sizes 2448x2048 --repeats 31 --json out.json
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edged.checks.contours import find_contours
from edged.checks.edges import detect_edges
from edged.checks.heatmap import interest_heatmap
from edged.checks.mask import object_mask
from edged.checks.palette import color_palette
from edged.checks.quality import image_quality
from edged.config import NuisanceConfig, SyntheticConfig
from edged.sources.synthetic import SyntheticLine

Case = tuple[str, Callable[[np.ndarray], object]]

CASES: list[Case] = [
    ("imageQuality (no masks)", lambda im: image_quality(im)),
    ("imageQuality + masks as PNG", lambda im: image_quality(im, masks=True).to_dict()),
    ("objectMask OTSU_BIN_THRESHOLD", lambda im: object_mask(im)),
    ("objectMask BINNING", lambda im: object_mask(im, algorithm="BINNING")),
    ("objectMask SOBEL", lambda im: object_mask(im, algorithm="SOBEL")),
    ("objectMask LAB auto channel", lambda im: object_mask(im, color_space="LAB")),
    ("objectMask full resolution", lambda im: object_mask(im, max_side_px=0)),
    ("objectMask + mask as PNG", lambda im: object_mask(im).to_dict()),
    ("contours (HSV V)", lambda im: find_contours(im)),
    ("contours full resolution", lambda im: find_contours(im, max_side_px=0)),
    ("edges (Canny 100/200)", lambda im: detect_edges(im)),
    ("edges thickness 3", lambda im: detect_edges(im, edge_thickness=3)),
    ("edges + edge PNG", lambda im: detect_edges(im).to_dict()),
    ("colorPalette (5)", lambda im: color_palette(im)),
    ("heatMap contrast", lambda im: interest_heatmap(im)),
    ("heatMap keypoints", lambda im: interest_heatmap(im, method="keypoints")),
    ("heatMap + PNG", lambda im: interest_heatmap(im).to_dict()),
]


def frame(width: int, height: int) -> np.ndarray:
    cfg = SyntheticConfig(
        scene="label", width=width, height=height, seed=3, nuisance=NuisanceConfig()
    )
    return SyntheticLine(cfg).render(0, defect=True).image


def medians_ms(calls: list[Callable[[], object]], repeats: int) -> list[tuple[float, float]]:
    """Median wall-clock and process-CPU milliseconds of each call.

    Calls are interleaved (one round runs each once) so that load from other
    processes hits every case alike. CPU time counts every thread of this process
    (OpenCV's pool included).
    """
    for call in calls:
        call()  # warm-up: first-call allocations, lazy OpenCV init
    wall: list[list[float]] = [[] for _ in calls]
    cpu: list[list[float]] = [[] for _ in calls]
    for _ in range(repeats):
        for i, call in enumerate(calls):
            c0, t0 = time.process_time(), time.perf_counter()
            call()
            wall[i].append((time.perf_counter() - t0) * 1000.0)
            cpu[i].append((time.process_time() - c0) * 1000.0)
    return [(statistics.median(w), statistics.median(c)) for w, c in zip(wall, cpu, strict=True)]


def run(sizes: list[tuple[int, int]], repeats: int) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    load_before = os.getloadavg()[0]
    for w, h in sizes:
        image = frame(w, h)
        calls: list[Callable[[], object]] = [functools.partial(cv2.mean, image)]
        calls += [functools.partial(fn, image) for _, fn in CASES]
        (floor, floor_cpu), *cases = medians_ms(calls, repeats)
        for (name, _), (ms, cpu_ms) in zip(CASES, cases, strict=True):
            rows.append(
                {
                    "check": name,
                    "size": f"{w}x{h}",
                    "median_ms": ms,
                    "cpu_ms": cpu_ms,
                    "floor_ms": floor,
                    "floor_cpu_ms": floor_cpu,
                }
            )
    return {
        "repeats": repeats,
        "cv2": cv2.__version__,
        "cv2_threads": cv2.getNumThreads(),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "rows": rows,
    }


def table(report: dict[str, Any]) -> str:
    sizes = list(dict.fromkeys(r["size"] for r in report["rows"]))
    by = {(r["check"], r["size"]): r for r in report["rows"]}
    head = "| check | " + " | ".join(f"{s}: wall ms (× floor) | CPU ms" for s in sizes) + " |"
    lines = [head, "|---|" + "---:|---:|" * len(sizes)]
    first = CASES[0][0]
    floors = [
        f"{by[(first, s)]['floor_ms']:.2f} | {by[(first, s)]['floor_cpu_ms']:.2f}" for s in sizes
    ]
    lines.append("| floor: `cv2.mean` over the frame | " + " | ".join(floors) + " |")
    for name, _ in CASES:
        cells = []
        for s in sizes:
            r = by[(name, s)]
            ratio = r["median_ms"] / r["floor_ms"]
            cells.append(f"{r['median_ms']:.1f} ({ratio:.0f}×) | {r['cpu_ms']:.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"median of {report['repeats']} interleaved runs; OpenCV {report['cv2']} "
        f"({report['cv2_threads']} threads), NumPy {report['numpy']}, "
        f"Python {report['python']}, {report['machine']}, {report['cpus']} CPUs; "
        f"1-min load average {report['load_avg_1min'][0]} before, "
        f"{report['load_avg_1min'][1]} after"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2448x2048,1280x1024", help="WxH,WxH,...")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes.split(",")]
    report = run([(w, h) for w, h in sizes], max(1, args.repeats))
    print(table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
