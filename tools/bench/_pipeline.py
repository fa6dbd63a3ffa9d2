"""Section 2: the full pipeline per frame, and frames/s through the worker pool.

Per frame (in-process, one thread): ``pixfmt.decode`` of a BayerRG8 frame and the
default recipe (quality, mask, difference against a stored reference) through the
real Inspector — p50/p99 over distinct frames of the line. Sustained: the real
camera line (CameraLine + Runtime + WorkerPool with 2 workers) fed as fast as it
takes frames (``on_full: block``, nothing dropped), results counted at the sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import numpy as np

from edged.config import CameraConfig, RecipeConfig, Settings
from edged.core.frames import Frame
from edged.core.result import Result
from edged.imaging import pixfmt
from edged.recipes.inspection import Inspector
from edged.runtime.contracts import SinkStats
from edged.runtime.line import CameraLine
from edged.runtime.shared import Runtime
from tools.bench._context import TARGET_SIZE, Bench
from tools.bench._frames import BenchFrames, size_label
from tools.bench._measure import Samples
from tools.bench._profile import profile_top
from tools.bench._recipe import RECIPE, default_recipe, reference_store, teach
from tools.bench._replay import ReplaySource
from tools.bench._report import SectionReport, fmt_spread, judge

NAME = "pipeline"
TITLE = "Full pipeline: decode BayerRG8 + default recipe"
WORKERS = 2
P50_GOAL_MS = 60.0


def run(bench: Bench) -> SectionReport:
    report = SectionReport(NAME, TITLE)
    recipe, missing = default_recipe()
    notes = []
    if missing:
        notes.append(f"default recipe lacks {', '.join(missing)} (not in this checkout)")
    for size in bench.sizes:
        fr = bench.frames(size)
        store = reference_store(bench.scratch(f"pipeline-refs-{fr.label}"), recipe)
        rc = recipe
        if store is None and "difference" in rc.checks:
            rc = RecipeConfig(checks={k: v for k, v in rc.checks.items() if k != "difference"})
            notes.append("no reference store: difference left out")
        if store is not None:
            teach(store, ["bench"], [fr.reference])
        raws = fr.raw_frames(bench.reps(6, 2))
        per_frame = _per_frame(bench, fr, raws, rc, store, report)
        fps = asyncio.run(_sustained(bench, fr, raws, rc, store))
        serial_fps = 1000.0 / per_frame.median_ms
        report.add(
            f"frames/s sustained, WorkerPool({WORKERS})",
            fps,
            "fps",
            fr.label,
            f"{fps:.1f} fps · {fps / serial_fps:.2f}× serial",
            x_serial=fps / serial_fps,
        )
    report.note = "; ".join(dict.fromkeys(notes))
    _judge(bench, report, recipe, missing)
    return report


def _per_frame(
    bench: Bench,
    fr: BenchFrames,
    raws: list[np.ndarray],
    recipe: RecipeConfig,
    store: Any,
    report: SectionReport,
) -> Samples:
    inspector = Inspector(RECIPE, recipe)
    ctx = _context(store)
    frames = [_frame(raw, fr, seq) for seq, raw in enumerate(raws)]
    stage: dict[str, list[float]] = {}

    def one(frame: Frame) -> float:
        t0 = time.perf_counter_ns()
        image = pixfmt.decode(frame)
        t1 = time.perf_counter_ns()
        inspection = inspector.inspect(image, context=ctx)
        total = (time.perf_counter_ns() - t0) / 1e6
        stage.setdefault("decode", []).append((t1 - t0) / 1e6)
        for k, v in inspection.timings_ms.items():
            stage.setdefault(f"check.{k}", []).append(v)
        if inspection.verdict == "error":
            msg = f"default recipe errored on the bench frame: {inspection.reasons}"
            raise RuntimeError(msg)
        return total

    one(frames[0])
    stage.clear()
    n = bench.reps(40, 6)
    samples = Samples(tuple(one(frames[i % len(frames)]) for i in range(n)))
    breakdown = " + ".join(
        f"{k.removeprefix('check.')} {float(np.median(v)):.1f}" for k, v in stage.items()
    )
    report.add(
        "per frame p50 (decode + recipe)",
        samples.median_ms,
        "ms",
        fr.label,
        f"{fmt_spread(samples.median_ms, samples.min_ms, samples.max_ms, 'ms')} ({breakdown})",
        n=samples.n,
        **{f"{k}_ms": float(np.median(v)) for k, v in stage.items()},
    )
    report.add("per frame p99", samples.p99_ms, "ms", fr.label, n=samples.n)
    if bench.options.profile and fr.size_wh == TARGET_SIZE and samples.median_ms > P50_GOAL_MS:
        f0 = frames[0]
        report.profiles["per frame p50"] = profile_top(
            lambda: inspector.inspect(pixfmt.decode(f0), context=ctx), repeat=10
        )
    return samples


def _context(store: Any) -> Any:
    from edged.checks import CheckContext

    ref = store.prepared(RECIPE, "bench") if store is not None else None
    return CheckContext(recipe=RECIPE, camera="bench", reference=ref)


def _frame(raw: np.ndarray, fr: BenchFrames, seq: int) -> Frame:
    w, h = fr.size_wh
    return Frame(raw, "BayerRG8", w, h, "bench", seq, time.time_ns())


class _CountingSink:
    """A ResultSink that notes when each result arrived."""

    def __init__(self) -> None:
        self.done_s: list[float] = []
        self.verdicts: dict[str, int] = {}

    async def publish_result(self, result: Result) -> None:
        self.done_s.append(time.perf_counter())
        self.verdicts[result.verdict] = self.verdicts.get(result.verdict, 0) + 1

    def set_state(self, camera: str, state: dict[str, Any]) -> None:
        return None

    def last_seq(self, camera: str) -> int | None:
        return None

    def stats(self) -> SinkStats:
        return SinkStats(connected=True)

    async def stop(self, grace_s: float = 5.0) -> None:
        return None


def line_settings(recipe: RecipeConfig, root: Path, *, workers: int = WORKERS) -> Settings:
    return Settings(
        node_id="bench",
        cameras={"bench": CameraConfig(recipe=RECIPE, fps=1000, queue_size=8, on_full="block")},
        recipes={RECIPE: recipe},
        mqtt={"enabled": False},
        http={"enabled": False},
        pipeline={"workers": workers},
        state_dir=root / "state",
        references_dir=root / "refs",
    )


async def _sustained(
    bench: Bench, fr: BenchFrames, raws: list[np.ndarray], recipe: RecipeConfig, store: Any
) -> float:
    n = bench.reps(60, 12)
    warm = 2 * WORKERS
    settings = line_settings(recipe, bench.scratch(f"line-{fr.label}"))
    runtime = Runtime.build(settings, references=store)
    sink = _CountingSink()
    source = ReplaySource("bench", raws, frames=n)
    line = CameraLine("bench", settings.cameras["bench"], source, runtime, sink)
    tasks = [
        asyncio.create_task(line.inspect(), name="bench-inspect"),
        asyncio.create_task(line.emit(), name="bench-emit"),
    ]
    try:
        await line.acquire()
        await line.drain()
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        runtime.pool.shutdown(wait=True)
    if sink.verdicts.get("error"):
        msg = f"sustained run: {sink.verdicts['error']} results were errors"
        raise RuntimeError(msg)
    done = sink.done_s
    if len(done) != n:
        msg = f"sustained run: expected {n} results, got {len(done)}"
        raise RuntimeError(msg)
    return (len(done) - warm) / (done[-1] - done[warm - 1])


def _judge(bench: Bench, report: SectionReport, recipe: RecipeConfig, missing: list[str]) -> None:
    label = size_label(TARGET_SIZE)
    p50 = next(
        (m.value for m in report.metrics if m.name.startswith("per frame p50") and m.size == label),
        None,
    )
    note = ""
    if p50 is None:
        note = f"quick run: {label} not measured" if bench.quick else f"{label} not measured"
    elif missing:
        note = f"recipe incomplete: {', '.join(missing)} missing"
    ok = None if (p50 is None or missing) else p50 <= P50_GOAL_MS
    report.targets.append(
        judge(
            "full default recipe p50",
            f"≤ {P50_GOAL_MS:.0f} ms",
            p50,
            "ms",
            ok=ok,
            metric="per frame p50 (decode + recipe)",
            size=label,
            note=note,
        )
    )
