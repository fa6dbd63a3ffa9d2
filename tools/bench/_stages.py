"""Section 1: what each stage costs, next to the work floor measured in the same run.

The floor is what no implementation can beat on this machine: one read pass over
the decoded frame (``cv2.mean``) and OpenCV's own Bayer ``cvtColor``. Each stage is
reported as median ms and as a multiple of both. Stages whose component is not in
this checkout are listed as skipped with the reason.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from pydantic import ValidationError

from edged.checks import CheckContext, registry
from edged.config import RecipeConfig
from edged.core.frames import Frame
from edged.core.result import FrameInfo, iso_utc
from edged.imaging import pixfmt
from edged.recipes.inspection import Inspector, build_result
from tools.bench._context import Bench
from tools.bench._frames import BAYER_PATTERNS, BenchFrames
from tools.bench._measure import Samples, interleaved
from tools.bench._recipe import RECIPE, default_recipe, reference_store, teach
from tools.bench._report import SectionReport, fmt_spread

NAME = "stages"
TITLE = "Stage costs vs the work floor"
READ = "floor: read pass (cv2.mean)"
PACKED_FORMATS: tuple[str, ...] = ("Mono12p", "BayerRG12p")
CVT = "floor: debayer (cv2.cvtColor into a preallocated array)"


def run(bench: Bench) -> SectionReport:
    report = SectionReport(NAME, TITLE)
    for size in bench.sizes:
        _run_size(bench, bench.frames(size), report)
    return report


def _run_size(bench: Bench, fr: BenchFrames, report: SectionReport) -> None:
    out = np.empty_like(fr.defective)  # the floor is the kernel, not the allocator
    items: dict[str, Callable[[], object]] = {
        READ: lambda: cv2.mean(fr.defective),
        CVT: lambda: cv2.cvtColor(fr.raw["RG"], cv2.COLOR_BayerRGGB2BGR, dst=out),
    }
    for pattern in BAYER_PATTERNS:
        frame = fr.frame(pattern)
        items[f"debayer Bayer{pattern}8 (pixfmt.decode)"] = lambda f=frame: pixfmt.decode(f)  # type: ignore[misc]
    for fmt in PACKED_FORMATS:
        packed = _packed_frame(fr, fmt)
        if packed is None:
            report.skip(f"decode {fmt} (pixfmt.decode)", "pixel format not in this checkout")
            continue
        items[f"decode {fmt} (pixfmt.decode, unpack to 8-bit)"] = lambda f=packed: pixfmt.decode(f)  # type: ignore[misc]

    store = reference_store(bench.scratch(f"stages-refs-{fr.label}"))
    ctx = CheckContext(recipe=RECIPE, camera="bench")
    if store is not None:
        t0 = time.perf_counter()
        teach(store, ["bench"], [fr.reference])
        prepared = store.prepared(RECIPE, "bench")
        teach_ms = (time.perf_counter() - t0) * 1000.0
        report.add("reference teach + prepare (once per reference)", teach_ms, "ms", fr.label, n=1)
        ctx = CheckContext(recipe=RECIPE, camera="bench", reference=prepared)

    for name, spec in registry().items():
        if spec.needs_reference and ctx.reference is None:
            report.skip(f"check {name}", "needs a stored reference: edged.references is missing")
            continue
        try:
            options = spec.options.model_validate({})
        except ValidationError as exc:  # a check that cannot run without options
            report.skip(f"check {name}", f"needs options: {exc.errors()[0]['loc']}")
            continue
        check_ctx = ctx
        if spec.reference_params is not None:  # it trains its own model (anomaly)
            check_ctx = _own_model_context(bench, fr, name, report)
        call = _check_call(spec.run, fr.defective, options, check_ctx)
        try:
            call()
        except Exception as exc:
            report.skip(f"check {name}", f"{type(exc).__name__}: {exc}")
            continue
        items[f"check {name}"] = call

    inspection = _default_inspection(fr, ctx)
    items.update(_render_items(fr, inspection, report))
    items["Result JSON of the default recipe (build + serialise)"] = lambda: _result_json(
        fr, inspection
    )

    samples = interleaved(items, rounds=bench.reps(15, 5))
    read, cvt = samples[READ].median_ms, samples[CVT].median_ms
    for name, s in samples.items():
        _add(report, name, s, fr.label, read, cvt)


OWN_MODEL_IMAGES = 10  # good frames a check that trains its own model is taught


def _own_model_context(
    bench: Bench, fr: BenchFrames, check: str, report: SectionReport
) -> CheckContext:
    """The context of a check that trains its own model from good parts (``anomaly``):
    a recipe of that check alone, taught ``OWN_MODEL_IMAGES`` good frames of the line
    (as ``auto_teach`` takes them, from frame 1e9), the training timed once."""
    recipe = RecipeConfig(checks={check: {}})
    store = reference_store(bench.scratch(f"stages-{check}-{fr.label}"), recipe)
    if store is None:  # a checkout without edged.references
        return CheckContext(recipe=RECIPE, camera="bench")
    goods = [fr.line.render(10**9 + i, defect=False).image for i in range(OWN_MODEL_IMAGES)]
    t0 = time.perf_counter()
    teach(store, ["bench"], goods)
    prepared = store.prepared(RECIPE, "bench")
    teach_ms = (time.perf_counter() - t0) * 1000.0
    report.add(
        f"{check} teach + train ({OWN_MODEL_IMAGES} good frames, once per model)",
        teach_ms, "ms", fr.label, n=1,
    )  # fmt: skip
    return CheckContext(recipe=RECIPE, camera="bench", reference=prepared)


def _packed_frame(fr: BenchFrames, fmt: str) -> Frame | None:
    """A frame of packed ``fmt`` (random bits: unpacking cost does not depend on them)."""
    if fmt not in pixfmt.SUPPORTED_FORMATS or not hasattr(pixfmt, "pixel_format"):
        return None
    w, h = fr.size_wh
    size = pixfmt.pixel_format(fmt).frame_bytes(w, h)
    data = np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8)
    return Frame(data, fmt, w, h, "bench", 0, time.time_ns())


def _check_call(
    run: Callable[[np.ndarray, Any, CheckContext], object],
    image: np.ndarray,
    options: Any,
    ctx: CheckContext,
) -> Callable[[], object]:
    return lambda: run(image, options, ctx)


def _default_inspection(fr: BenchFrames, ctx: CheckContext) -> Any:
    """The default recipe's inspection of the defective query (the Result JSON's input)."""
    recipe, _missing = default_recipe()
    if ctx.reference is None and "difference" in recipe.checks:
        recipe = recipe.model_copy(
            update={"checks": {k: v for k, v in recipe.checks.items() if k != "difference"}}
        )
    return Inspector(RECIPE, recipe).inspect(fr.defective, context=ctx)


def _render_items(
    fr: BenchFrames, inspection: Any, report: SectionReport
) -> dict[str, Callable[[], object]]:
    try:
        render = importlib.import_module("edged.imaging.render")
    except ImportError:
        report.skip("render annotated image / heat map", "edged.imaging.render is missing")
        return {}
    regions = tuple(inspection.regions)
    heat = inspection.heatmap
    if heat is None:
        heat = render.regions_heatmap(regions, fr.defective.shape[:2])
    return {
        "render annotated image (boxes + heat map)": lambda: render.annotate(
            fr.defective, regions, heatmap=heat
        ),
        "render heat map (colourised)": lambda: render.colorize_heatmap(
            heat, shape_hw=fr.defective.shape[:2]
        ),
    }


def _result_json(fr: BenchFrames, inspection: Any) -> str:
    w, h = fr.size_wh
    info = FrameInfo(
        width=w, height=h, pixel_format="BayerRG8", seq=0, host_ts=iso_utc(time.time_ns())
    )
    result = build_result(inspection, node="bench", camera="bench", seq=0, frame=info)
    return result.to_json()


def _add(report: SectionReport, name: str, s: Samples, size: str, read: float, cvt: float) -> None:
    med = s.median_ms
    x_read, x_cvt = med / read, med / cvt
    spread = fmt_spread(med, s.min_ms, s.max_ms, "ms")
    text = f"{spread} · {x_read:.1f}× read · {x_cvt:.1f}× cvt"
    if name in (READ, CVT):
        text = spread
    report.add(name, med, "ms", size, text, p99_ms=s.p99_ms, n=s.n, x_read=x_read, x_debayer=x_cvt)
