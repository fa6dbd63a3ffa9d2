"""Section 6: the daemon's memory over a run at 10 fps: RSS after warm-up, at the end.

The run happens in a fresh child process, so RSS is the daemon's own (Python,
OpenCV, the pipeline, the publisher, four replayed camera buffers) and not the
benchmark's caches. One replayed BayerRG8 camera at 10 fps runs the default recipe
in the real daemon, with its MQTT publisher and outbox when this checkout has them
(against a private broker started here). RSS is sampled every second; it swings
by a frame buffer or two (15 MB at 2448x2048) with what is in flight at the
instant, so "after warm-up" is the median over the window after the warm-up and
"end" the median over the last window (10 s; 60 s in a soak): a single swing does
not decide.
``--soak`` runs 10 minutes and judges the target (growth < 5 MB); it also lists,
with tracemalloc, the Python allocations that grew.
"""

from __future__ import annotations

import statistics

from tools.bench._broker import BrokerAddress, BrokerHandle, start_broker
from tools.bench._context import TARGET_SIZE, Bench
from tools.bench._liverun import prepare_references, publisher_available, run_in_child
from tools.bench._recipe import default_recipe
from tools.bench._report import SectionReport, judge

NAME = "memory"
TITLE = "Memory: RSS growth at 10 fps"
FPS = 10.0
GROWTH_GOAL_MB = 5.0
WINDOW_S = 10.0
SOAK_WINDOW_S = 60.0


def run(bench: Bench) -> SectionReport:
    report = SectionReport(NAME, TITLE)
    soak = bench.options.soak
    size = bench.largest if bench.quick else TARGET_SIZE
    label = f"{size[0]}x{size[1]}"
    duration = bench.options.soak_s if soak else bench.seconds(40, 4)
    warmup = 60.0 if soak else bench.seconds(15, 1)
    broker: BrokerHandle | None = None
    notes = [f"{duration:g} s at {FPS:g} fps, 1 camera, in a fresh process"]
    if publisher_available():
        broker, kind = start_broker(bench.scratch("memory-broker"))
        notes.append(f"through MQTT ({kind})")
    else:
        notes.append("no MQTT publisher in this checkout: results go to a null sink")
    fr = bench.frames(size)
    refs = bench.scratch("memory-refs")
    recipe, _missing = default_recipe()
    recipe = prepare_references(refs, recipe, fr.reference, 1)
    try:
        child = run_in_child(
            bench.scratch("memory-run"),
            refs,
            list(recipe.checks),
            fr.raw_frames(4),
            cameras=1,
            fps=FPS,
            duration_s=duration,
            warmup_s=warmup,
            broker=None if broker is None else BrokerAddress.of(broker),
            rss_every_s=1.0,
            tracemalloc_on=soak,
        )
    finally:
        if broker is not None:
            broker.close()
    notes.append(f"recipe: {', '.join(recipe.checks) or 'none'}")
    rss = child.live.rss
    window = min(SOAK_WINDOW_S if soak else WINDOW_S, max(1.0, (duration - warmup) / 3))
    after_warm = [mb for t, mb in rss if warmup <= t <= warmup + window]
    end = [mb for t, mb in rss if t >= duration - window]
    if not after_warm or not end:
        msg = f"memory: expected RSS samples after {warmup:g} s, got {len(rss)} samples"
        raise RuntimeError(msg)
    warm_mb, end_mb = statistics.median(after_warm), statistics.median(end)
    growth = end_mb - warm_mb
    peak = max(mb for _t, mb in rss)
    late = [(t, mb) for t, mb in rss if t >= warmup + (duration - warmup) / 2]
    slope = _slope_mb_per_min(late)
    report.add("RSS after warm-up", warm_mb, "MB", label, at_s=warmup)
    report.add("RSS at the end of the run", end_mb, "MB", label, at_s=duration)
    report.add(
        "RSS growth after warm-up",
        growth,
        "MB",
        label,
        f"{growth:+.1f} MB over {duration - warmup:.0f} s (peak {peak:.0f} MB"
        + (f"; second half {slope:+.2f} MB/min)" if soak else ")"),
        peak_mb=peak,
        late_slope_mb_per_min=slope,
        results=child.live.received,
    )
    thinned = rss[:: max(1, len(rss) // 20)]
    report.profiles["RSS over the run (s: MB)"] = [
        "  ".join(f"{t:.0f} s: {mb:.1f}" for t, mb in thinned[i : i + 5])
        for i in range(0, len(thinned), 5)
    ]
    if child.tracemalloc:
        report.profiles["tracemalloc growth after warm-up (top Python allocations)"] = (
            child.tracemalloc
        )
    report.note = "; ".join(notes)
    ok = (growth < GROWTH_GOAL_MB) if soak and size == TARGET_SIZE else None
    report.targets.append(
        judge(
            "no memory growth in the soak",
            f"< {GROWTH_GOAL_MB:g} MB",
            growth,
            "MB",
            ok=ok,
            metric="RSS growth after warm-up",
            size=label,
            note="" if soak else "judged with --soak (10 min)",
        )
    )
    return report


def _slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of RSS over time, MB per minute (0 with fewer than 3 samples):
    a creep that is still going shows here, a one-off step does not."""
    if len(samples) < 3:
        return 0.0
    ts = [t for t, _ in samples]
    mbs = [mb for _, mb in samples]
    t_mean, mb_mean = statistics.fmean(ts), statistics.fmean(mbs)
    var = sum((t - t_mean) ** 2 for t in ts)
    if var == 0:
        return 0.0
    cov = sum((t - t_mean) * (mb - mb_mean) for t, mb in samples)
    return cov / var * 60.0
