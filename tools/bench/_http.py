"""Section 4: ``analyze_raw_image`` over HTTP vs a no-op endpoint with the same body.

Reuses the HTTP area's benchmark (``tools/bench_http.py``): the server in a child
process, an aiohttp client here, concurrency 1 and 4, interleaved rounds of three
paths — the Inspector in-process, ``POST /noop`` (the transport's limit) and
``POST /analyze_raw_image`` with a 1280x1024 BGR frame.
"""

from __future__ import annotations

import importlib
from typing import Any

from tools.bench._context import Bench
from tools.bench._report import SectionReport, not_available

NAME = "http"
TITLE = "HTTP analyze_raw_image vs no-op endpoint"


def run(bench: Bench) -> SectionReport:
    try:
        module: Any = importlib.import_module("tools.bench_http")
    except ImportError as exc:
        return not_available(NAME, TITLE, f"tools/bench_http.py is not in this checkout ({exc})")
    data: dict[str, Any] = module.run(bench.reps(200, 24), bench.reps(4, 2))
    size = f"{module.WIDTH}x{module.HEIGHT}"
    report = SectionReport(NAME, TITLE, note=f"recipe: {data['recipe']}; frame {data['frame']}")
    by: dict[tuple[str, int], dict[str, Any]] = {}
    for row in data["rows"]:
        by[(row["path"], row["concurrency"])] = row
        name = f"{row['path']}, concurrency {row['concurrency']}"
        text = f"{row['rps']:.0f} req/s · p50 {row['p50_ms']:.2f} ms · p99 {row['p99_ms']:.2f} ms"
        if row["errors"]:
            text += f" · {row['errors']} non-200"
        report.add(
            name,
            row["rps"],
            "req/s",
            size,
            text,
            p50_ms=row["p50_ms"],
            p99_ms=row["p99_ms"],
            errors=row["errors"],
            requests=row["requests"],
        )
    for conc, ms in data["overhead_p50_ms"].items():
        noop = by.get(("POST /noop (same body)", int(conc)))
        text = f"{ms:.2f} ms"
        if noop is not None:
            text += f" (no-op round trip {noop['p50_ms']:.2f} ms)"
        report.add(
            f"HTTP overhead beyond the inspection p50, concurrency {conc}", ms, "ms", size, text
        )
    return report
