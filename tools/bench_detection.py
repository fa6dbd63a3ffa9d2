"""Detection benchmark: edged's reference difference vs the common peers, same run.

    python tools/bench_detection.py            # full run (~5 min on 2 cores)
    python tools/bench_detection.py --quick    # small slice for CI (seconds)

Scenes are generated procedurally (tools/_scenes.py): regular and irregular textures,
printed labels, objects on backgrounds, colour and grey. Each world gets one reference
capture (precomputed: registration data and limits are prepared once, untimed), then
queries with nuisance (shift up to ±8 px, rotation up to ±2°, gain ±12 %, offset ±8,
noise sigma 1-3), half of them with one defect (spot, scratch, missing patch, stain;
contrast 45-90 grey levels).

Methods:
- ``edged``: edged.checks.difference.compare (registration included), default preset 3
  at the recipe default working size (longest side 1024 px);
- ``edged@900``: the same at 900 px, the LTU ``differences`` default;
- ``edged-var5``: the same against a variation model trained on 5 good captures;
- ``absdiff``: blur, absolute difference, fixed threshold, opening, contours;
- ``ssim``: scikit-image SSIM map, Otsu threshold, contours (the usual recipe).

A query is flagged when a method reports at least one region (edged: or does not
register). Reported: image recall on defective queries, false-alarm rate on good ones,
region precision (share of reported regions on defective queries that touch the
defect), localisation (defective queries with a region on the defect), and the median
time per pair.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edged.checks.align import UnregisteredError
from edged.checks.difference import DifferenceSettings, compare
from edged.checks.prepared import PreparedReference, ReferenceParams, prepare_reference
from tools import _scenes

Box = tuple[int, int, int, int]


@dataclass
class Tally:
    pairs: int = 0
    bad: int = 0
    good: int = 0
    hits: int = 0  # defective and flagged
    false_alarms: int = 0  # good and flagged
    localised: int = 0
    regions: int = 0
    regions_on_defect: int = 0
    unregistered: int = 0
    times_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    alarms: list[str] = field(default_factory=list)

    def row(self) -> dict[str, float | int | None]:
        return {
            "pairs": self.pairs,
            "recall": self.hits / self.bad if self.bad else None,
            "far": self.false_alarms / self.good if self.good else None,
            "region_precision": self.regions_on_defect / self.regions if self.regions else None,
            "localised": self.localised / self.bad if self.bad else None,
            "median_ms": float(np.median(self.times_ms)) if self.times_ms else None,
            "p90_ms": float(np.percentile(self.times_ms, 90)) if self.times_ms else None,
            "median_cpu_ms": float(np.median(self.cpu_ms)) if self.cpu_ms else None,
            "unregistered": self.unregistered,
        }


def _touches(box: Box, gt: Box, pad: int = 3) -> bool:
    x, y, w, h = box
    gx, gy, gw, gh = gt
    return x < gx + gw + pad and gx - pad < x + w and y < gy + gh + pad and gy - pad < y + h


# --------------------------------------------------------------------------- peers


def _grey(img: np.ndarray) -> np.ndarray:
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


def absdiff_boxes(ref: np.ndarray, query: np.ndarray, min_area: float) -> list[Box]:
    """The plain recipe: blur, |ref - query| > 40, opening, external contours."""
    a = cv2.GaussianBlur(_grey(ref), (5, 5), 0)
    b = cv2.GaussianBlur(_grey(query), (5, 5), 0)
    binary = cv2.threshold(cv2.absdiff(a, b), 40, 255, cv2.THRESH_BINARY)[1]
    binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [cv2.boundingRect(c) for c in contours if cv2.contourArea(c) >= min_area]


def ssim_boxes(ref: np.ndarray, query: np.ndarray, min_area: float) -> list[Box]:
    """The usual SSIM recipe: SSIM map, Otsu on it, external contours."""
    from skimage.metrics import structural_similarity

    _, smap = structural_similarity(  # type: ignore[no-untyped-call]
        _grey(ref), _grey(query), full=True, data_range=255
    )
    diff = (np.clip(smap, 0, 1) * 255).astype(np.uint8)
    binary = cv2.threshold(diff, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)[1]
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [cv2.boundingRect(c) for c in contours if cv2.contourArea(c) >= min_area]


# --------------------------------------------------------------------------- run


def _score(
    t: Tally, boxes: list[Box], defect: _scenes.Defect | None, ms: tuple[float, float], tag: str
) -> None:
    t.pairs += 1
    t.times_ms.append(ms[0])
    t.cpu_ms.append(ms[1])
    flagged = bool(boxes)
    if defect is None:
        t.good += 1
        if flagged:
            t.false_alarms += 1
            t.alarms.append(tag)
        return
    t.bad += 1
    t.hits += int(flagged)
    if not flagged:
        t.missed.append(tag)
    on = [b for b in boxes if _touches(b, defect.box_xywh)]
    t.regions += len(boxes)
    t.regions_on_defect += len(on)
    t.localised += int(bool(on))


def _edged(
    t: Tally,
    prepared: PreparedReference,
    q: np.ndarray,
    d: _scenes.Defect | None,
    tag: str,
    settings: DifferenceSettings,
) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        res = compare(prepared, q, settings)
        boxes = [r.box2_xywh for r in res.regions]
    except UnregisteredError:
        t.unregistered += 1
        boxes = [(0, 0, q.shape[1], q.shape[0])]
    _score(t, boxes, d, _elapsed(t0, c0), tag)


def _elapsed(t0: float, c0: float) -> tuple[float, float]:
    """(wall, CPU of all the process's threads) milliseconds since ``t0``/``c0``."""
    return (time.perf_counter() - t0) * 1000.0, (time.process_time() - c0) * 1000.0


def _peer(
    t: Tally,
    fn: Callable[[np.ndarray, np.ndarray, float], list[Box]],
    ref: np.ndarray,
    q: np.ndarray,
    d: _scenes.Defect | None,
    tag: str,
    min_area: float,
) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    boxes = fn(ref, q, min_area)
    _score(t, boxes, d, _elapsed(t0, c0), tag)


@dataclass(frozen=True)
class Slice:
    width: int
    height: int
    kinds: tuple[str, ...]
    worlds: int  # per kind and colour mode
    queries: int  # per world, alternately good and defective


def run(
    slices: list[Slice],
    *,
    seed: int,
    ssim_every: int,
    variation: bool,
    log: Callable[[str], None],
) -> dict[str, dict[str, Tally]]:
    settings = DifferenceSettings()
    tallies: dict[str, dict[str, Tally]] = defaultdict(lambda: defaultdict(Tally))
    pair_no = 0
    for sl in slices:
        w, h = sl.width, sl.height
        size = f"{w}x{h}"
        min_area = 16.0 * (min(w, h) / 768.0) ** 2
        for kind in sl.kinds:
            kind_i = _scenes.KINDS.index(kind)
            for colour in (True, False):
                for wi in range(sl.worlds):
                    wseed = seed * 100_000 + kind_i * 1000 + int(colour) * 100 + wi + w
                    rng = np.random.default_rng(wseed)
                    wld = _scenes.world(kind, (w, h), colour=colour, seed=wseed)
                    ref = _scenes.capture(wld, _scenes.REFERENCE_POSE, (w, h), rng)
                    prepared = prepare_reference([ref])
                    ltu = prepare_reference([ref], params=ReferenceParams(resolution=900))
                    var = None
                    if variation:
                        goods = [ref] + [
                            _scenes.capture(wld, _scenes.random_pose(rng), (w, h), rng)
                            for _ in range(4)
                        ]
                        var = prepare_reference(goods)
                    compare(prepared, ref, settings)  # warm the limits cache (reference time)
                    compare(ltu, ref, settings)
                    if var is not None:
                        compare(var, ref, settings)
                    for qi in range(sl.queries):
                        defect = (
                            None if qi % 2 == 0 else _scenes.DEFECTS[(qi // 2 + wi + kind_i) % 4]
                        )
                        q, _pose, d = _scenes.query(wld, (w, h), rng, defect)
                        mode = "colour" if colour else "grey"
                        tag = f"{size}/{kind}/{mode}/w{wi}/q{qi}/{defect or 'good'}"
                        _edged(tallies[size]["edged"], prepared, q, d, tag, settings)
                        _edged(tallies[size]["edged@900"], ltu, q, d, tag, settings)
                        if var is not None:
                            _edged(tallies[size]["edged-var5"], var, q, d, tag, settings)
                        _peer(tallies[size]["absdiff"], absdiff_boxes, ref, q, d, tag, min_area)
                        # every ssim_every-th good/defective couple: both kinds measured
                        if (pair_no // 2) % max(1, ssim_every // 2) == 0:
                            _peer(tallies[size]["ssim"], ssim_boxes, ref, q, d, tag, min_area)
                        pair_no += 1
                log(f"{size} {kind}: {tallies[size]['edged'].pairs} pairs so far")
    return tallies


def run_line(frames: int, *, log: Callable[[str], None]) -> dict[str, dict[str, Tally]]:
    """An independent generator: the daemon's synthetic line (edged.sources.synthetic,
    1280x1024 BayerRG8, the demo's nuisance, half the frames defective), decoded like
    camera frames; references: 1 and 5 good frames of the line."""
    from edged.config import NuisanceConfig, SyntheticConfig
    from edged.imaging.pixfmt import debayer
    from edged.sources.synthetic import SyntheticLine

    settings = DifferenceSettings()
    tallies: dict[str, dict[str, Tally]] = defaultdict(lambda: defaultdict(Tally))
    for scene in ("label", "pcb"):
        cfg = SyntheticConfig(
            scene=scene, width=1280, height=1024, pixel_format="BayerRG8", defect_rate=0.5,
            seed=7, nuisance=NuisanceConfig(
                shift_px=6, rotation_deg=1.5, gain=0.1, offset=6, noise_sigma=2
            ),
        )  # fmt: skip
        line = SyntheticLine(cfg)

        def frame(seq: int, defect: bool | None = None) -> tuple[np.ndarray, dict[str, object]]:
            f = line.render(seq, defect=defect)  # noqa: B023 - used within the iteration
            return debayer(line.to_pixel_format(f.image), "RG"), f.truth  # noqa: B023

        goods = [frame(100_000 + i, False)[0] for i in range(5)]
        refs = {"edged": prepare_reference(goods[:1]), "edged-var5": prepare_reference(goods)}
        for ref in refs.values():
            compare(ref, goods[0], settings)
        for seq in range(frames):
            image, truth = frame(seq)
            d = None
            if truth["defect"]:
                b = truth["box"]
                box = (int(b["x"]), int(b["y"]), int(b["width"]), int(b["height"]))  # type: ignore[index]
                d = _scenes.Defect(str(truth["kind"]), 0.0, np.zeros((1, 1), bool), box)
            for name, ref in refs.items():
                _edged(
                    tallies[f"line/{scene}"][name], ref, image, d, f"line/{scene}/{seq}", settings
                )
        log(f"synthetic line {scene}: {frames} frames")
    return tallies


def table(tallies: dict[str, dict[str, Tally]]) -> str:
    lines = [
        "| size | method | pairs | recall | false alarms | region precision | localised "
        "| median ms/pair | p90 ms | CPU ms | vs ssim |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def f(v: float | int | None, pct: bool = True) -> str:
        if v is None:
            return "–"
        return f"{100 * v:.1f} %" if pct else f"{v:.1f}"

    for size, methods in tallies.items():
        ssim_ms = methods["ssim"].row()["median_ms"] if "ssim" in methods else None
        for name in ("edged", "edged@900", "edged-var5", "absdiff", "ssim"):
            if name not in methods:
                continue
            r = methods[name].row()
            ratio = "–"
            if ssim_ms and r["median_ms"]:
                ratio = f"{float(ssim_ms) / float(r['median_ms']):.1f}x"
            lines.append(
                f"| {size} | {name} | {r['pairs']} | {f(r['recall'])} | {f(r['far'])} | "
                f"{f(r['region_precision'])} | {f(r['localised'])} | {f(r['median_ms'], False)} | "
                f"{f(r['p90_ms'], False)} | {f(r['median_cpu_ms'], False)} | {ratio} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small slice for CI")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    ap.add_argument("--no-variation", action="store_true", help="skip the variation-model row")
    ap.add_argument("--verbose", action="store_true", help="list every miss and false alarm")
    args = ap.parse_args(argv)
    if args.quick:  # 5 MP worlds are slow to render: one kind only
        slices = [Slice(1024, 768, _scenes.KINDS, 1, 2), Slice(2448, 2048, ("label",), 1, 2)]
        ssim_every = 2
    else:
        slices = [Slice(1024, 768, _scenes.KINDS, 4, 16), Slice(2448, 2048, _scenes.KINDS, 1, 4)]
        ssim_every = 4
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    tallies = run(
        slices,
        seed=args.seed,
        ssim_every=ssim_every,
        variation=not args.no_variation,
        log=lambda s: print(s, file=sys.stderr, flush=True),
    )
    print(table(tallies))
    line = run_line(20 if args.quick else 100, log=lambda s: print(s, file=sys.stderr, flush=True))
    print("\nIndependent check, the daemon's synthetic line (1280x1024 BayerRG8):\n")
    print(table(line))
    tallies.update(line)
    print(
        f"\n({time.perf_counter() - t0:.0f} s; cv2 threads {cv2.getNumThreads()}; "
        f"load average {load0:.1f} at start, {os.getloadavg()[0]:.1f} at end; "
        f"{os.cpu_count()} CPUs)"
    )
    if args.verbose:
        for methods in tallies.values():
            for name, t in methods.items():
                for tag in t.missed:
                    print(f"miss   {name}: {tag}")
                for tag in t.alarms:
                    print(f"alarm  {name}: {tag}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {s: {m: t.row() for m, t in ms.items()} for s, ms in tallies.items()}, indent=2
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
