"""Benchmark: recognition models — edged's inference against bare onnxruntime, and
the Deepomatic task round trip over HTTP.

1. Per image, side by side in one run (interleaved repetitions, one intra-op thread
   each): edged's ``Recognizer.recognize`` (preprocess + run + post-process) against
   bare ``InferenceSession.run`` on the same model with the tensor edged prepares.
   Models: a 224 px CNN classifier built here with ``onnx.helper`` (seeded weights,
   ~0.3 G multiply-adds), fed a 224 x 224 image and a 640 x 480 camera frame; and the shipped
   public models when their packages are installed. Reports medians with the
   interquartile range and edged's overhead in percent (target < 15 % for the
   224 px classifier).
2. HTTP: edged serves the API in a child process; aiohttp clients POST an image to
   ``/v0.7/recognition/versions/{id}/inference`` and poll ``/v0.7/tasks/{id}/``
   every 5 ms until ``success``. Round-trip latency (median, p90) and throughput at 1, 4 and
   8 concurrent clients.

Run from the repository root (needs the ``bench`` or ``test`` extra for ``onnx``)::

    .venv/bin/python tools/bench_models.py            # ~1 min
    .venv/bin/python tools/bench_models.py --quick --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edged.models import NetworkConfig, PostProcessing, Recognizer, SessionOptions, SpecOutputs
from edged.models.preprocess import preprocess
from edged.models.public import PUBLIC_MODELS

N_CLASSES = 10


# --------------------------------------------------------------------------- models


def cnn_224(seed: int = 0) -> bytes:
    """A small CNN of about 0.3 G multiply-adds (MobileNet-class cost): four stages of a
    stride-2 and a stride-1 3x3 convolution (24-48-96-192 channels) with ReLU, global
    pool, a dense layer to 10 logits. Input ``input`` (1, 3, 224, 224)."""
    rng = np.random.default_rng(seed)
    layers = [(3, 24, 2), (24, 24, 1), (24, 48, 2), (48, 48, 1)]
    layers += [(48, 96, 2), (96, 96, 1), (96, 192, 2), (192, 192, 1)]
    nodes, inits = [], []
    prev = "input"
    for i, (cin, cout, stride) in enumerate(layers):
        w = rng.normal(0, (2.0 / (9 * cin)) ** 0.5, (cout, cin, 3, 3)).astype(np.float32)
        b = np.zeros(cout, np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes.append(
            helper.make_node(
                "Conv",
                [prev, f"w{i}", f"b{i}"],
                [f"c{i}"],
                strides=[stride, stride],
                pads=[1, 1, 1, 1],
            )
        )
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        prev = f"r{i}"
    chans = [192]
    dense = rng.normal(0, 0.2, (chans[-1], N_CLASSES)).astype(np.float32)
    inits += [
        numpy_helper.from_array(dense, "wd"),
        numpy_helper.from_array(np.zeros(N_CLASSES, np.float32), "bd"),
    ]
    nodes += [
        helper.make_node("GlobalAveragePool", [prev], ["gp"]),
        helper.make_node("Flatten", ["gp"], ["flat"]),
        helper.make_node("Gemm", ["flat", "wd", "bd"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "cnn224",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, N_CLASSES])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


PREPROCESSING: dict[str, Any] = {
    "inputs": [
        {
            "tensor_name": "input",
            "image": {
                "resize_type": "SQUASH",
                "target_size": "224x224",
                "pixel_scaling": 1.0,
                "mean": [0.485, 0.456, 0.406],
                "std": [0.229, 0.224, 0.225],
                "color_channels": "RGB",
            },
        }
    ]
}
SPEC: dict[str, Any] = {
    "outputs": [{"labels": {"labels": [{"id": i, "name": f"class{i}"} for i in range(N_CLASSES)]}}]
}
POST: dict[str, Any] = {"classification": {"output_tensor": "logits"}}


def classifier() -> tuple[bytes, Recognizer]:
    model = cnn_224()
    rec = Recognizer(
        model,
        network=NetworkConfig.model_validate(PREPROCESSING),
        spec=SpecOutputs.model_validate(SPEC),
        post=PostProcessing.model_validate(POST),
        options=SessionOptions(threads=1),
    )
    return model, rec


def scene(w: int, h: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 90, np.uint8)
    for _ in range(12):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.circle(img, (x, y), int(rng.integers(5, max(6, w // 6))), colour, -1)
    return img


# --------------------------------------------------------------------------- timing


def _q(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def summary_ms(values: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(values) * 1e3, 4),
        "p25_ms": round(_q(values, 0.25) * 1e3, 4),
        "p75_ms": round(_q(values, 0.75) * 1e3, 4),
        "n": len(values),
    }


def interleaved(fns: dict[str, Callable[[], object]], reps: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():  # warm up
        fn()
        fn()
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def _bare_session(model: bytes) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def compare(
    name: str, model: bytes, rec: Recognizer, image: np.ndarray, reps: int
) -> dict[str, Any]:
    """edged recognize(image) against bare session.run(prepared tensor)."""
    tensor, geometry = preprocess(image, rec.network.image)
    outs = rec.run_tensor(tensor)
    session = _bare_session(model)
    in_name = rec.network.image_input.tensor_name
    times = interleaved(
        {
            "edged": lambda: rec.recognize(image),
            "bare": lambda: session.run(None, {in_name: tensor}),
            "preprocess": lambda: preprocess(image, rec.network.image),
            "postprocess": lambda: rec.postprocess(outs, geometry),
        },
        reps,
    )
    own = statistics.median(times["preprocess"]) + statistics.median(times["postprocess"])
    edged, bare = statistics.median(times["edged"]), statistics.median(times["bare"])
    # Each repetition runs both back to back: the median of the per-repetition ratios
    # is steadier than the ratio of medians on a shared machine.
    paired = statistics.median(e / b for e, b in zip(times["edged"], times["bare"], strict=True))
    return {
        "model": name,
        "image_wh": [image.shape[1], image.shape[0]],
        "edged": summary_ms(times["edged"]),
        "bare_onnxruntime": summary_ms(times["bare"]),
        "overhead_per": round((edged / bare - 1.0) * 100.0, 1),
        "overhead_paired_per": round((paired - 1.0) * 100.0, 1),
        "overhead_best_per": round((min(times["edged"]) / min(times["bare"]) - 1.0) * 100.0, 1),
        "preprocess": summary_ms(times["preprocess"]),
        "postprocess": summary_ms(times["postprocess"]),
        # edged's own work timed alone, against the bare run: steady on a busy machine
        "overhead_own_per": round(own / bare * 100.0, 1),
    }


def bench_inference(reps: int) -> list[dict[str, Any]]:
    model, rec = classifier()
    out = [
        compare("cnn-224 classifier", model, rec, scene(224, 224), reps),
        compare("cnn-224 classifier", model, rec, scene(640, 480), reps),
    ]
    samples = {
        "text-orientation-v1": scene(192, 48),
        "document-layout-v1": scene(608, 800),
    }
    for name, public in PUBLIC_MODELS.items():
        path = public.path()
        if path is None:
            out.append({"model": name, "skipped": f"package {public.package} not installed"})
            continue
        loaded = public.load(SessionOptions(threads=1))
        n = reps if name != "document-layout-v1" else max(5, reps // 10)
        out.append(compare(name, path.read_bytes(), loaded, samples[name], n))
    return out


# --------------------------------------------------------------------------- HTTP


def _serve(models_dir: str, port_queue: Any) -> None:
    from aiohttp import web

    from edged.config import Settings
    from edged.http.app import create_app
    from edged.runtime.shared import Runtime

    settings = Settings(
        state_dir=Path(models_dir).parent,
        models_dir=Path(models_dir),
        pipeline={"workers": 2},
        http={"max_concurrent": 16},
    )
    runtime = Runtime.build(settings)
    app = create_app(runtime)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_queue.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


async def _round_trips(url: str, version: int, body: bytes, clients: int, n: int) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    errors = 0

    async def one(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        form = aiohttp.FormData()
        form.add_field("inputs[0]image.source", body, filename="x.png", content_type="image/png")
        t0 = time.perf_counter()
        async with session.post(
            f"{url}/v0.7/recognition/versions/{version}/inference", data=form
        ) as resp:
            if resp.status != 200:
                errors += 1
                return
            task_id = (await resp.json())["task_id"]
        while True:
            async with session.get(f"{url}/v0.7/tasks/{task_id}/") as resp:
                status = (await resp.json())["status"]
            if status != "pending":
                break
            await asyncio.sleep(0.005)
        if status != "success":
            errors += 1
            return
        latencies.append(time.perf_counter() - t0)

    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            await one(session)
        latencies.clear()
        counter = iter(range(n))

        async def worker() -> None:
            for _ in counter:
                await one(session)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - t0
    return {
        "clients": clients,
        "requests": n,
        "errors": errors,
        "latency": (
            summary_ms(latencies) | {"p90_ms": round(_q(latencies, 0.9) * 1e3, 3)}
            if latencies
            else None
        ),
        "throughput_per_s": round(len(latencies) / wall, 1),
    }


def bench_http(n: int) -> list[dict[str, Any]]:
    from edged.models.repository import ModelRepository

    with tempfile.TemporaryDirectory() as tmp:
        models_dir = Path(tmp) / "models"
        repo = ModelRepository(models_dir)
        net = repo.create_network(
            {"name": "cnn", "preprocessing": PREPROCESSING}, {"model.onnx": cnn_224()}
        ).id
        spec = repo.create_spec({"name": "cnn", **SPEC}).id
        version = repo.create_version(
            {"spec_id": spec, "network_id": net, "post_processings": [POST]}
        ).id
        ok, png = cv2.imencode(".png", scene(640, 480))
        assert ok
        ctx = mp.get_context("spawn")
        ports = ctx.Queue()
        proc = ctx.Process(target=_serve, args=(str(models_dir), ports), daemon=True)
        proc.start()
        try:
            url = f"http://127.0.0.1:{ports.get(timeout=60)}"
            return [asyncio.run(_round_trips(url, version, png.tobytes(), c, n)) for c in (1, 4, 8)]
        finally:
            proc.terminate()
            proc.join(10)


# --------------------------------------------------------------------------- report


def table(report: dict[str, Any]) -> str:
    lines = ["inference per image (one thread): median [p25, p75] ms"]
    for row in report["inference"]:
        if "skipped" in row:
            lines.append(f"  {row['model']:<22} skipped: {row['skipped']}")
            continue
        e, b = row["edged"], row["bare_onnxruntime"]
        wh = "x".join(str(v) for v in row["image_wh"])
        lines.append(
            f"  {row['model']:<22} {wh:>9}  edged {e['median_ms']:8.3f} "
            f"[{e['p25_ms']:.3f}, {e['p75_ms']:.3f}]  bare {b['median_ms']:8.3f} "
            f"[{b['p25_ms']:.3f}, {b['p75_ms']:.3f}]\n"
            f"  {'':<22} {'':>9}  pre {row['preprocess']['median_ms']:.3f} + post "
            f"{row['postprocess']['median_ms']:.3f} ms = {row['overhead_own_per']:.1f} % of bare; "
            f"overhead end to end: medians {row['overhead_per']:+.1f} %, paired "
            f"{row['overhead_paired_per']:+.1f} %, best {row['overhead_best_per']:+.1f} %"
        )
    if report.get("http"):
        lines.append("HTTP task round trip (POST inference + poll /tasks), 640x480 PNG:")
        for row in report["http"]:
            lat = row["latency"]
            if lat is None:
                lines.append(f"  {row['clients']} client(s): every request failed")
                continue
            lines.append(
                f"  {row['clients']} client(s): median {lat['median_ms']:.2f} ms "
                f"[{lat['p25_ms']:.2f}, {lat['p75_ms']:.2f}] p90 {lat['p90_ms']:.2f} ms, "
                f"{row['throughput_per_s']:.1f} tasks/s, errors {row['errors']}"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200, help="repetitions per inference row")
    ap.add_argument("--requests", type=int, default=200, help="HTTP tasks per concurrency")
    ap.add_argument("--quick", action="store_true", help="few repetitions (smoke run)")
    ap.add_argument("--no-http", action="store_true")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args()
    reps, n = (20, 20) if args.quick else (args.reps, args.requests)
    report: dict[str, Any] = {"inference": bench_inference(reps)}
    if not args.no_http:
        report["http"] = bench_http(n)
    print(json.dumps(report, indent=2) if args.json else table(report))


if __name__ == "__main__":
    main()
