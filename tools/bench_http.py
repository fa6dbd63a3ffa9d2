"""Benchmark: HTTP analyze overhead beyond the inspection itself.

Measures, at concurrency 1 and 4, requests/s and p50/p99 latency of
``POST /analyze_raw_image`` with a 1280×1024 BGR frame, next to

- the same server answering a no-op endpoint with the same body (reads the body,
  answers a small JSON: the transport's own cost; the route exists only in this
  benchmark's app), and
- the recipe's Inspector called in-process (no HTTP at all),

and reports the HTTP overhead beyond the inspection (p50 analyze − p50 in-process).
The server runs in a child process (as in production: clients are other
processes); the client is aiohttp in this process.

The recipe is "default-like": the library's ``quality`` check when it is
registered, otherwise a dark-spot check (grey, threshold, connected components)
defined here. Run from the repository root::

    .venv/bin/python tools/bench_http.py            # ~20 s
    .venv/bin/python tools/bench_http.py --requests 100 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np
from pydantic import Field

from edged.checks import (
    CheckContext,
    CheckOptions,
    CheckOutcome,
    CheckSpec,
    Region,
    registry,
)
from edged.config import HttpConfig, RecipeConfig, Settings
from edged.recipes.inspection import Inspector
from edged.runtime.metrics import Metrics
from edged.runtime.shared import Runtime
from edged.runtime.workers import WorkerPool

WIDTH, HEIGHT = 1280, 1024


# --------------------------------------------------------------------------- recipe


class _SpotOptions(CheckOptions):
    threshold: int = Field(default=60, ge=1, le=255)
    min_area_px: int = Field(default=9, ge=1)


def _spots(image: np.ndarray, options: _SpotOptions, context: CheckContext) -> CheckOutcome:
    """Dark spots: image ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    _, mask = cv2.threshold(grey, options.threshold, 1, cv2.THRESH_BINARY_INV)
    _n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    regions = tuple(
        Region(int(x), int(y), int(w), int(h), "spot", "spots", area_px=int(a))
        for x, y, w, h, a in stats[1:]
        if a >= options.min_area_px
    )
    return CheckOutcome(figures={"count": len(regions)}, regions=regions)


_SPOTS = CheckSpec("spots", _SpotOptions, _spots)


def bench_recipe() -> tuple[str, RecipeConfig, dict[str, CheckSpec]]:
    """(description, recipe, specs): ``quality`` when the library has it, else dark spots."""
    specs = dict(registry())
    if "quality" in specs:
        rc = RecipeConfig.model_construct(checks={"quality": {}}, limits=[])
        return "library check 'quality'", rc, specs
    rc = RecipeConfig.model_construct(checks={"spots": {}}, limits=["spots.count <= 0"])
    return "dark spots (grey + threshold + connected components)", rc, {"spots": _SPOTS}


def frame() -> np.ndarray:
    """A 1280×1024 BGR part: textured light background, some print, two dark spots."""
    rng = np.random.default_rng(0)
    img = np.full((HEIGHT, WIDTH, 3), (170, 190, 200), np.uint8)
    img = (img.astype(np.int16) + rng.integers(-8, 9, img.shape)).astype(np.uint8)
    cv2.putText(img, "LOT 4711", (200, 500), cv2.FONT_HERSHEY_SIMPLEX, 5, (120, 120, 120), 12)
    cv2.circle(img, (900, 300), 12, (20, 20, 20), -1)
    cv2.rectangle(img, (300, 800), (340, 812), (30, 30, 30), -1)
    return img


def build_runtime() -> Runtime:
    _, rc, specs = bench_recipe()
    settings = Settings(recipes={"default": rc}, http=HttpConfig(max_concurrent=8))
    return Runtime(
        settings=settings,
        metrics=Metrics(),
        pool=WorkerPool(settings.pipeline.workers),
        inspectors={"default": Inspector("default", rc, specs=specs)},
    )


# --------------------------------------------------------------------------- server (child)


def _serve(conn: Any) -> None:
    from aiohttp import web

    from edged.http import create_app

    async def noop(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response({"bytes": len(body)})

    async def main() -> None:
        app = create_app(build_runtime())
        app.router.add_post("/noop", noop)  # benchmark only: the transport's limit
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        conn.send(runner.addresses[0][1])
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until told to stop
        await runner.cleanup()

    asyncio.run(main())


# --------------------------------------------------------------------------- client


def _stats(latencies_s: list[float], wall_s: float, errors: int) -> dict[str, float]:
    ms = sorted(x * 1000.0 for x in latencies_s)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return {
        "requests": len(ms),
        "rps": len(ms) / wall_s,
        "p50_ms": statistics.median(ms),
        "p99_ms": p99,
        "errors": errors,
    }


async def _http_run(url: str, body: bytes, concurrency: int, n: int) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    server: dict[str, list[float]] = {"receive": [], "queue": [], "inspect": [], "own": []}
    errors = 0
    todo = iter(range(n))
    async with aiohttp.ClientSession() as session:
        for _ in range(3):  # warm-up: connections, caches
            async with session.post(url, data=body) as resp:
                await resp.read()

        async def worker() -> None:
            nonlocal errors
            for _ in todo:
                t0 = time.perf_counter()
                async with session.post(url, data=body) as resp:
                    payload = await resp.read()
                    if resp.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - t0)
                if resp.status == 200 and "completeTime" in (ctx := json.loads(payload)):
                    t = ctx["timings_ms"]
                    server["receive"].append(t["receive"])
                    server["queue"].append(t["queue"])
                    server["inspect"].append(t["inspect"])
                    # edged's own work: all but receiving, waiting for a worker and inspecting
                    total_ms = ctx["completeTime"] * 1000.0
                    server["own"].append(total_ms - t["receive"] - t["queue"] - t["inspect"])

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return {"latencies": latencies, "wall": wall, "errors": errors, **server}


def _inprocess_run(runtime: Runtime, image: np.ndarray, concurrency: int, n: int) -> dict[str, Any]:
    inspector = runtime.inspectors["default"]
    ctx = runtime.context("default", "bench")
    for _ in range(3):
        inspector.inspect(image, context=ctx)

    def one(_: int) -> float:
        frame = image.copy()  # new memory per call, like a camera line's (untimed)
        t0 = time.perf_counter()
        inspector.inspect(frame, context=ctx)
        return time.perf_counter() - t0

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as ex:
        latencies = list(ex.map(one, range(n)))
    wall = time.perf_counter() - t0
    return {
        "latencies": latencies,
        "wall": wall,
        "errors": 0,
        "receive": [],
        "queue": [],
        "own": [],
    }


def _merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    lat = [x for r in runs for x in r["latencies"]]
    out: dict[str, Any] = _stats(lat, sum(r["wall"] for r in runs), sum(r["errors"] for r in runs))
    own = [x for r in runs for x in r["own"]]
    if own:
        out["server_receive_p50_ms"] = statistics.median(x for r in runs for x in r["receive"])
        out["server_queue_p50_ms"] = statistics.median(x for r in runs for x in r["queue"])
        out["server_inspect_p50_ms"] = statistics.median(x for r in runs for x in r["inspect"])
        out["server_own_p50_ms"] = statistics.median(own)
    return out


PATHS = ("in-process Inspector", "POST /noop (same body)", "POST /analyze_raw_image")


def run(n: int, rounds: int) -> dict[str, Any]:
    image = frame()
    body = image.tobytes()
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child,), name="edged-bench-http")
    proc.start()
    try:
        port = parent.recv()
        base = f"http://127.0.0.1:{port}"
        analyze = f"{base}/analyze_raw_image?width={WIDTH}&height={HEIGHT}"
        runtime = build_runtime()
        rows: list[dict[str, Any]] = []
        for concurrency in (1, 4):
            # interleaved rounds: load from other processes drifts, and hits all three alike
            runs: dict[str, list[dict[str, Any]]] = {k: [] for k in PATHS}
            per_round = max(1, n // rounds)
            for _ in range(rounds):
                runs[PATHS[0]].append(_inprocess_run(runtime, image, concurrency, per_round))
                runs[PATHS[1]].append(
                    asyncio.run(_http_run(f"{base}/noop", body, concurrency, per_round))
                )
                runs[PATHS[2]].append(asyncio.run(_http_run(analyze, body, concurrency, per_round)))
            rows.extend(
                {"path": path, "concurrency": concurrency} | _merge(runs[path]) for path in PATHS
            )
        runtime.pool.shutdown()
    finally:
        parent.send("stop")
        proc.join(timeout=30)
        if proc.is_alive():
            proc.terminate()
    by = {(r["path"], r["concurrency"]): r for r in rows}
    overhead = {
        c: by[("POST /analyze_raw_image", c)]["p50_ms"] - by[("in-process Inspector", c)]["p50_ms"]
        for c in (1, 4)
    }
    return {
        "recipe": bench_recipe()[0],
        "frame": f"{WIDTH}x{HEIGHT} BGR8 ({len(body)} bytes)",
        "requests_per_row": n,
        "rounds": rounds,
        "rows": rows,
        "overhead_p50_ms": overhead,
    }


def table(report: dict[str, Any]) -> str:
    lines = [
        f"Recipe: {report['recipe']}; frame {report['frame']}; "
        f"{report['requests_per_row']} requests per row in {report['rounds']} interleaved rounds.",
        "",
        "| path | concurrency | req/s | p50 ms | p99 ms | non-200 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['path']} | {r['concurrency']} | {r['rps']:.1f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['errors']} |"
        )
    lines.append("")
    for c, ms in report["overhead_p50_ms"].items():
        lines.append(f"- HTTP overhead beyond the inspection, p50, concurrency {c}: {ms:.2f} ms")
    for r in report["rows"]:
        if "server_own_p50_ms" in r:
            lines.append(
                f"- Inside edged, concurrency {r['concurrency']} (p50): receiving the body "
                f"{r['server_receive_p50_ms']:.2f} ms, waiting for a worker "
                f"{r['server_queue_p50_ms']:.2f} ms, inspecting "
                f"{r['server_inspect_p50_ms']:.2f} ms, everything else "
                f"(decode, Result, JSON) {r['server_own_p50_ms']:.2f} ms"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per row")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per row")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    report = run(max(20, args.requests), max(1, args.rounds))
    print(json.dumps(report, indent=2) if args.json else table(report))


if __name__ == "__main__":
    main()
