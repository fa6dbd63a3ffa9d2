"""Section 6: the daemon's memory over a run at 10 fps: RSS after warm-up, at the end.

The run happens in a fresh child process, so RSS is the daemon's own (Python,
OpenCV, the pipeline, the publisher, four replayed camera buffers) and not the
benchmark's caches. One replayed BayerRG8 camera at 10 fps runs the default recipe
in the real daemon, with its MQTT publisher and outbox when this checkout has them
(against a private broker started here). RSS is sampled every second (every 5 s
in a soak). "After warm-up" is the median over the 10 s after the warm-up, "end"
the median over the last 10 s, so a single allocator swing does not decide.
``--soak`` runs 10 minutes and judges the target (growth < 5 MB); it also lists,
with tracemalloc, the Python allocations that grew.
"""

from __future__ import annotations

import gc
import json
import statistics
import subprocess
import sys
import tracemalloc
from dataclasses import astuple
from pathlib import Path
from typing import Any

from tools.bench._broker import BrokerAddress, BrokerHandle, start_broker
from tools.bench._context import TARGET_SIZE, Bench
from tools.bench._frames import make_frames
from tools.bench._liverun import prepare_references, publisher_available, run_live
from tools.bench._recipe import default_recipe
from tools.bench._report import SectionReport, judge

NAME = "memory"
TITLE = "Memory: RSS growth at 10 fps"
FPS = 10.0
GROWTH_GOAL_MB = 5.0
WINDOW_S = 10.0
_ROOT = Path(__file__).resolve().parents[2]


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
    params = {
        "size_wh": list(size),
        "duration_s": duration,
        "warmup_s": warmup,
        "rss_every_s": 5.0 if soak else 1.0,
        "broker": None if broker is None else list(astuple(BrokerAddress.of(broker))),
        "tracemalloc": soak,
        "workdir": str(bench.scratch("memory-run")),
    }
    try:
        child = subprocess.run(
            [sys.executable, "-m", "tools.bench._memory", json.dumps(params)],
            cwd=_ROOT,
            capture_output=True,
            text=True,
            timeout=duration + 180,
            check=False,
        )
    finally:
        if broker is not None:
            broker.close()
    if child.returncode != 0:
        msg = f"memory run (child process) failed: {child.stderr.strip()[-2000:]}"
        raise RuntimeError(msg)
    out: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    notes.append(f"recipe: {', '.join(out['checks']) or 'none'}")
    rss = [(float(t), float(mb)) for t, mb in out["rss"]]
    window = min(WINDOW_S, max(1.0, (duration - warmup) / 3))
    after_warm = [mb for t, mb in rss if warmup <= t <= warmup + window]
    end = [mb for t, mb in rss if t >= duration - window]
    if not after_warm or not end:
        msg = f"memory: expected RSS samples after {warmup:g} s, got {len(rss)} samples"
        raise RuntimeError(msg)
    warm_mb, end_mb = statistics.median(after_warm), statistics.median(end)
    growth = end_mb - warm_mb
    peak = max(mb for _t, mb in rss)
    report.add("RSS after warm-up", warm_mb, "MB", label, at_s=warmup)
    report.add("RSS at the end of the run", end_mb, "MB", label, at_s=duration)
    report.add(
        "RSS growth after warm-up",
        growth,
        "MB",
        label,
        f"{growth:+.1f} MB over {duration - warmup:.0f} s (peak {peak:.0f} MB)",
        peak_mb=peak,
        results=out["received"],
    )
    if out.get("tracemalloc"):
        report.profiles["tracemalloc growth after warm-up (top Python allocations)"] = out[
            "tracemalloc"
        ]
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


def _child(params: dict[str, Any]) -> dict[str, Any]:
    """The child process: render frames, teach, run the daemon, report RSS samples."""
    size = (int(params["size_wh"][0]), int(params["size_wh"][1]))
    work = Path(params["workdir"])
    fr = make_frames(size)
    raws = fr.raw_frames(4)
    recipe, _missing = default_recipe()
    recipe = prepare_references(work / "refs", recipe, fr.reference, 1)
    del fr  # keep only what a camera line holds: its buffers
    gc.collect()
    warm_snapshot: list[tracemalloc.Snapshot] = []
    if params["tracemalloc"]:
        tracemalloc.start(8)
    broker = params["broker"]
    live = run_live(
        work / "run",
        work / "refs",
        recipe,
        raws,
        cameras=1,
        fps=FPS,
        duration_s=float(params["duration_s"]),
        warmup_s=float(params["warmup_s"]),
        broker=None if broker is None else BrokerAddress(str(broker[0]), int(broker[1]), broker[2]),
        rss_every_s=float(params["rss_every_s"]),
        on_warm=(lambda: warm_snapshot.append(tracemalloc.take_snapshot()))
        if params["tracemalloc"]
        else None,
    )
    lines: list[str] = []
    if warm_snapshot:
        stats = tracemalloc.take_snapshot().compare_to(warm_snapshot[0], "lineno")
        lines = [str(s) for s in stats[:12]]
        tracemalloc.stop()
    return {
        "rss": [[round(t, 2), round(mb, 2)] for t, mb in live.rss],
        "received": live.received,
        "checks": list(recipe.checks),
        "tracemalloc": lines,
    }


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))
