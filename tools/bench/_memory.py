"""Section 6: the daemon's memory over a run at 10 fps: RSS after warm-up, at the end.

One replayed BayerRG8 camera at 10 fps runs the default recipe in the real daemon
(with its MQTT publisher and outbox when this checkout has them, against a private
broker). RSS is sampled every second (every 5 s in a soak). "After warm-up" is the
median over the 10 s after the warm-up; "end" the median over the last 10 s, so a
single allocator swing does not decide. ``--soak`` runs 10 minutes and judges the
target (growth < 5 MB); then tracemalloc lists the Python allocations that grew.
"""

from __future__ import annotations

import statistics
import tracemalloc

from tools.bench._broker import BrokerHandle, start_broker
from tools.bench._context import TARGET_SIZE, Bench
from tools.bench._frames import size_label
from tools.bench._liverun import prepare_references, publisher_available, run_live
from tools.bench._recipe import default_recipe
from tools.bench._report import SectionReport, judge

NAME = "memory"
TITLE = "Memory: RSS growth at 10 fps"
FPS = 10.0
GROWTH_GOAL_MB = 5.0
WINDOW_S = 10.0


def run(bench: Bench) -> SectionReport:
    report = SectionReport(NAME, TITLE)
    soak = bench.options.soak
    size = bench.largest if bench.quick else TARGET_SIZE
    fr = bench.frames(size)
    raws = fr.raw_frames(bench.reps(4, 2))
    refs = bench.scratch("memory-refs")
    recipe, _missing = default_recipe()
    recipe = prepare_references(refs, recipe, fr.reference, 1)
    duration = bench.options.soak_s if soak else bench.seconds(45, 4)
    warmup = 60.0 if soak else bench.seconds(15, 1)
    broker: BrokerHandle | None = None
    notes = [f"{duration:g} s at {FPS:g} fps, 1 camera, recipe: {', '.join(recipe.checks)}"]
    if publisher_available():
        broker, kind = start_broker(bench.scratch("memory-broker"))
        notes.append(f"through MQTT ({kind})")
    else:
        notes.append("no MQTT publisher in this checkout: results go to a null sink")
    warm_snapshot: list[tracemalloc.Snapshot] = []
    if soak:
        tracemalloc.start(8)
    try:
        live = run_live(
            bench.scratch("memory-run"),
            refs,
            recipe,
            raws,
            cameras=1,
            fps=FPS,
            duration_s=duration,
            warmup_s=warmup,
            broker=None if broker is None else (broker.host, broker.port),
            rss_every_s=5.0 if soak else 1.0,
            on_warm=(lambda: warm_snapshot.append(tracemalloc.take_snapshot())) if soak else None,
        )
    finally:
        if broker is not None:
            broker.close()
    window = min(WINDOW_S, max(1.0, (duration - warmup) / 3))
    after_warm = [mb for t, mb in live.rss if warmup <= t <= warmup + window]
    end = [mb for t, mb in live.rss if t >= duration - window]
    if not after_warm or not end:
        msg = f"memory: expected RSS samples after {warmup:g} s, got {len(live.rss)} samples"
        raise RuntimeError(msg)
    warm_mb, end_mb = statistics.median(after_warm), statistics.median(end)
    growth = end_mb - warm_mb
    peak = max(mb for _t, mb in live.rss)
    report.add("RSS after warm-up", warm_mb, "MB", fr.label, at_s=warmup)
    report.add("RSS at the end of the run", end_mb, "MB", fr.label, at_s=duration)
    report.add(
        "RSS growth after warm-up",
        growth,
        "MB",
        fr.label,
        f"{growth:+.1f} MB over {duration - warmup:.0f} s (peak {peak:.0f} MB)",
        peak_mb=peak,
        results=live.received,
    )
    if soak:
        report.profiles["tracemalloc growth (top Python allocations)"] = _growth_lines(
            warm_snapshot
        )
        tracemalloc.stop()
    report.note = "; ".join(notes)
    label = size_label(TARGET_SIZE)
    ok = (growth < GROWTH_GOAL_MB) if soak and fr.label == label else None
    report.targets.append(
        judge(
            "no memory growth in the soak",
            f"< {GROWTH_GOAL_MB:g} MB",
            growth,
            "MB",
            ok=ok,
            metric="RSS growth after warm-up",
            size=fr.label,
            note="" if soak else "judged with --soak (10 min)",
        )
    )
    return report


def _growth_lines(warm: list[tracemalloc.Snapshot], top: int = 12) -> list[str]:
    if not warm:
        return ["(no warm-up snapshot)"]
    stats = tracemalloc.take_snapshot().compare_to(warm[0], "lineno")
    return [str(s) for s in stats[:top]]
