"""Benchmark: HTTP analyze overhead beyond the inspection itself, and the wait queue.

Measures requests/s and p50/p99 latency of

- ``POST /analyze_raw_image`` with a 1280×1024 BGR frame at concurrency 1 and 4,
- ``POST /analyze_image`` with the same frame as a PNG at concurrency 1, 2, 4 and 8
  (edged's default ``http`` settings: 4 slots and a queue of 32, so none of these
  should see a 429; the non-200 column counts any), and the throughput ratio of
  concurrency 4 over 1,
- the same with ``response_type=annotated_image`` at concurrency 1: the answer is
  the frame with its defects drawn, as a PNG (encoding it is part of the request),

next to

- the floor: a no-op route that receives the body exactly as ``analyze_raw_image``
  does (through the analysis gate, with edged's own body reader) and answers a small
  JSON — the transport's and the receive's own cost; the route exists only in this
  benchmark's app, and
- the recipe's Inspector called in-process (no HTTP at all),

with the server's CPU time per request (user + system of all its threads, from
``/proc``; for the in-process row, this process's): less sensitive than wall time to
other work on a shared machine (not immune: contention costs cache misses and
OpenCV's spinning threads), it bounds what idle cores could serve,

and reports the HTTP overhead beyond the inspection (p50 analyze − p50 in-process).
Every figure is the median over interleaved rounds with its spread (min–max of the
per-round values) and the 1-minute load average while it ran: the machine may be
shared. The server runs in a child process (as in production: clients are other
processes); the client is aiohttp in this process.

The recipe is "default-like": the library's ``quality`` check when it is
registered, otherwise a dark-spot check (grey, threshold, connected components)
defined here. Run from the repository root::

    .venv/bin/python tools/bench_http.py            # ~1 min on a quiet machine
    .venv/bin/python tools/bench_http.py --requests 100 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
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


def build_runtime(http: dict[str, Any] | None = None) -> Runtime:
    """The benchmark's runtime: edged's default settings, ``http`` overriding some."""
    _, rc, specs = bench_recipe()
    settings = Settings(recipes={"default": rc}, http=HttpConfig(**(http or {})))
    return Runtime(
        settings=settings,
        metrics=Metrics(),
        pool=WorkerPool(settings.pipeline.workers),
        inspectors={"default": Inspector("default", rc, specs=specs)},
    )


# --------------------------------------------------------------------------- server (child)


def _serve(conn: Any, http: dict[str, Any] | None = None) -> None:
    from aiohttp import web

    from edged.http import create_app
    from edged.http._gate import gated
    from edged.http.pekat import read_body

    async def noop(request: web.Request) -> web.Response:
        """The floor: the gate and edged's body reader, then a small JSON answer."""

        async def nothing(body: bytes | bytearray) -> int:
            return len(body)

        size = await gated(request, lambda: read_body(request), nothing)
        return web.json_response({"bytes": size})

    async def main() -> None:
        app = create_app(build_runtime(http))
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


def _p99(ms: list[float]) -> float:
    ordered = sorted(ms)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def cpu_s(pid: int) -> float:
    """CPU time (user + system, all threads) that process ``pid`` has used, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _http_run(
    url: str, body: bytes, concurrency: int, n: int, server_pid: int
) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    server: dict[str, list[float]] = {"receive": [], "queue": [], "inspect": [], "own": []}
    statuses: dict[int, int] = {}
    todo = iter(range(n))
    load = os.getloadavg()[0]
    async with aiohttp.ClientSession() as session:
        for _ in range(3):  # warm-up: connections, caches
            async with session.post(url, data=body) as resp:
                await resp.read()

        async def worker() -> None:
            for _ in todo:
                t0 = time.perf_counter()
                async with session.post(url, data=body) as resp:
                    payload = await resp.read()
                latencies.append(time.perf_counter() - t0)
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
                json_body = resp.content_type == "application/json"
                if (
                    json_body
                    and resp.status == 200
                    and "completeTime" in (ctx := json.loads(payload))
                ):
                    t = ctx["timings_ms"]
                    server["receive"].append(t["receive"])
                    server["queue"].append(t["queue"])
                    server["inspect"].append(t["inspect"])
                    # edged's own work: all but receiving, waiting for a worker and inspecting
                    total_ms = ctx["completeTime"] * 1000.0
                    server["own"].append(total_ms - t["receive"] - t["queue"] - t["inspect"])

        t0, c0 = time.perf_counter(), cpu_s(server_pid)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall, cpu = time.perf_counter() - t0, cpu_s(server_pid) - c0
    return {
        "latencies": latencies,
        "wall": wall,
        "cpu_s": cpu,
        "statuses": statuses,
        "load": load,
        **server,
    }


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

    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(concurrency) as ex:
        latencies = list(ex.map(one, range(n)))
    wall = time.perf_counter() - t0
    return {
        "latencies": latencies,
        "wall": wall,
        "cpu_s": time.process_time() - c0,
        "statuses": {200: n},
        "load": load,
        "receive": [],
        "queue": [],
        "inspect": [],
        "own": [],
    }


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and spread over rounds of the per-round req/s and p50; p99 over all."""
    lat_ms = [x * 1000.0 for r in runs for x in r["latencies"]]
    rps = _spread([len(r["latencies"]) / r["wall"] for r in runs])
    p50 = _spread([statistics.median(r["latencies"]) * 1000.0 for r in runs])
    statuses: dict[int, int] = {}
    for r in runs:
        for code, count in r["statuses"].items():
            statuses[code] = statuses.get(code, 0) + count
    out: dict[str, Any] = {
        "requests": len(lat_ms),
        "rounds": len(runs),
        "rps": rps["median"],
        "rps_min": rps["min"],
        "rps_max": rps["max"],
        "p50_ms": p50["median"],
        "p50_ms_min": p50["min"],
        "p50_ms_max": p50["max"],
        "p99_ms": _p99(lat_ms),
        "cpu_ms": statistics.median(1000.0 * r["cpu_s"] / len(r["latencies"]) for r in runs),
        "errors": sum(c for code, c in statuses.items() if code != 200),
        "status_429": statuses.get(429, 0),
        "load_min": min(r["load"] for r in runs),
        "load_max": max(r["load"] for r in runs),
    }
    own = [x for r in runs for x in r["own"]]
    if own:
        out["server_receive_p50_ms"] = statistics.median(x for r in runs for x in r["receive"])
        out["server_queue_p50_ms"] = statistics.median(x for r in runs for x in r["queue"])
        out["server_inspect_p50_ms"] = statistics.median(x for r in runs for x in r["inspect"])
        out["server_own_p50_ms"] = statistics.median(own)
    return out


INPROCESS = "in-process Inspector"
NOOP = "POST /noop (edged's receive, no work)"
RAW = "POST /analyze_raw_image"
PNG = "POST /analyze_image (PNG)"
ANNOTATED = "POST /analyze_image?response_type=annotated_image (PNG in, PNG out)"
PATHS = (INPROCESS, NOOP, RAW, PNG, ANNOTATED)
CONCURRENCY: dict[str, tuple[int, ...]] = {
    INPROCESS: (1, 4),
    NOOP: (1, 4),
    RAW: (1, 4),
    PNG: (1, 2, 4, 8),
    ANNOTATED: (1,),
}


def run(n: int, rounds: int) -> dict[str, Any]:
    image = frame()
    raw_body = image.tobytes()
    ok, png = cv2.imencode(".png", image)
    assert ok
    png_body = png.tobytes()
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child,), name="edged-bench-http")
    proc.start()
    try:
        port = parent.recv()
        assert proc.pid is not None
        pid = proc.pid
        base = f"http://127.0.0.1:{port}"
        analyze = f"{base}/analyze_raw_image?width={WIDTH}&height={HEIGHT}"
        runtime = build_runtime()
        cases = [(path, c) for path in PATHS for c in CONCURRENCY[path]]
        # interleaved rounds: load from other processes drifts, and hits every case alike
        runs: dict[tuple[str, int], list[dict[str, Any]]] = {k: [] for k in cases}
        per_round = max(1, n // rounds)
        for _ in range(rounds):
            for path, c in cases:
                if path == INPROCESS:
                    out = _inprocess_run(runtime, image, c, per_round)
                elif path == NOOP:
                    out = asyncio.run(_http_run(f"{base}/noop", raw_body, c, per_round, pid))
                elif path == RAW:
                    out = asyncio.run(_http_run(analyze, raw_body, c, per_round, pid))
                else:
                    url = f"{base}/analyze_image"
                    if path == ANNOTATED:
                        url += "?response_type=annotated_image"
                    out = asyncio.run(_http_run(url, png_body, c, per_round, pid))
                runs[(path, c)].append(out)
        rows: list[dict[str, Any]] = [
            {"path": path, "concurrency": c} | _merge(runs[(path, c)]) for path, c in cases
        ]
        png_scaling = [
            len(runs[(PNG, 4)][i]["latencies"])
            / runs[(PNG, 4)][i]["wall"]
            / (len(runs[(PNG, 1)][i]["latencies"]) / runs[(PNG, 1)][i]["wall"])
            for i in range(rounds)
        ]
        runtime.pool.shutdown()
    finally:
        parent.send("stop")
        proc.join(timeout=30)
        if proc.is_alive():
            proc.terminate()
    by = {(r["path"], r["concurrency"]): r for r in rows}
    overhead = {c: by[(RAW, c)]["p50_ms"] - by[(INPROCESS, c)]["p50_ms"] for c in (1, 4)}
    return {
        "recipe": bench_recipe()[0],
        "frame": f"{WIDTH}x{HEIGHT} BGR8 ({len(raw_body)} bytes raw, {len(png_body)} bytes PNG)",
        "requests_per_row": n,
        "rounds": rounds,
        "cores": os.cpu_count(),
        "rows": rows,
        "overhead_p50_ms": overhead,
        "png_c4_over_c1": _spread(png_scaling),
    }


def table(report: dict[str, Any]) -> str:
    lines = [
        f"Recipe: {report['recipe']}; frame {report['frame']}; "
        f"{report['requests_per_row']} requests per row in {report['rounds']} interleaved "
        f"rounds; {report['cores']} cores. Median over rounds [min–max].",
        "",
        "| path | concurrency | req/s | p50 ms | p99 ms | CPU ms/req | non-200 (429) "
        "| load 1 min |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['path']} | {r['concurrency']} | {r['rps']:.1f} "
            f"[{r['rps_min']:.1f}–{r['rps_max']:.1f}] | {r['p50_ms']:.2f} "
            f"[{r['p50_ms_min']:.2f}–{r['p50_ms_max']:.2f}] | {r['p99_ms']:.2f} | "
            f"{r['cpu_ms']:.1f} | {r['errors']} ({r['status_429']}) | "
            f"{r['load_min']:.1f}–{r['load_max']:.1f} |"
        )
    lines.append("")
    s = report["png_c4_over_c1"]
    lines.append(
        f"- /analyze_image PNG throughput, concurrency 4 over 1 (same round): "
        f"{s['median']:.2f}× [{s['min']:.2f}–{s['max']:.2f}]"
    )
    for r in report["rows"]:
        if r["path"] == PNG and r["concurrency"] == 4:
            lines.append(
                f"- /analyze_image PNG costs the server {r['cpu_ms']:.1f} ms of CPU per request "
                f"(all threads): at most {report['cores'] * 1000.0 / r['cpu_ms']:.0f} req/s on "
                f"{report['cores']} idle cores (an estimate: CPU per request moves less "
                "with other load than wall time does)"
            )
    for c, ms in report["overhead_p50_ms"].items():
        lines.append(f"- HTTP overhead beyond the inspection, p50, concurrency {c}: {ms:.2f} ms")
    for r in report["rows"]:
        if r["path"] == RAW and "server_own_p50_ms" in r:
            lines.append(
                f"- Inside edged, raw, concurrency {r['concurrency']} (p50): receiving the body "
                f"{r['server_receive_p50_ms']:.2f} ms, waiting for a worker "
                f"{r['server_queue_p50_ms']:.2f} ms, inspecting "
                f"{r['server_inspect_p50_ms']:.2f} ms, everything else "
                f"(decode, Result, JSON) {r['server_own_p50_ms']:.2f} ms"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per row")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per row")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    report = run(max(20, args.requests), max(1, args.rounds))
    print(json.dumps(report, indent=2) if args.json else table(report))


if __name__ == "__main__":
    main()
