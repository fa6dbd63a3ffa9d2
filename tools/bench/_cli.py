"""The command line: run the sections, print one markdown table, write JSON."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from tools.bench import _e2e, _http, _ltu, _memory, _peers, _pipeline, _stages
from tools.bench._context import Bench, Options
from tools.bench._machine import describe
from tools.bench._report import SectionReport, markdown_table, targets_of

SCHEMA = "edged.bench.v1"
_MODULES: tuple[ModuleType, ...] = (_stages, _pipeline, _peers, _http, _ltu, _e2e, _memory)
SECTIONS: tuple[str, ...] = tuple(m.NAME for m in _MODULES)


def run_suite(options: Options, *, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the selected sections; returns the JSON document (see docs/benchmarks.md)."""
    started = time.time()
    machine = describe()
    reports: list[SectionReport] = []
    with tempfile.TemporaryDirectory(prefix="edged-bench-") as tmp:
        bench = Bench(options, Path(tmp))
        for mod in _MODULES:
            if options.only and mod.NAME not in options.only:
                continue
            log(f"[bench] {mod.NAME}: {mod.TITLE} ...")
            t0 = time.perf_counter()
            load0 = os.getloadavg()[0]
            try:
                report: SectionReport = mod.run(bench)
            except Exception as exc:
                traceback.print_exc(file=sys.stderr)
                report = SectionReport(mod.NAME, mod.TITLE, available=False)
                report.note = f"failed: {type(exc).__name__}: {exc}"
                report.profiles["error"] = [traceback.format_exc()]
            report.duration_s = time.perf_counter() - t0
            report.loadavg_1m = (load0, os.getloadavg()[0])
            log(
                f"[bench] {mod.NAME}: done in {report.duration_s:.1f} s "
                f"(load {load0:.1f} -> {report.loadavg_1m[1]:.1f})"
            )
            reports.append(report)
    machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    table = markdown_table(reports, bench.size_labels + _extra_sizes(reports, bench))
    return {
        "schema": SCHEMA,
        "mode": "quick" if options.quick else ("soak" if options.soak else "full"),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "machine": machine,
        "sizes": list(bench.size_labels),
        "sections": {r.name: r.to_dict() for r in reports},
        "targets": [t.to_dict() for t in targets_of(reports)],
        "table": table,
    }


def _extra_sizes(reports: Sequence[SectionReport], bench: Bench) -> tuple[str, ...]:
    """Sizes a section measured besides the run's own (e.g. the e2e target size)."""
    seen = dict.fromkeys(m.size for r in reports for m in r.metrics)
    seen.update(dict.fromkeys(t.size for r in reports for t in r.targets))
    return tuple(s for s in seen if s not in bench.size_labels)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench",
        description="Measure edged against the machine's limits and its peers.",
    )
    parser.add_argument("--quick", action="store_true", help="~30 s smoke run (CI)")
    parser.add_argument("--soak", action="store_true", help="10-minute memory soak at 10 fps")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results here")
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        metavar="SECTION",
        help=f"run only this section (repeatable): {', '.join(SECTIONS)}",
    )
    parser.add_argument("--no-profile", action="store_true", help="do not profile missed targets")
    parser.add_argument(
        "--soak-minutes", type=float, default=10.0, help="soak duration (default 10)"
    )
    args = parser.parse_args(argv)
    only = tuple(args.only or ())
    if args.soak and not only:
        only = ("memory",)
    options = Options(
        quick=args.quick,
        soak=args.soak,
        only=only,
        profile=not args.no_profile and not args.quick,
        soak_s=args.soak_minutes * 60.0,
    )
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    doc = run_suite(options, log=lambda s: print(s, file=sys.stderr, flush=True))
    print(doc["table"])
    for t in doc["targets"]:
        if t["status"] == "MISS":
            print(f"\nMISS {t['name']}: {t['value']} {t['unit']} (goal {t['goal']})")
    for name, sec in doc["sections"].items():
        for target, lines in sec["profiles"].items():
            print(f"\nprofile [{name}] {target}:")
            print("\n".join(lines))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    failed = [n for n, s in doc["sections"].items() if s["note"].startswith("failed:")]
    return 1 if failed else 0
