"""Section 4: ``analyze_raw_image`` and ``analyze_image`` over HTTP vs a no-op floor.

Reuses the HTTP area's benchmark (``tools/bench_http.py``): the server in a child
process on edged's default ``http`` settings, an aiohttp client here, interleaved
rounds of the Inspector in-process, ``POST /noop`` (the floor: the gate and edged's
own body reader, no work), ``POST /analyze_raw_image`` with a 1280x1024 BGR frame,
and ``POST /analyze_image`` with the same frame as PNG at concurrency 1-8 (the wait
queue: no 429 expected). Figures are medians over rounds with min-max.
"""

from __future__ import annotations

import importlib
from typing import Any

from tools.bench._context import Bench
from tools.bench._report import SectionReport, judge, not_available

NAME = "http"
TITLE = "HTTP analyze_raw_image vs no-op endpoint"


def run(bench: Bench) -> SectionReport:
    try:
        module: Any = importlib.import_module("tools.bench_http")
    except ImportError as exc:
        return not_available(NAME, TITLE, f"tools/bench_http.py is not in this checkout ({exc})")
    data: dict[str, Any] = module.run(bench.reps(200, 8), bench.reps(4, 2))
    size = f"{module.WIDTH}x{module.HEIGHT}"
    report = SectionReport(NAME, TITLE, note=f"recipe: {data['recipe']}; frame {data['frame']}")
    by: dict[tuple[str, int], dict[str, Any]] = {}
    for row in data["rows"]:
        by[(row["path"], row["concurrency"])] = row
        name = f"{row['path']}, concurrency {row['concurrency']}"
        text = (
            f"{row['rps']:.0f} req/s [{row['rps_min']:.0f}–{row['rps_max']:.0f}] · "
            f"p50 {row['p50_ms']:.2f} ms · p99 {row['p99_ms']:.2f} ms · "
            f"CPU {row['cpu_ms']:.1f} ms/req · load {row['load_min']:.1f}–{row['load_max']:.1f}"
        )
        if row["errors"]:
            text += f" · {row['errors']} non-200 ({row['status_429']} × 429)"
        report.add(
            name,
            row["rps"],
            "req/s",
            size,
            text,
            rps_min=row["rps_min"],
            rps_max=row["rps_max"],
            p50_ms=row["p50_ms"],
            p99_ms=row["p99_ms"],
            cpu_ms=row["cpu_ms"],
            errors=row["errors"],
            status_429=row["status_429"],
            requests=row["requests"],
            load_min=row["load_min"],
            load_max=row["load_max"],
        )
    scaling = data["png_c4_over_c1"]
    report.add(
        "analyze_image PNG throughput, concurrency 4 over 1",
        scaling["median"],
        "x",
        size,
        f"{scaling['median']:.2f}× [{scaling['min']:.2f}–{scaling['max']:.2f}] (same rounds)",
        min=scaling["min"],
        max=scaling["max"],
    )
    report.targets.append(
        judge(
            "analyze_image PNG throughput scaling",
            "≥ 1.8× at concurrency 4 over 1",
            scaling["median"],
            "x",
            ok=scaling["median"] >= 1.8,
            metric="analyze_image PNG throughput, concurrency 4 over 1",
            size=size,
            note=f"{data['cores']} cores; load {_load(data['rows'])}: needs idle cores to hold",
        )
    )
    refused = sum(r["status_429"] for r in data["rows"] if r["path"] == module.PNG)
    report.targets.append(
        judge(
            "no 429 below the queue depth",
            "0 × 429 at concurrency ≤ 8 (4 slots + 32 in line)",
            float(refused),
            "429s",
            ok=refused == 0,
            metric=f"{module.PNG}, concurrency 8",
            size=size,
        )
    )
    for conc, ms in data["overhead_p50_ms"].items():
        noop = by.get((module.NOOP, int(conc)))
        text = f"{ms:.2f} ms"
        if noop is not None:
            text += f" (no-op floor round trip {noop['p50_ms']:.2f} ms)"
        report.add(
            f"HTTP overhead beyond the inspection p50, concurrency {conc}", ms, "ms", size, text
        )
    return report


def _load(rows: list[dict[str, Any]]) -> str:
    return f"{min(r['load_min'] for r in rows):.1f}–{max(r['load_max'] for r in rows):.1f}"
