"""Detection benchmark: edged's reference difference vs the common peers, same run.

    python tools/bench_detection.py                      # both nuisance sets (~10 min)
    python tools/bench_detection.py --nuisance legacy    # the original benchmark only
    python tools/bench_detection.py --nuisance line      # what a real line adds only
    python tools/bench_detection.py --quick              # small slice for CI (seconds)

Scenes are generated procedurally (tools/_scenes.py): regular and irregular textures,
printed labels, objects on backgrounds, colour prints, colour and grey. Each world gets
one reference capture (precomputed: registration data and limits are prepared once,
untimed), then queries with nuisance, half of them with one defect:

- ``legacy``: shift up to ±8 px, rotation up to ±2°, gain ±12 %, offset ±8, noise
  sigma 1-3; defects spot, scratch, missing patch, stain at contrast 45-90 grey levels;
- ``line`` (issue 17): shift ±12 px, rotation ±3°, scale 0.98-1.02, perspective tilt
  (each corner moved up to 3 px), a gain gradient up to ±15 % across the image on top
  of gain/offset, defocus blur sigma <= 0.8 and JPEG quality 80-95 on the query, noise
  sigma 1-4; defects: the four above at contrast 20-45, tiny spots (radius 3-7 px),
  hairline scratches (1-2 px wide), and on colour parts wrong-colour regions of
  matched brightness. Rows are labelled ``line/WxH``.

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
from edged.core.errors import InputError
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
    untrained: int = 0  # worlds whose variation model did not train (rows skip them)
    not_inspected: list[float] = field(default_factory=list)  # share of image1 per pair
    by_defect: dict[str, list[int]] = field(default_factory=dict)  # kind -> [hits, pairs]
    times_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    alarms: list[str] = field(default_factory=list)

    def row(self) -> dict[str, float | int | dict[str, float] | None]:
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
            "untrained": self.untrained,
            "not_inspected": float(np.mean(self.not_inspected)) if self.not_inspected else None,
            "recall_by_defect": {k: v[0] / v[1] for k, v in sorted(self.by_defect.items()) if v[1]},
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
    kind = t.by_defect.setdefault(defect.kind, [0, 0])
    kind[0] += int(flagged)
    kind[1] += 1
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
        total = prepared.size_wh[0] * prepared.size_wh[1]
        t.not_inspected.append(1.0 - res.compared_px / total)
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


def _defect_for(qi: int, wi: int, kind_i: int, *, line: bool, colour: bool) -> str | None:
    """Odd queries get a defect, cycling through the kinds (colour only on colour parts)."""
    if qi % 2 == 0:
        return None
    if not line:
        return _scenes.DEFECTS[(qi // 2 + wi + kind_i) % 4]
    kinds = _scenes.LINE_DEFECTS if colour else _scenes.LINE_DEFECTS[:-1]
    return kinds[(qi // 2 + wi + kind_i) % len(kinds)]


def run(
    slices: list[Slice],
    *,
    seed: int,
    ssim_every: int,
    variation: bool,
    log: Callable[[str], None],
    nuisance: str = "legacy",
    settings: DifferenceSettings | None = None,
    peers: bool = True,
    ltu: bool = True,
) -> dict[str, dict[str, Tally]]:
    """Run the slices under one nuisance set (``legacy`` or ``line``, see the module
    docstring); rows are keyed ``WxH`` (legacy) or ``line/WxH``. ``settings``: edged's
    (default: the defaults)."""
    line = nuisance == "line"
    settings = settings or DifferenceSettings()
    tallies: dict[str, dict[str, Tally]] = defaultdict(lambda: defaultdict(Tally))
    pair_no = 0
    for sl in slices:
        w, h = sl.width, sl.height
        size = f"line/{w}x{h}" if line else f"{w}x{h}"
        min_area = 16.0 * (min(w, h) / 768.0) ** 2
        for kind in sl.kinds:
            kind_i = _scenes.LINE_KINDS.index(kind)
            for colour in (True, False):
                for wi in range(sl.worlds):
                    wseed = seed * 100_000 + kind_i * 1000 + int(colour) * 100 + wi + w
                    rng = np.random.default_rng(wseed)
                    wld = _scenes.world(kind, (w, h), colour=colour, seed=wseed)
                    ref = _scenes.capture(wld, _scenes.REFERENCE_POSE, (w, h), rng)
                    prepared = prepare_reference([ref])
                    ltu_ref = (
                        prepare_reference([ref], params=ReferenceParams(resolution=900))
                        if ltu
                        else None
                    )
                    var = None
                    if variation:
                        pose = _scenes.random_line_pose if line else _scenes.random_pose
                        goods = [ref] + [
                            _scenes.capture(wld, pose(rng), (w, h), rng) for _ in range(4)
                        ]
                        try:
                            var = prepare_reference(goods)
                        except InputError as exc:  # a good capture the model cannot train
                            tallies[size]["edged-var5"].untrained += 1
                            log(f"{size} {kind}: variation model not trained: {exc}")
                    compare(prepared, ref, settings)  # warm the limits cache (reference time)
                    if ltu_ref is not None:
                        compare(ltu_ref, ref, settings)
                    if var is not None:
                        compare(var, ref, settings)
                    for qi in range(sl.queries):
                        defect = _defect_for(qi, wi, kind_i, line=line, colour=colour)
                        q, _pose, d = _scenes.query(wld, (w, h), rng, defect, nuisance)
                        mode = "colour" if colour else "grey"
                        tag = f"{size}/{kind}/{mode}/w{wi}/q{qi}/{defect or 'good'}"
                        _edged(tallies[size]["edged"], prepared, q, d, tag, settings)
                        if ltu_ref is not None:
                            _edged(tallies[size]["edged@900"], ltu_ref, q, d, tag, settings)
                        if var is not None:
                            _edged(tallies[size]["edged-var5"], var, q, d, tag, settings)
                        if peers:
                            _peer(tallies[size]["absdiff"], absdiff_boxes, ref, q, d, tag, min_area)
                        # every ssim_every-th good/defective couple: both kinds measured
                        if peers and (pair_no // 2) % max(1, ssim_every // 2) == 0:
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


def http_timing(pairs: int, *, seed: int, log: Callable[[str], None]) -> dict[str, list[float]]:
    """Milliseconds per ``POST /v2/services/image/differences`` of a 1024x768 pair (both
    JPEG quality 95, decoding included) on the legacy nuisance, grey and colour, through
    a real aiohttp server on localhost (default LTU options). Returns the samples: wall
    milliseconds per mode, and the process's CPU milliseconds (server and client share
    the process; the client's share is small) under ``"<mode> CPU"``."""
    import asyncio

    import aiohttp
    from aiohttp import web

    from edged.http import ltu_reference

    def jpeg(img: np.ndarray) -> bytes:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        assert ok
        return buf.tobytes()

    bodies: dict[str, list[tuple[bytes, bytes]]] = {}
    w, h = 1024, 768
    for colour in (False, True):
        rng = np.random.default_rng(seed)
        wld = _scenes.world("label", (w, h), colour=colour, seed=seed)
        ref = jpeg(_scenes.capture(wld, _scenes.REFERENCE_POSE, (w, h), rng))
        qs = [_scenes.query(wld, (w, h), rng, None)[0] for _ in range(4)]
        bodies["colour" if colour else "grey"] = [(ref, jpeg(q)) for q in qs]

    async def measure() -> dict[str, list[float]]:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        ltu_reference.setup(app)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        url = f"http://127.0.0.1:{port}/v2/services/image/differences"
        out: dict[str, list[float]] = {k: [] for k in bodies}
        out.update({f"{k} CPU": [] for k in bodies})
        async with aiohttp.ClientSession() as session:
            for i in range(pairs + 2):  # the first two rounds warm up
                for mode, pairs_ in bodies.items():
                    a, b = pairs_[i % len(pairs_)]
                    form = aiohttp.FormData()
                    form.add_field("image1", a, filename="1.jpg", content_type="image/jpeg")
                    form.add_field("image2", b, filename="2.jpg", content_type="image/jpeg")
                    t0, c0 = time.perf_counter(), time.process_time()
                    async with session.post(url, data=form) as resp:
                        await resp.read()
                        assert resp.status == 200, resp.status
                    if i >= 2:
                        wall, cpu = _elapsed(t0, c0)
                        out[mode].append(wall)
                        out[f"{mode} CPU"].append(cpu)
        await runner.cleanup()
        return out

    samples = asyncio.run(measure())
    for mode, ms in samples.items():
        q1, med, q3 = np.percentile(ms, [25, 50, 75])
        log(f"HTTP differences 1024x768 {mode}: median {med:.1f} ms (IQR {q1:.1f}-{q3:.1f})")
    return samples


def table(tallies: dict[str, dict[str, Tally]]) -> str:
    lines = [
        "| size | method | pairs | recall | false alarms | region precision | localised "
        "| not inspected | median ms/pair | p90 ms | CPU ms | vs ssim |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def f(v: object, pct: bool = True) -> str:
        if not isinstance(v, int | float):
            return "–"
        return f"{100 * v:.1f} %" if pct else f"{v:.1f}"

    for size, methods in tallies.items():
        ssim_ms = methods["ssim"].row()["median_ms"] if "ssim" in methods else None
        for name in ("edged", "edged@900", "edged-var5", "absdiff", "ssim"):
            if name not in methods:
                continue
            r = methods[name].row()
            ratio = "–"
            if isinstance(ssim_ms, float) and isinstance(r["median_ms"], float):
                ratio = f"{ssim_ms / r['median_ms']:.1f}x"
            lines.append(
                f"| {size} | {name} | {r['pairs']} | {f(r['recall'])} | {f(r['far'])} | "
                f"{f(r['region_precision'])} | {f(r['localised'])} | {f(r['not_inspected'])} | "
                f"{f(r['median_ms'], False)} | {f(r['p90_ms'], False)} | "
                f"{f(r['median_cpu_ms'], False)} | {ratio} |"
            )
    return "\n".join(lines)


def recall_table(tallies: dict[str, dict[str, Tally]]) -> str:
    """Recall per defect kind (rows: size and method; columns: kinds)."""
    kinds = sorted({k for ms in tallies.values() for t in ms.values() for k in t.by_defect})
    lines = [
        "| size | method | " + " | ".join(kinds) + " |",
        "|---|---|" + "---:|" * len(kinds),
    ]
    for size, methods in tallies.items():
        for name, t in methods.items():
            cells = []
            for k in kinds:
                hits, n = t.by_defect.get(k, [0, 0])
                cells.append(f"{hits}/{n}" if n else "–")
            lines.append(f"| {size} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small slice for CI")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    ap.add_argument("--no-variation", action="store_true", help="skip the variation-model row")
    ap.add_argument("--verbose", action="store_true", help="list every miss and false alarm")
    ap.add_argument(
        "--nuisance",
        choices=("legacy", "line", "both"),
        default="both",
        help="legacy: the original nuisance and defects; line: issue 17's (default both)",
    )
    ap.add_argument(
        "--worlds", type=int, help="line nuisance: worlds per kind and colour mode (default 3)"
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one of edged's DifferenceSettings (tuning experiments), e.g. threshold=12",
    )
    ap.add_argument(
        "--edged-only", action="store_true", help="skip the peers and edged@900 (iteration)"
    )
    ap.add_argument(
        "--http",
        type=int,
        metavar="N",
        help="only time N pairs through the LTU differences endpoint (see http_timing)",
    )
    args = ap.parse_args(argv)
    if args.http:
        load = os.getloadavg()[0]
        http_timing(args.http, seed=args.seed, log=print)
        print(f"(load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end)")
        return 0
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value) if value[:1] in "-0123456789[{tf" else value
    settings = DifferenceSettings(**overrides)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    tallies: dict[str, dict[str, Tally]] = {}
    if args.nuisance in ("legacy", "both"):
        if args.quick:  # 5 MP worlds are slow to render: one kind only
            slices = [Slice(1024, 768, _scenes.KINDS, 1, 2), Slice(2448, 2048, ("label",), 1, 2)]
        else:
            slices = [
                Slice(1024, 768, _scenes.KINDS, 4, 16),
                Slice(2448, 2048, _scenes.KINDS, 1, 4),
            ]
        legacy = run(
            slices,
            seed=args.seed,
            ssim_every=2 if args.quick else 4,
            variation=not args.no_variation,
            log=log,
            settings=settings,
            peers=not args.edged_only,
            ltu=not args.edged_only,
        )
        print(table(legacy))
        line = run_line(20 if args.quick else 100, log=log)
        print("\nIndependent check, the daemon's synthetic line (1280x1024 BayerRG8):\n")
        print(table(line))
        tallies.update(legacy)
        tallies.update(line)
    if args.nuisance in ("line", "both"):
        worlds = args.worlds or (1 if args.quick else 3)
        queries = 4 if args.quick else 14
        sl = Slice(1024, 768, _scenes.LINE_KINDS, worlds, queries)
        hard = run(
            [sl],
            seed=args.seed,
            ssim_every=2,
            variation=not args.no_variation,
            log=log,
            nuisance="line",
            settings=settings,
            peers=not args.edged_only,
            ltu=not args.edged_only,
        )
        print("\nWhat a real line adds (issue 17 nuisance and defects):\n")
        print(table(hard))
        print("\nRecall per defect kind:\n")
        print(recall_table(hard))
        tallies.update(hard)
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
