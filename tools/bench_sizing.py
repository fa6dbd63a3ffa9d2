"""Sizing: how many cameras at which rate one edge PC sustains, end to end.

    python tools/bench_sizing.py                  # every core of this machine (~6 min)
    python tools/bench_sizing.py --cores 1        # as a 1-core PC (CPU affinity)
    python tools/bench_sizing.py --json sizing.json

For each frame size and camera count: replayed BayerRG8 cameras (the benchmark's
synthetic label line, rendered once) feed the real daemon in a fresh process
(default recipe: quality, mask, difference against a taught reference; durable
outbox; MQTT 5 QoS 1 to a private mosquitto; a subscriber in its own process), and
a search finds the highest per-camera rate with zero drops and the cameras
delivering at least 95 % of it (the same rule as ``python -m tools.bench --only
e2e``, and its search): grow by 1.5x from 10 fps until it fails, then bisect
to within 1 fps. Each trial runs ``--trial-s`` seconds after a 3 s warm-up; the row
gives the rate, the total frames/s and the frame -> subscriber p50/p99 at that rate.

``--cores N`` pins this process and every child (daemon, broker, subscriber) to the
first N CPUs the process may use, so a 2-core machine measures what a 1-core PC
does; it cannot measure more cores than the machine has.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.bench._broker import BrokerAddress, start_broker
from tools.bench._e2e import search_rate
from tools.bench._frames import make_frames, size_label
from tools.bench._liverun import LiveRun, prepare_references, run_in_child
from tools.bench._measure import percentile
from tools.bench._recipe import default_recipe

SIZES: tuple[tuple[int, int], ...] = ((2448, 2048), (1280, 1024))
CAMERAS = {(2448, 2048): (1, 2, 4), (1280, 1024): (2, 4)}
WARMUP_S = 3.0
START_FPS = 10.0


@dataclass(frozen=True, slots=True)
class Row:
    size: str
    cameras: int
    fps_per_camera: float | None
    """Highest per-camera rate kept up with (None: not even ``min_fps``)."""
    first_failing_fps: float | None
    total_fps: float | None
    p50_ms: float | None
    p99_ms: float | None
    trials: tuple[str, ...]


def measure(
    size: tuple[int, int], cameras: int, workdir: Path, *, trial_s: float, warmup_s: float
) -> Row:
    fr = make_frames(size)
    raws = fr.raw_frames(4)
    recipe, _missing = default_recipe()
    refs = workdir / "refs"
    recipe = prepare_references(refs, recipe, fr.reference, cameras)
    broker, _kind = start_broker(workdir / "broker")
    count = 0

    def live(fps: float) -> LiveRun:
        nonlocal count
        count += 1
        return run_in_child(
            workdir / f"run{count}",
            refs,
            list(recipe.checks),
            raws,
            cameras=cameras,
            fps=fps,
            duration_s=warmup_s + trial_s,
            warmup_s=warmup_s,
            broker=BrokerAddress.of(broker),
        ).live

    try:
        first = live(START_FPS)
        trials = [
            f"{START_FPS:g}: {first.drops} drops, {first.offered_fps(warmup_s):.1f} delivered"
        ]
        ok, bad, best = search_rate(live, first, warmup_s=warmup_s, max_trials=7, trials=trials)
    finally:
        broker.close()
    lat = best.latencies_ms if best is not None else []
    return Row(
        size=size_label(size),
        cameras=cameras,
        fps_per_camera=ok,
        first_failing_fps=bad,
        total_fps=None if ok is None else round(ok * cameras, 1),
        p50_ms=round(percentile(lat, 50), 1) if lat else None,
        p99_ms=round(percentile(lat, 99), 1) if lat else None,
        trials=tuple(trials),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cores", type=int, default=0, help="pin to this many CPUs (0: all)")
    ap.add_argument("--trial-s", type=float, default=10.0, help="seconds per trial")
    ap.add_argument("--json", type=Path, help="write the rows here")
    ap.add_argument("--quick", action="store_true", help="one small camera, short trials")
    args = ap.parse_args(argv)
    plan = {(640, 512): (1,)} if args.quick else {s: CAMERAS[s] for s in SIZES}
    trial_s = 2.0 if args.quick else args.trial_s
    warmup_s = 0.5 if args.quick else WARMUP_S
    allowed = sorted(os.sched_getaffinity(0))
    if args.cores:
        if args.cores > len(allowed):
            print(f"--cores {args.cores}: this machine lets us use {len(allowed)}", file=sys.stderr)
            return 2
        allowed = allowed[: args.cores]
        os.sched_setaffinity(0, allowed)  # inherited by every child process
    load0 = os.getloadavg()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="edged-sizing-") as tmp:
        for size, counts in plan.items():
            for cameras in counts:
                row = measure(
                    size,
                    cameras,
                    Path(tmp) / f"{size[0]}-{cameras}",
                    trial_s=trial_s,
                    warmup_s=warmup_s,
                )
                rows.append(row)
                print(
                    f"{row.size:>10s} × {row.cameras} cameras: "
                    f"{row.fps_per_camera if row.fps_per_camera is not None else '<0.5'} "
                    f"fps/camera (fails at {row.first_failing_fps}), total {row.total_fps} "
                    f"fps, p50/p99 {row.p50_ms}/{row.p99_ms} ms  [{'; '.join(row.trials)}]",
                    flush=True,
                )
    load1 = os.getloadavg()
    print(
        f"\n{len(allowed)} of {os.cpu_count()} CPUs; load average (1 min) "
        f"{load0[0]:.1f} before, {load1[0]:.1f} after"
    )
    print("\n| PC | frames | cameras | fps per camera, zero drops | frames/s | p50 / p99 |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        rate = f"{r.fps_per_camera:g}" if r.fps_per_camera is not None else "< 0.5"
        lat = f"{r.p50_ms:g} / {r.p99_ms:g} ms" if r.p99_ms is not None else "–"
        print(f"| {len(allowed)} cores | {r.size} | {r.cameras} | {rate} | {r.total_fps} | {lat} |")
    if args.json is not None:
        doc = {
            "schema": "edged.bench.sizing.v1",
            "cores": len(allowed),
            "load_before": list(load0),
            "load_after": list(load1),
            "rows": [asdict(r) for r in rows],
        }
        args.json.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
