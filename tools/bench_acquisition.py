"""Acquisition benchmark: hand-over, debayer, unpack, event-loop lag with cameras.

Run from the repository root::

    python tools/bench_acquisition.py            # everything, ~40 s
    python tools/bench_acquisition.py --skip-cameras

Prints medians (and p99 where it matters) and ratios against a baseline measured in
the same run:

1. hand-over of a 2448x2048 BayerRG8 frame from a spawned child process to the
   daemon's event loop through the shared-memory ring (child copy into the slot,
   pipe message, loop wake-up, then a leased view of the slot — GenicamSource's
   default — or, on alternate frames, its fallback copy out in a thread) — the
   GenICam path minus the camera;
2. BayerRG8 -> BGR bilinear through ``edged.imaging.pixfmt.decode`` vs a bare
   ``cv2.cvtColor`` on the same array;
3. Mono12p unpack (8-bit and 16-bit output), 2448x2048;
4. event-loop lag (p99 of a 5 ms sleep's overshoot) with three viky.cti cameras
   streaming 800x800 Mono8 at 50 fps through GenicamSource; baseline: the same
   probe with no cameras.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edged.core.frames import Frame
from edged.imaging import pixfmt
from edged.sources._genicam_messages import Release
from edged.sources._shm_ring import FrameMeta, Ring, RingWriter

W, H = 2448, 2048


def interleaved(fns: dict[str, Callable[[], object]], reps: int) -> dict[str, list[float]]:
    """Time each function ``reps`` times, round-robin, so every one sees the same
    background load (the ratios stay meaningful on a busy machine)."""
    for fn in fns.values():
        fn()  # warm up
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            out[name].append(time.perf_counter() - t0)
    return out


def ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1e3:7.3f} ms (best {min(values) * 1e3:6.3f})"


def p99(values: list[float]) -> float:
    return float(np.percentile(values, 99))


# --------------------------------------------------------------------------- 1. hand-over


def _producer(
    name: str,
    slots: int,
    slot_bytes: int,
    n: int,
    fps: float,
    events: Connection,
    commands: Connection,
) -> None:
    """Child: writes n BayerRG8 frames into the ring like the GenICam child does."""
    import threading

    ring = RingWriter(name, slots, slot_bytes)

    def releases() -> None:
        while True:
            try:
                msg = commands.recv()
            except EOFError:
                return
            ring.release(msg.slot)

    threading.Thread(target=releases, daemon=True).start()
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (H, W), dtype=np.uint8) for _ in range(2)]
    period = 1.0 / fps
    next_t = time.monotonic()
    for i in range(n):
        next_t += period
        time.sleep(max(0.0, next_t - time.monotonic()))
        slot = None
        while slot is None:
            slot = ring.acquire(1.0)
        t0 = time.monotonic_ns()  # the child holds the frame
        meta = FrameMeta(slot, H * W, "uint8", (H, W), "BayerRG8", W, H, t0)
        ring.write(slot, frames[i % 2])  # then, as in _genicam_child: copy, announce
        events.send(("frame", meta, time.monotonic_ns()))
    events.send(("done",))
    ring.close()


async def bench_handover(n: int = 240, fps: float = 30.0) -> dict[str, list[float]]:
    ctx = mp.get_context("spawn")
    ring = Ring(4, W * H)
    ev_r, ev_w = ctx.Pipe(duplex=False)
    cmd_r, cmd_w = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_producer, args=(ring.name, ring.slots, ring.slot_bytes, n, fps, ev_w, cmd_r)
    )
    proc.start()
    ev_w.close()
    cmd_r.close()
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    def on_readable() -> None:
        while ev_r.poll():
            queue.put_nowait((*ev_r.recv(), time.monotonic_ns()))

    loop.add_reader(ev_r.fileno(), on_readable)
    from concurrent.futures import ThreadPoolExecutor

    copier = ThreadPoolExecutor(1)
    released = 0

    def send_release(slot: int) -> None:
        nonlocal released
        released += 1
        cmd_w.send(Release(slot))

    def lease_ended(slot: int) -> None:  # the frame's finalizer, any thread
        loop.call_soon_threadsafe(send_release, slot)

    out: dict[str, list[float]] = {
        k: []
        for k in ("lease", "copy", "child_write", "transit", "copy_out", "daemon", "after_copy")
    }
    i = 0
    try:
        while True:
            msg = await queue.get()
            if msg[0] == "done":
                break
            meta: FrameMeta = msg[1]
            out["child_write"].append((msg[2] - meta.host_ts_ns) / 1e9)
            out["transit"].append((msg[3] - msg[2]) / 1e9)
            leased = i % 2 == 0  # alternate the two paths GenicamSource takes
            i += 1
            if leased:
                data = ring.lease(meta, lease_ended)
            else:
                t_copy = time.perf_counter()
                data = await loop.run_in_executor(copier, ring.copy_out, meta)
                out["copy_out"].append(time.perf_counter() - t_copy)
            frame = Frame(
                data=data,
                pixel_format=meta.pixel_format,
                width=meta.width,
                height=meta.height,
                camera="bench",
                seq=0,
                host_ts_ns=meta.host_ts_ns,
            )
            t_frame = time.monotonic_ns()
            out["lease" if leased else "copy"].append((t_frame - meta.host_ts_ns) / 1e9)
            if leased:  # from the message read to the Frame: the daemon's own work
                out["daemon"].append((t_frame - msg[3]) / 1e9)
                out["after_copy"].append((t_frame - msg[2]) / 1e9)
            del frame, data  # the pipeline is done with it: a leased slot goes back
            if not leased:
                send_release(meta.slot)
    finally:
        loop.remove_reader(ev_r.fileno())
        copier.shutdown()
        proc.join(10)
        ring.close()
    assert released == n, f"expected {n} slots back, got {released}"
    return {k: v[3:] for k, v in out.items()}


# --------------------------------------------------------------------------- 2./3. pixels


def bench_pixels() -> dict[str, list[float]]:
    rng = np.random.default_rng(1)
    raw8 = rng.integers(0, 256, (H, W), dtype=np.uint8)
    f8 = Frame(
        data=raw8, pixel_format="BayerRG8", width=W, height=H, camera="b", seq=0, host_ts_ns=0
    )
    px12 = rng.integers(0, 4096, H * W, dtype=np.uint16)
    v = px12[0::2].astype(np.uint32) | (px12[1::2].astype(np.uint32) << 12)
    packed = np.empty((v.size, 3), np.uint8)
    packed[:, 0], packed[:, 1], packed[:, 2] = v & 0xFF, (v >> 8) & 0xFF, (v >> 16) & 0xFF
    f12 = Frame(
        data=packed.reshape(-1),
        pixel_format="Mono12p",
        width=W,
        height=H,
        camera="b",
        seq=0,
        host_ts_ns=0,
    )
    fb12 = Frame(
        data=packed.reshape(-1),
        pixel_format="BayerRG12p",
        width=W,
        height=H,
        camera="b",
        seq=0,
        host_ts_ns=0,
    )
    return interleaved(
        {
            "cvtColor": lambda: cv2.cvtColor(raw8, cv2.COLOR_BayerRGGB2BGR),
            "decode_bayer8": lambda: pixfmt.decode(f8),
            "copy": lambda: raw8.copy(),
            "mono12p_8": lambda: pixfmt.decode(f12),
            "mono12p_16": lambda: pixfmt.decode_high(f12),
            "bayer12p_bgr": lambda: pixfmt.decode(fb12),
        },
        reps=40,
    )


# --------------------------------------------------------------------------- 4. loop lag


async def probe_lag(seconds: float) -> list[float]:
    samples: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        await asyncio.sleep(0.005)
        samples.append(time.perf_counter() - t0 - 0.005)
    return samples


async def bench_cameras(seconds: float = 6.0) -> dict[str, Any]:
    import genicam

    from edged.config import CameraConfig
    from edged.sources.genicam import GenicamSource

    cti = str(Path(genicam.__file__).parent / "viky.cti")
    baseline = await probe_lag(seconds / 2)
    sources = []
    for serial in ("0", "1", "2"):
        cfg = CameraConfig.model_validate(
            {
                "source": "genicam",
                "recipe": "r",
                "genicam": {
                    "cti": [cti],
                    "serial": serial,
                    "features": {
                        "Width": 800,
                        "Height": 800,
                        "PixelFormat": "Mono8",
                        "AcquisitionFrameRate": 50.0,
                    },
                },
            }
        )
        sources.append(GenicamSource(f"cam{serial}", cfg))
    await asyncio.gather(*(s.start() for s in sources))
    counts = [0, 0, 0]

    async def pump(i: int) -> None:
        while True:
            await sources[i].read()
            counts[i] += 1

    tasks = [asyncio.create_task(pump(i), name=f"bench-pump-{i}") for i in range(3)]
    try:
        await asyncio.sleep(1.0)  # settle
        start = counts.copy()
        t0 = time.perf_counter()
        with_cams = await probe_lag(seconds)
        span = time.perf_counter() - t0
        fps = [(c - s) / span for c, s in zip(counts, start, strict=True)]
        dropped = [s.state().dropped for s in sources]
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(s.stop() for s in sources))
    return {"baseline": baseline, "cameras": with_cams, "fps": fps, "dropped": dropped}


# --------------------------------------------------------------------------- main


async def main(skip_cameras: bool) -> None:
    print(
        f"edged acquisition benchmark  ({W}x{H} frames, OpenCV {cv2.__version__}, "
        f"NumPy {np.__version__}, {mp.cpu_count()} CPUs)"
    )
    ho = await bench_handover()
    print("\n1. hand-over child -> daemon, BayerRG8 2448x2048 at 30 fps")
    print("   (from the child holding the frame to the daemon holding a Frame)")
    print(
        f"   leased (default)  {ms(ho['lease'])}  p99 {p99(ho['lease']) * 1e3:7.3f} ms "
        f"({len(ho['lease'])} frames)"
    )
    print(
        f"   copied (fallback) {ms(ho['copy'])}  p99 {p99(ho['copy']) * 1e3:7.3f} ms "
        f"({len(ho['copy'])} frames)"
    )
    print(
        f"   after the copy    {ms(ho['after_copy'])}  p99 {p99(ho['after_copy']) * 1e3:7.3f} ms "
        "(slot written -> Frame, leased)"
    )
    print(f"   child slot write  {ms(ho['child_write'])}  (in the child, both paths)")
    print(f"   pipe + loop wake  {ms(ho['transit'])}  (child's send -> message read)")
    print(f"   daemon, leased    {ms(ho['daemon'])}  (message read -> Frame, on the loop)")
    print(f"   copy out (thread) {ms(ho['copy_out'])}  (copied path only, off the loop)")

    px = bench_pixels()
    base = statistics.median(px["cvtColor"])
    print("\n2. BayerRG8 -> BGR bilinear")
    print(f"   bare cv2.cvtColor {ms(px['cvtColor'])}")
    print(
        f"   pixfmt.decode     {ms(px['decode_bayer8'])}  "
        f"ratio {statistics.median(px['decode_bayer8']) / base:.2f}x "
        f"(best/best {min(px['decode_bayer8']) / min(px['cvtColor']):.2f}x)"
    )
    print("\n3. Mono12p unpack")
    print(f"   to 8-bit          {ms(px['mono12p_8'])}")
    print(f"   to 16-bit         {ms(px['mono12p_16'])}")
    print(f"   BayerRG12p -> BGR {ms(px['bayer12p_bgr'])}")
    print(f"   (bare frame copy  {ms(px['copy'])})")

    if skip_cameras:
        return
    cams = await bench_cameras()
    print("\n4. event-loop lag, three viky cameras 800x800 Mono8 at 50 fps")
    print(
        f"   no cameras        p99 {p99(cams['baseline']) * 1e3:6.3f} ms  "
        f"median {statistics.median(cams['baseline']) * 1e3:6.3f} ms"
    )
    print(
        f"   three cameras     p99 {p99(cams['cameras']) * 1e3:6.3f} ms  "
        f"median {statistics.median(cams['cameras']) * 1e3:6.3f} ms"
    )
    print(
        f"   delivered fps     {', '.join(f'{f:.1f}' for f in cams['fps'])}  "
        f"dropped {cams['dropped']}"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-cameras", action="store_true")
    asyncio.run(main(ap.parse_args().skip_cameras))
