"""Section 3: the difference step against the peers users would pick, same frames, same run.

* **edged**: the registered ``difference`` check (registration included) against a
  reference prepared once, as the daemon runs it.
* **scikit-image SSIM recipe** (the common "image difference" recipe): grey images,
  ``structural_similarity(full=True)``, Otsu threshold of the dissimilarity, contours.
* **pixelmatch-fast** (numba port of mapbox pixelmatch), called warm on PIL images
  prepared beforehand; its JIT compile is reported separately.
* **absdiff + threshold**: the plain difference, a floor for the comparison itself.

The speed-up is the peer's median over edged's median at the same size. Detection
figures (recall, false alarms) come from the reference-inspection benchmark module
when this checkout has it.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable

import cv2
import numpy as np

from edged.checks import CheckContext, registry
from tools.bench import _detection as detection
from tools.bench._context import TARGET_SIZE, Bench
from tools.bench._frames import BenchFrames, size_label
from tools.bench._measure import interleaved
from tools.bench._profile import profile_top
from tools.bench._recipe import RECIPE, reference_store, teach
from tools.bench._report import SectionReport, Target, fmt_spread, judge

NAME = "peers"
TITLE = "Difference step vs peers"
EDGED = "edged difference (registration included)"
SSIM = "scikit-image SSIM + Otsu + contours"
PIXELMATCH = "pixelmatch-fast (warm)"
ABSDIFF = "absdiff + threshold (no registration)"
SPEEDUP_GOAL = 10.0


def ssim_recipe(reference: np.ndarray, query: np.ndarray) -> list[tuple[int, int, int, int]]:
    """The scikit-image difference recipe: boxes ``(x, y, w, h)`` of dissimilar areas.

    reference, query: ``(H, W, 3)`` uint8 BGR of the same size.
    """
    from skimage.metrics import structural_similarity

    a = cv2.cvtColor(reference, cv2.COLOR_BGR2GRAY)
    b = cv2.cvtColor(query, cv2.COLOR_BGR2GRAY)
    _score, sim = structural_similarity(a, b, full=True, data_range=255)  # type: ignore[no-untyped-call]
    dissim = np.clip((1.0 - sim) * 127.5, 0, 255).astype(np.uint8)
    _t, mask = cv2.threshold(dissim, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    contours, _h = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [cv2.boundingRect(c) for c in contours]


def absdiff_recipe(reference: np.ndarray, query: np.ndarray, *, level: int = 40) -> int:
    """Plain difference: grey absdiff, fixed threshold; returns the changed pixel count.

    reference, query: ``(H, W, 3)`` uint8 BGR of the same size.
    """
    a = cv2.cvtColor(reference, cv2.COLOR_BGR2GRAY)
    b = cv2.cvtColor(query, cv2.COLOR_BGR2GRAY)
    _t, mask = cv2.threshold(cv2.absdiff(a, b), level, 255, cv2.THRESH_BINARY)
    return int(cv2.countNonZero(mask))


def pixelmatch_problem() -> str | None:
    """Why pixelmatch-fast cannot run here, or None when it can."""
    from importlib.metadata import packages_distributions

    try:
        importlib.import_module("pixelmatch")
    except ImportError:
        return "pixelmatch-fast is not installed (pip install pixelmatch-fast)"
    if "pixelmatch-fast" not in packages_distributions().get("pixelmatch", []):
        return "the 'pixelmatch' module here is not pixelmatch-fast"
    return None


def _pixelmatch_call(reference: np.ndarray, query: np.ndarray) -> Callable[[], object]:
    """A warm pixelmatch call on these frames (PIL images made beforehand)."""
    from PIL import Image
    from pixelmatch import pixelmatch

    a = Image.fromarray(cv2.cvtColor(reference, cv2.COLOR_BGR2RGB))
    b = Image.fromarray(cv2.cvtColor(query, cv2.COLOR_BGR2RGB))
    return lambda: pixelmatch(a, b, threshold=0.1)


def run(bench: Bench) -> SectionReport:
    report = SectionReport(NAME, TITLE)
    notes: list[str] = []
    try:
        importlib.import_module("skimage.metrics")
        have_ssim = True
    except ImportError:
        have_ssim = False
        notes.append("scikit-image is not installed (pip install scikit-image)")
    edged_at_target: Callable[[], object] | None = None
    for size in bench.sizes:
        call = _run_size(bench, bench.frames(size), report, have_ssim, notes)
        if size == TARGET_SIZE:
            edged_at_target = call
    report.note = "; ".join(dict.fromkeys(notes))
    if have_ssim:
        _detection(bench, report)
    else:
        report.skip("detection figures", "the detection benchmark needs scikit-image")
    target = _judge(bench, report)
    if target.status == "MISS" and bench.options.profile and edged_at_target is not None:
        report.profiles["edged difference (2448x2048)"] = profile_top(edged_at_target, repeat=10)
    return report


def _run_size(
    bench: Bench, fr: BenchFrames, report: SectionReport, have_ssim: bool, notes: list[str]
) -> Callable[[], object] | None:
    """Time the methods at this size; returns edged's call (for profiling) if it ran."""
    ref, query = fr.reference, fr.defective
    items: dict[str, Callable[[], object]] = {}
    spec = registry().get("difference")
    store = reference_store(bench.scratch(f"peers-refs-{fr.label}")) if spec else None
    if spec is None:
        notes.append("edged's difference check is not in this checkout")
    elif store is None:
        notes.append("edged.references is not in this checkout")
    else:
        teach(store, ["bench"], [ref])
        ctx = CheckContext(RECIPE, "bench", store.prepared(RECIPE, "bench"))
        options = spec.options.model_validate({})
        items[EDGED] = lambda: spec.run(query, options, ctx)
    if have_ssim:
        items[SSIM] = lambda: ssim_recipe(ref, query)
    pm_problem = pixelmatch_problem()
    if pm_problem is not None:
        notes.append(pm_problem)
    else:
        pm = _pixelmatch_call(ref, query)
        t0 = time.perf_counter()
        pm()
        report.add(
            "pixelmatch-fast first call (numba JIT / cache load)",
            (time.perf_counter() - t0) * 1000.0,
            "ms",
            fr.label,
            n=1,
        )
        items[PIXELMATCH] = pm
    items[ABSDIFF] = lambda: absdiff_recipe(ref, query)
    big = fr.size_wh[0] * fr.size_wh[1] > 3_000_000
    samples = interleaved(items, rounds=bench.reps(3 if big else 5, 2))
    base = samples[EDGED].median_ms if EDGED in samples else None
    for name, s in samples.items():
        text = fmt_spread(s.median_ms, s.min_ms, s.max_ms, "ms")
        extra: dict[str, float | int] = {"p99_ms": s.p99_ms, "n": s.n}
        if base is not None and name != EDGED:
            ratio = s.median_ms / base
            text += f" · edged {ratio:.1f}× faster" if ratio >= 1 else f" · {1 / ratio:.1f}× edged"
            extra["edged_speedup"] = ratio
        report.add(name, s.median_ms, "ms", fr.label, text, **extra)
    return items.get(EDGED)


def _detection(bench: Bench, report: SectionReport) -> None:
    """Detection figures from the reference-inspection benchmark, when present."""
    mod = detection.load()
    if mod is None:
        report.skip("detection figures", "tools/bench_detection.py is not in this checkout")
        return
    size = bench.sizes[0]
    kinds = ("label",) if bench.quick else tuple(mod._scenes.KINDS)
    queries = 2  # one good, one defective per world and colour mode
    rows = detection.run(
        mod,
        size_wh=size,
        kinds=kinds,
        queries=queries,
        with_pixelmatch=pixelmatch_problem() is None,
        log=lambda _s: None,
    )
    for method, r in rows.items():
        recall, far = r.get("recall"), r.get("far")
        if recall is None or far is None:
            continue
        prec = r.get("region_precision")
        text = (
            f"recall {recall:.0%} · false alarms {far:.0%} · region precision "
            f"{'–' if prec is None else f'{prec:.0%}'} · {r['median_ms']:.1f} ms/pair"
        )
        extra = {k: v for k, v in r.items() if isinstance(v, int | float)}
        report.add(
            f"detection: {method} ({r['pairs']} pairs)",
            recall,
            "recall",
            size_label(size),
            text,
            **extra,
        )


def _judge(bench: Bench, report: SectionReport) -> Target:
    label = size_label(TARGET_SIZE)
    speedup = next(
        (
            float(m.extra["edged_speedup"] or 0.0)
            for m in report.metrics
            if m.name == SSIM and m.size == label and "edged_speedup" in m.extra
        ),
        None,
    )
    note = ""
    if speedup is None:
        note = f"quick run: {label} not measured" if bench.quick else "edged or SSIM missing"
    target = judge(
        "difference vs SSIM speed-up",
        f"≥ {SPEEDUP_GOAL:.0f}× faster",
        speedup,
        "x",
        ok=None if speedup is None else speedup >= SPEEDUP_GOAL,
        metric=SSIM,
        size=label,
        note=note,
    )
    report.targets.append(target)
    return target
