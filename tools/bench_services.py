"""Benchmark: what each two-image HTTP service costs a client, fresh and repeated reference.

    python tools/bench_services.py                 # 1024x768 and 2448x2048, ~2 min
    python tools/bench_services.py --rounds 5 --size 1024x768

For LTU ``differences``, ``alignmentMatrix`` and ``distance`` and PixLab ``imgdiff``
(multipart PNG pair, the benchmark's label frames), in interleaved rounds against
edged's app on its default settings in a child process:

- **fresh**: the reference's bytes are new every time (a ``tEXt`` chunk with a
  counter; the same pixels), so it is decoded and prepared per request;
- **repeated**: the same reference bytes every time (LTU clients' usual pattern: one
  golden image, many queries); the LTU services keep it prepared
  (``details.info.reference`` says ``cached``), ``imgdiff`` keeps nothing.

Round-trip wall time as the client sees it, median [min-max] in ms, with the load
average; every answer of a service is checked to be the same in both ways.
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
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.bench._frames import make_frames
from tools.bench._ltu import _serve, png_bytes, with_text_chunk

SERVICES: dict[str, tuple[str, str, str, str]] = {
    # name: (path, reference field, query field, what to compare in the answer)
    "LTU differences": ("/v2/services/image/differences", "image1", "image2", "result"),
    "LTU alignmentMatrix": ("/v2/services/image/alignmentMatrix", "image1", "image2", "result"),
    "LTU distance": ("/v2/services/image/distance", "refImage", "queryImage", "result"),
    "PixLab imgdiff": ("/imgdiff", "src", "target", "diff"),
}


def _parse_size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    return w, h


async def _run_size(base: str, size: tuple[int, int], rounds: int) -> list[str]:
    import aiohttp

    frames = make_frames(size)
    ref, query = png_bytes(frames.reference), png_bytes(frames.defective)
    times: dict[tuple[str, str], list[float]] = {}
    answers: dict[str, list[Any]] = {name: [] for name in SERVICES}
    load0 = os.getloadavg()[0]
    async with aiohttp.ClientSession() as session:
        for i in range(rounds + 1):  # round 0 warms up
            for name, (path, ref_field, query_field, key) in SERVICES.items():
                for way in ("fresh", "repeated"):
                    image1 = with_text_chunk(ref, f"round {i}") if way == "fresh" else ref
                    form = aiohttp.FormData()
                    form.add_field(ref_field, image1, filename="1.png", content_type="image/png")
                    form.add_field(query_field, query, filename="2.png", content_type="image/png")
                    t0 = time.perf_counter()
                    async with session.post(base + path, data=form) as resp:
                        doc = json.loads(await resp.read())
                        if resp.status != 200:
                            msg = f"{name} answered {resp.status}: {doc}"
                            raise RuntimeError(msg)
                    if i > 0:
                        times.setdefault((name, way), []).append(
                            (time.perf_counter() - t0) * 1000.0
                        )
                    answers[name].append(doc[key])
    load1 = os.getloadavg()[0]
    w, h = size
    rows = [f"| {w}×{h} | | | load {load0:.1f}→{load1:.1f} |"]
    for name in SERVICES:
        same = all(a == answers[name][0] for a in answers[name])
        cells = []
        for way in ("fresh", "repeated"):
            ms = times[(name, way)]
            cells.append(f"{statistics.median(ms):.1f} [{min(ms):.1f}–{max(ms):.1f}]")
        note = "same answers" if same else "**answers differ**"
        rows.append(f"| {name} | {cells[0]} | {cells[1]} | {note} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=12, help="timed rounds per service and way")
    ap.add_argument("--size", action="append", type=_parse_size, help="WxH (repeatable)")
    args = ap.parse_args(argv)
    sizes = args.size or [(1024, 768), (2448, 2048)]
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child,), name="edged-bench-services")
    proc.start()
    try:
        base = f"http://127.0.0.1:{parent.recv()}"
        print("| service | fresh reference, ms | repeated reference, ms | |")
        print("| --- | --- | --- | --- |")
        for size in sizes:
            for row in asyncio.run(_run_size(base, size, max(1, args.rounds))):
                print(row)
    finally:
        parent.send("stop")
        proc.join(timeout=30)
        if proc.is_alive():
            proc.terminate()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
