"""Section: LTU ``differences`` over HTTP against the scikit-image SSIM recipe.

The LTU client's usual pattern is one golden image and many queries. Three ways
are timed in interleaved rounds, on the benchmark's label frames encoded as PNG:

* **fresh pair**: ``POST /v2/services/image/differences`` whose ``image1`` bytes are
  new to the server every time (a ``tEXt`` chunk with a counter makes each PNG
  unique; the pixels are the same), so image1 is decoded and prepared per request;
* **repeated reference**: the same ``image1`` bytes every time, so edged's
  prepared-reference cache answers for it and only image2 is decoded;
* **SSIM recipe** in this process on the decoded frames (no HTTP, no decode): grey,
  ``structural_similarity(full=True)``, Otsu, contours (``_peers.ssim_recipe``);
* **the floor**: image2's PNG decoded alone in this process, by edged's decoder
  (:mod:`edged.imaging.png` where it applies) and by ``cv2.imdecode``. A repeated
  reference cannot answer faster than its image2 decodes, so SSIM over this floor is
  the highest speed-up any PNG service can show on these frames; the table says so
  beside each target.

HTTP figures include the client's round trip, the multipart body and both decodes.
The server is edged's app on its default settings in a child process. The speed-up
is the SSIM median over the LTU median measured in the same rounds; the load
average is reported beside it because the machine may be shared. Beside the wall
time, each way's CPU time (the server's, all threads, for HTTP; this process's for
SSIM) and their ratio, which other load on the machine moves less.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import multiprocessing as mp
import os
import statistics
import struct
import time
import zlib
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from edged.http._decode import decode_encoded
from tools.bench._context import Bench
from tools.bench._frames import size_label
from tools.bench._measure import Samples, interleaved
from tools.bench._peers import ssim_recipe
from tools.bench._report import SectionReport, fmt_spread, judge, not_available
from tools.bench_http import cpu_s

NAME = "ltu"
TITLE = "LTU differences over HTTP vs SSIM recipe"
FRESH = "LTU differences, fresh pair (HTTP, decode included)"
REPEATED = "LTU differences, repeated reference (HTTP, decode included)"
SSIM = "scikit-image SSIM recipe (in-process, decoded frames)"
FLOOR = "floor: image2's PNG decoded alone (edged's decoder, in-process)"
OPENCV = "image2's PNG decoded alone by cv2.imdecode (in-process)"
FULL_SIZES = ((2448, 2048), (1024, 768))
QUICK_SIZES = ((640, 512),)
GOALS = {(2448, 2048): (4.0, 8.0), (1024, 768): (3.0, 6.0)}
"""Issue 21's targets: SSIM over LTU for (fresh, repeated)."""
URL = "/v2/services/image/differences"
BOUNDARY = "edged-bench-boundary"


def png_bytes(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover
        msg = "PNG encoding failed"
        raise RuntimeError(msg)
    return buf.tobytes()


def with_text_chunk(png: bytes, text: str) -> bytes:
    """``png`` with a ``tEXt`` chunk after IHDR: other bytes, the same pixels."""
    data = b"Comment\x00" + text.encode("latin-1")
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + data) & 0xFFFFFFFF)
    ihdr_end = 8 + 4 + 4 + 13 + 4
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def multipart(image1: bytes, image2: bytes) -> bytes:
    """A multipart/form-data body with two PNG file parts (built once, sent as bytes)."""
    out = bytearray()
    for name, data in (("image1", image1), ("image2", image2)):
        out += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{name}.png"\r\nContent-Type: image/png\r\n\r\n'
        ).encode()
        out += data + b"\r\n"
    out += f"--{BOUNDARY}--\r\n".encode()
    return bytes(out)


def _serve(conn: Any) -> None:
    """The child process: edged's app with default settings on a free port."""
    from aiohttp import web

    from edged.http import create_app
    from tools.bench_http import build_runtime

    async def main() -> None:
        runner = web.AppRunner(create_app(build_runtime()), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        conn.send(runner.addresses[0][1])
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        await runner.cleanup()

    asyncio.run(main())


class _Client:
    """A synchronous face on one aiohttp session (the timing helpers call plain functions)."""

    def __init__(self, base: str) -> None:
        import aiohttp

        self.base = base
        self.loop = asyncio.new_event_loop()
        self.session = self.loop.run_until_complete(self._open(aiohttp))

    @staticmethod
    async def _open(aiohttp: Any) -> Any:
        return aiohttp.ClientSession()

    def post(self, body: bytes) -> dict[str, Any]:
        return self.loop.run_until_complete(self._post(body))

    async def _post(self, body: bytes) -> dict[str, Any]:
        headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        async with self.session.post(self.base + URL, data=body, headers=headers) as resp:
            doc: dict[str, Any] = json.loads(await resp.read())
            if resp.status != 200:
                msg = f"differences answered {resp.status}: {doc['details']['message']}"
                raise RuntimeError(msg)
            return doc

    def close(self) -> None:
        self.loop.run_until_complete(self.session.close())
        self.loop.close()


def run(bench: Bench) -> SectionReport:
    try:
        importlib.import_module("skimage.metrics")
    except ImportError:
        return not_available(NAME, TITLE, "scikit-image is not installed")
    report = SectionReport(NAME, TITLE)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child,), name="edged-bench-ltu")
    proc.start()
    try:
        client = _Client(f"http://127.0.0.1:{parent.recv()}")
        assert proc.pid is not None
        try:
            for size in QUICK_SIZES if bench.quick else FULL_SIZES:
                _run_size(bench, client, proc.pid, size, report)
        finally:
            client.close()
    finally:
        parent.send("stop")
        proc.join(timeout=30)
        if proc.is_alive():
            proc.terminate()
    return report


def _run_size(
    bench: Bench, client: _Client, server_pid: int, size: tuple[int, int], report: SectionReport
) -> None:
    fr = bench.frames(size)
    ref, query = fr.reference, fr.defective
    ref_png, query_png = png_bytes(ref), png_bytes(query)
    repeated_body = multipart(ref_png, query_png)
    counter = iter(range(10**9))
    answers: dict[str, list[dict[str, Any]]] = {FRESH: [], REPEATED: []}
    cpu_ms: dict[str, list[float]] = {FRESH: [], REPEATED: [], SSIM: [], FLOOR: [], OPENCV: []}

    def fresh() -> None:
        body = multipart(with_text_chunk(ref_png, f"request {next(counter)}"), query_png)
        c0 = cpu_s(server_pid)
        answers[FRESH].append(client.post(body))
        cpu_ms[FRESH].append(1000.0 * (cpu_s(server_pid) - c0))

    def repeated() -> None:
        c0 = cpu_s(server_pid)
        answers[REPEATED].append(client.post(repeated_body))
        cpu_ms[REPEATED].append(1000.0 * (cpu_s(server_pid) - c0))

    def ssim_call() -> None:
        c0 = time.process_time()
        ssim_recipe(ref, query)
        cpu_ms[SSIM].append(1000.0 * (time.process_time() - c0))

    def floor() -> None:
        c0 = time.process_time()
        decode_encoded(query_png, max_pixels=1 << 30)
        cpu_ms[FLOOR].append(1000.0 * (time.process_time() - c0))

    query_array = np.frombuffer(query_png, np.uint8)

    def opencv() -> None:
        c0 = time.process_time()
        cv2.imdecode(query_array, cv2.IMREAD_COLOR)
        cpu_ms[OPENCV].append(1000.0 * (time.process_time() - c0))

    items: dict[str, Callable[[], object]] = {
        FRESH: fresh,
        REPEATED: repeated,
        SSIM: ssim_call,
        FLOOR: floor,
        OPENCV: opencv,
    }
    big = size[0] * size[1] > 3_000_000
    load0 = os.getloadavg()[0]
    samples = interleaved(items, rounds=bench.reps(9 if big else 15, 3), warmup=1)
    load1 = os.getloadavg()[0]
    label = size_label(size)
    same = all(
        a["result"] == answers[FRESH][0]["result"] for a in answers[FRESH] + answers[REPEATED]
    )
    sources = {a["details"]["info"].get("reference") for a in answers[REPEATED][1:]}
    note = f"load {load0:.1f}→{load1:.1f}"
    ssim = samples[SSIM]
    cpu = {k: statistics.median(v[1:]) for k, v in cpu_ms.items()}  # [0]: the warm-up
    for name, s in samples.items():
        text = f"{_fmt(s)} · CPU {cpu[name]:.0f} ms · {note}"
        extra: dict[str, float | int | str | bool | None] = {
            "min_ms": s.min_ms,
            "max_ms": s.max_ms,
            "p99_ms": s.p99_ms,
            "n": s.n,
            "load_start": load0,
            "load_end": load1,
            "cpu_ms": cpu[name],
        }
        if name in (FRESH, REPEATED):
            ratio = ssim.median_ms / s.median_ms
            cpu_ratio = cpu[SSIM] / cpu[name] if cpu[name] > 0 else float("nan")
            text += f" · {ratio:.1f}× faster than SSIM (CPU: {cpu_ratio:.1f}×)"
            extra["ssim_speedup"] = ratio
            extra["ssim_cpu_ratio"] = cpu_ratio
            extra["same_answer"] = same
        if name == REPEATED:
            extra["reference"] = ",".join(sorted(str(x) for x in sources))
        report.add(name, s.median_ms, "ms", label, text, **extra)
    if not same:
        report.note = (report.note + "; " if report.note else "") + (
            f"{label}: fresh and repeated answers differ"
        )
    goals = GOALS.get(size)
    if goals is None:
        return
    cap = ssim.median_ms / samples[FLOOR].median_ms
    for name, goal in zip((FRESH, REPEATED), goals, strict=True):
        ratio = ssim.median_ms / samples[name].median_ms
        bound = f"{note}; image2's decode alone caps it at {cap:.1f}×"
        report.targets.append(
            judge(
                f"{'fresh' if name == FRESH else 'repeated'} differences vs SSIM",
                f"≥ {goal:g}× faster",
                ratio,
                "x",
                ok=ratio >= goal,
                metric=name,
                size=label,
                note=bound,
            )
        )


def _fmt(s: Samples) -> str:
    return fmt_spread(s.median_ms, s.min_ms, s.max_ms, "ms")
