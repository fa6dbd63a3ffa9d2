"""Benchmark: edged's memory and throughput with and without ``MALLOC_ARENA_MAX=2``.

glibc gives each thread that allocates its own malloc arena (up to 8 per core);
edged's worker threads, OpenCV's threads and aiohttp each touch large, short-lived
buffers, and freed arena memory is returned to the OS late, so RSS creeps up with
the number of arenas. The systemd unit sets ``MALLOC_ARENA_MAX=2``; this measures
what that does on one workload, run side by side: an HTTP server child process
(edged's app on default settings, as ``tools/bench_http.py`` runs it, but without the
prepared-reference cache, whose bounded bytes are not what is measured here) with and
without the variable, alternating, each fed the same requests —
``/analyze_image`` with a 1280x1024 PNG at concurrency 4, then LTU ``differences``
with a fresh 1024x768 pair at concurrency 2 — and its RSS (``VmRSS``) and peak
(``VmHWM``) read from ``/proc`` at the end, with req/s and the load average.
Run from the repository root::

    .venv/bin/python tools/bench_malloc.py               # ~2-4 min
    .venv/bin/python tools/bench_malloc.py --pairs 1 --requests 60
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2

from tools import bench_http
from tools.bench._frames import make_frames
from tools.bench._ltu import BOUNDARY, URL, multipart, png_bytes, with_text_chunk


def _proc_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    msg = f"/proc/{pid}/status has no {field}"
    raise RuntimeError(msg)


async def _post_all(url: str, bodies: list[bytes], headers: dict[str, str], conc: int) -> int:
    import aiohttp

    todo = iter(bodies)
    failed = 0
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            nonlocal failed
            for body in todo:
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    failed += resp.status != 200

        await asyncio.gather(*(worker() for _ in range(conc)))
    return failed


def one_server(arena_max: str | None, requests: int) -> dict[str, Any]:
    """Start a server child with or without MALLOC_ARENA_MAX, run the workload, measure."""
    saved = os.environ.pop("MALLOC_ARENA_MAX", None)
    if arena_max is not None:
        os.environ["MALLOC_ARENA_MAX"] = arena_max
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(
        target=bench_http._serve,
        args=(child, {"reference_cache_entries": 0}),  # the cache's own bytes would hide it
        name="edged-bench-malloc",
    )
    proc.start()
    if saved is None:
        os.environ.pop("MALLOC_ARENA_MAX", None)
    else:
        os.environ["MALLOC_ARENA_MAX"] = saved
    try:
        base = f"http://127.0.0.1:{parent.recv()}"
        assert proc.pid is not None
        rss_idle = _proc_kb(proc.pid, "VmRSS")
        png = cv2.imencode(".png", bench_http.frame())[1].tobytes()
        fr = make_frames((1024, 768))
        ref, query = png_bytes(fr.reference), png_bytes(fr.defective)
        ltu = [multipart(with_text_chunk(ref, f"r{i}"), query) for i in range(requests // 4)]
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        failed = asyncio.run(
            _post_all(f"{base}/analyze_image", [png] * requests, {"Content-Type": "image/png"}, 4)
        )
        t1 = time.perf_counter()
        headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        failed += asyncio.run(_post_all(base + URL, ltu, headers, 2))
        t2 = time.perf_counter()
        return {
            "arena_max": arena_max or "unset",
            "rss_idle_mb": rss_idle / 1024,
            "rss_mb": _proc_kb(proc.pid, "VmRSS") / 1024,
            "peak_mb": _proc_kb(proc.pid, "VmHWM") / 1024,
            "analyze_rps": requests / (t1 - t0),
            "ltu_rps": len(ltu) / (t2 - t1),
            "failed": failed,
            "load": (load0, os.getloadavg()[0]),
        }
    finally:
        parent.send("stop")
        proc.join(timeout=30)
        if proc.is_alive():
            proc.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=2, help="runs of each, alternating")
    parser.add_argument("--requests", type=int, default=120, help="analyze requests per run")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, Any]]] = {"2": [], "unset": []}
    for _ in range(args.pairs):
        for arena in ("2", None):
            r = one_server(arena, args.requests)
            runs[r["arena_max"]].append(r)
            print(
                f"MALLOC_ARENA_MAX={r['arena_max']}: RSS {r['rss_mb']:.0f} MB (idle "
                f"{r['rss_idle_mb']:.0f}, peak {r['peak_mb']:.0f}), analyze "
                f"{r['analyze_rps']:.1f} req/s, ltu {r['ltu_rps']:.1f} req/s, "
                f"{r['failed']} failed, load {r['load'][0]:.1f}->{r['load'][1]:.1f}",
                flush=True,
            )
    print(f"\n{os.cpu_count()} cores; median of {args.pairs} runs each:")
    med = {k: {f: statistics.median(r[f] for r in v) for f in ("rss_mb", "peak_mb",
           "analyze_rps", "ltu_rps")} for k, v in runs.items()}  # fmt: skip
    for k, m in med.items():
        print(
            f"- MALLOC_ARENA_MAX={k}: RSS {m['rss_mb']:.0f} MB, peak {m['peak_mb']:.0f} MB, "
            f"analyze {m['analyze_rps']:.1f} req/s, ltu {m['ltu_rps']:.1f} req/s"
        )
    a, b = med["2"], med["unset"]
    print(
        f"- with 2 arenas: RSS {100 * (a['rss_mb'] / b['rss_mb'] - 1):+.0f} %, peak "
        f"{100 * (a['peak_mb'] / b['peak_mb'] - 1):+.0f} %, analyze throughput "
        f"{100 * (a['analyze_rps'] / b['analyze_rps'] - 1):+.0f} %"
    )


if __name__ == "__main__":
    main()
