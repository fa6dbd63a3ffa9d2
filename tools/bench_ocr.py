"""OCR benchmark: labels rendered in code with known text, read by each engine, one run.

    python tools/bench_ocr.py              # full run (~1-2 min on 2 cores)
    python tools/bench_ocr.py --quick      # small slice (seconds)
    python tools/bench_ocr.py --json out.json

Labels: one printed code line (lot numbers, dates, part and serial numbers) on label
paper, in TrueType fonts from fonts-dejavu (Sans, Sans Bold, Sans Mono, Serif;
rendered with Pillow) and OpenCV's Hershey Simplex and Duplex. Conditions:

- ``clean``: 22-40 px capitals, upright, sharp, no noise, PNG;
- ``mild``: 18-36 px, rotation up to ±5°, Gaussian blur sigma 0.4-0.9, noise
  sigma 3-6, JPEG quality 70-90;
- ``harsh``: 12-18 px, rotation up to ±5°, blur sigma 1.0-1.5, noise sigma 8-12,
  JPEG quality 35-50 (reported, no target);
- ``dotmatrix``: Hershey strokes sampled as round dots at a 4-6 px pitch (inkjet /
  dot-matrix print), read with ``dot_matrix_px`` = pitch + 1.

Engines: ``edged`` is :func:`edged.checks.ocr.read_text` with its defaults (layout
``block``: a cropped label) — what the ``text`` check and textDetection run;
``tesseract-plain`` is the same libtesseract and language data on the label as is
(no polarity, rescale, deskew or dot closing): what edged's preprocessing adds.
``--compare-tessdata DIR`` adds ``edged@DIR``: the same with the ``eng.traineddata``
of DIR (e.g. tessdata_fast's, to compare language models in one run). ``--rapidocr``
adds RapidOCR 3.x (PP-OCR ONNX models in its wheel; not a dependency of edged: seconds
per label on a busy 2-core machine).

Figures per engine and condition: character accuracy (1 - Levenshtein distance /
length of the truth, summed over labels), exact-line accuracy (read text == truth
after collapsing spaces) and ms per label (median, p10-p90; one thread). Then the
throughput of the default engine with 1 and 2 threads (one Tesseract API per
thread): labels per second, so the ratio shows what a second worker gives.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edged.checks._ocr_data import resolve_tessdata
from edged.checks.ocr import engine_version, read_text

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
TTF = {
    "dejavu-sans": "DejaVuSans.ttf",
    "dejavu-sans-bold": "DejaVuSans-Bold.ttf",
    "dejavu-mono": "DejaVuSansMono.ttf",
    "dejavu-serif": "DejaVuSerif.ttf",
}
HERSHEY = {"hershey-simplex": cv2.FONT_HERSHEY_SIMPLEX, "hershey-duplex": cv2.FONT_HERSHEY_DUPLEX}
PAPER = 212
INK = 35
CONDITIONS = ("clean", "mild", "harsh", "dotmatrix")
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


@dataclass(frozen=True, slots=True)
class Label:
    image: np.ndarray
    text: str
    condition: str
    font: str
    dot_pitch_px: int = 0


# --------------------------------------------------------------------------- labels


def code_text(rng: np.random.Generator) -> str:
    kind = int(rng.integers(6))

    def d(n: int) -> str:
        return "".join(str(int(v)) for v in rng.integers(0, 10, size=n))

    if kind == 0:
        return f"LOT {d(6)}"
    if kind == 1:
        return f"EXP {2026 + int(rng.integers(4))}-{1 + int(rng.integers(12)):02d}-{d(1)}{d(1)}"
    if kind == 2:
        return f"BB {1 + int(rng.integers(28)):02d}.{1 + int(rng.integers(12)):02d}.20{d(2)}"
    if kind == 3:
        return f"PN A{d(1)}-{d(4)}-{'ABCDEFGH'[int(rng.integers(8))]}"
    if kind == 4:
        return f"SN {d(8)}"
    return f"{1 + int(rng.integers(28)):02d} {MONTHS[int(rng.integers(12))]} 20{d(2)}"


def _ttf_line(text: str, font_file: Path, cap_px: int) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    size = round(cap_px / 0.73)  # DejaVu capitals are ~0.73 em
    font = ImageFont.truetype(str(font_file), size)
    x0, y0, x1, y1 = (int(v) for v in font.getbbox(text))
    pad = max(8, cap_px)
    canvas = Image.new("L", (x1 - x0 + 2 * pad, y1 - y0 + 2 * pad), PAPER)
    ImageDraw.Draw(canvas).text((pad - x0, pad - y0), text, fill=INK, font=font)
    return np.asarray(canvas).copy()


def _ttf_font(font_file: Path, text: str, cap_px: int) -> np.ndarray:
    return _ttf_line(text, font_file, cap_px)


def _hershey_font(face: int, text: str, cap_px: int) -> np.ndarray:
    return _hershey_line(text, face, cap_px)


def _hershey_line(text: str, face: int, cap_px: int) -> np.ndarray:
    scale = cap_px / 22.0  # Hershey capitals are ~22 px at scale 1
    thickness = max(1, round(cap_px / 11))
    (tw, th), base = cv2.getTextSize(text, face, scale, thickness)
    pad = max(8, cap_px)
    img = np.full((th + base + 2 * pad, tw + 2 * pad), PAPER, np.uint8)
    cv2.putText(img, text, (pad, pad + th), face, scale, INK, thickness, cv2.LINE_AA)
    return img


def _dotted_line(text: str, pitch: int) -> np.ndarray:
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    small = np.zeros((th + base + 6, tw + 6), np.uint8)
    cv2.putText(small, text, (3, 3 + th), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 255, 1, cv2.LINE_8)
    h, w = small.shape
    pad = 3 * pitch
    img = np.full((h * pitch + 2 * pad, w * pitch + 2 * pad), PAPER, np.uint8)
    radius = max(1, round(pitch * 0.35))
    for y, x in zip(*np.nonzero(small), strict=True):
        centre = (int(pad + x * pitch + pitch // 2), int(pad + y * pitch + pitch // 2))
        cv2.circle(img, centre, radius, INK, -1, cv2.LINE_AA)
    return img


def _degrade(
    img: np.ndarray,
    rng: np.random.Generator,
    *,
    angle_deg: float,
    blur: float,
    noise: float,
    jpeg: int | None,
) -> np.ndarray:
    if angle_deg:
        h, w = img.shape
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle_deg, 1.0)
        img = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=PAPER)
    if blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    if noise > 0:
        img = np.clip(img + rng.normal(0, noise, img.shape), 0, 255).astype(np.uint8)
    if jpeg is not None:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, jpeg])
        assert ok
        decoded = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
        assert decoded is not None
        img = decoded
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)


def make_labels(per_cell: int, seed: int = 0) -> list[Label]:
    """``per_cell`` labels per (condition, font); dot-matrix labels use one font."""
    rng = np.random.default_rng(seed)
    fonts: dict[str, Callable[[str, int], np.ndarray]] = {}
    for name, file in TTF.items():
        if (FONT_DIR / file).is_file():
            fonts[name] = functools.partial(_ttf_font, FONT_DIR / file)
    for name, face in HERSHEY.items():
        fonts[name] = functools.partial(_hershey_font, face)
    labels: list[Label] = []
    for condition in CONDITIONS:
        if condition == "dotmatrix":
            for _ in range(per_cell * 2):
                text = code_text(rng)
                pitch = int(rng.integers(4, 7))
                line = _dotted_line(text, pitch)
                img = _degrade(line, rng, angle_deg=float(rng.uniform(-2, 2)), blur=0.5,
                               noise=3.0, jpeg=85)  # fmt: skip
                labels.append(Label(img, text, condition, "dots", pitch))
            continue
        for font, render in fonts.items():
            for _ in range(per_cell):
                text = code_text(rng)
                if condition == "clean":
                    img = _degrade(render(text, int(rng.integers(22, 41))), rng,
                                   angle_deg=0.0, blur=0.0, noise=0.0, jpeg=None)  # fmt: skip
                elif condition == "mild":
                    img = _degrade(
                        render(text, int(rng.integers(18, 37))), rng,
                        angle_deg=float(rng.uniform(-5, 5)), blur=float(rng.uniform(0.4, 0.9)),
                        noise=float(rng.uniform(3, 6)), jpeg=int(rng.integers(70, 91)),
                    )  # fmt: skip
                else:
                    img = _degrade(
                        render(text, int(rng.integers(12, 19))), rng,
                        angle_deg=float(rng.uniform(-5, 5)), blur=float(rng.uniform(1.0, 1.5)),
                        noise=float(rng.uniform(8, 12)), jpeg=int(rng.integers(35, 51)),
                    )  # fmt: skip
                labels.append(Label(img, text, condition, font))
    return labels


# --------------------------------------------------------------------------- engines

Engine = Callable[[Label], str]


def _edged(label: Label) -> str:
    dots = label.dot_pitch_px + 1 if label.dot_pitch_px else 0
    return read_text(label.image, dot_matrix_px=dots).text


_plain_local = threading.local()


def _plain(label: Label) -> str:
    import tesserocr

    api = getattr(_plain_local, "api", None)
    if api is None:
        api = tesserocr.PyTessBaseAPI(path=f"{resolve_tessdata('eng')}/", lang="eng")
        api.SetPageSegMode(tesserocr.PSM.SINGLE_BLOCK)
        _plain_local.api = api
    grey = np.ascontiguousarray(cv2.cvtColor(label.image, cv2.COLOR_BGR2GRAY))
    h, w = grey.shape
    api.SetImageBytes(grey.tobytes(), w, h, 1, w)
    api.SetSourceResolution(300)
    return str(api.GetUTF8Text())


def _rapidocr() -> Engine | None:
    try:
        from rapidocr import RapidOCR
    except ImportError:
        return None
    engine = RapidOCR(
        params={
            "Global.log_level": "error",
            "EngineConfig.onnxruntime.intra_op_num_threads": 1,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
    )

    def run(label: Label) -> str:
        out = engine(label.image)
        return " ".join(getattr(out, "txts", None) or ())

    return run


def _edged_with(tessdata_dir: Path) -> Engine:
    def run(label: Label) -> str:
        dots = label.dot_pitch_px + 1 if label.dot_pitch_px else 0
        return read_text(label.image, dot_matrix_px=dots, tessdata_dir=tessdata_dir).text

    return run


def engines(compare: Path | None = None, *, rapidocr: bool = False) -> dict[str, Engine]:
    found: dict[str, Engine] = {"edged": _edged, "tesseract-plain": _plain}
    if compare is not None:
        found[f"edged@{compare.name}"] = _edged_with(compare)
    if rapidocr:
        rapid = _rapidocr()
        if rapid is None:
            print("rapidocr: not installed (pip install rapidocr), skipped")
        else:
            found["rapidocr"] = rapid
    return found


# --------------------------------------------------------------------------- scoring


def normalise(text: str) -> str:
    return " ".join(text.split())


def levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def score(engine: Engine, labels: list[Label]) -> dict[str, Any]:
    errors = chars = exact = 0
    times: list[float] = []
    misses: list[tuple[str, str]] = []
    for label in labels:
        t0 = time.perf_counter()
        read = normalise(engine(label))
        times.append((time.perf_counter() - t0) * 1000.0)
        truth = normalise(label.text)
        errors += min(len(truth), levenshtein(read, truth))
        chars += len(truth)
        exact += read == truth
        if read != truth and len(misses) < 3:
            misses.append((truth, read))
    return {
        "labels": len(labels),
        "char_accuracy": round(1.0 - errors / max(1, chars), 4),
        "exact_line_accuracy": round(exact / max(1, len(labels)), 4),
        "ms_median": round(statistics.median(times), 2),
        "ms_p10": round(_pct(times, 10), 2),
        "ms_p90": round(_pct(times, 90), 2),
        "examples_missed": misses,
    }


def throughput(labels: list[Label], threads: int) -> float:
    """Labels per second reading ``labels`` with ``threads`` threads (default engine)."""
    chunks = [labels[i::threads] for i in range(threads)]
    for chunk in chunks:  # warm each thread's engine outside the clock
        if chunk:
            _edged(chunk[0])

    def work(chunk: list[Label]) -> None:
        for label in chunk:
            _edged(label)

    pool = [threading.Thread(target=work, args=(c,)) for c in chunks]
    t0 = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return len(labels) / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 labels per cell instead of 12")
    parser.add_argument("--per-cell", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=5, help="throughput rounds")
    parser.add_argument(
        "--compare-tessdata", type=Path, default=None, help="another eng.traineddata dir"
    )
    parser.add_argument("--rapidocr", action="store_true", help="also RapidOCR (slow)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    per_cell = args.per_cell or (3 if args.quick else 12)
    labels = make_labels(per_cell, args.seed)
    fonts = sorted({lb.font for lb in labels})
    print(f"{len(labels)} labels; fonts {', '.join(fonts)}; engine {engine_version()}")
    found = engines(args.compare_tessdata, rapidocr=args.rapidocr)
    for engine in found.values():  # load each engine once before timing
        engine(labels[0])
    report: dict[str, Any] = {"labels": len(labels), "fonts": fonts, "engines": {}}
    header = f"{'engine':24} {'condition':10} {'n':>4} {'chars':>7} {'exact':>7} {'ms p50':>7} "
    print(header + f"{'p10-p90':>13}")
    for name, engine in found.items():
        per_condition: dict[str, Any] = {}
        for condition in CONDITIONS:
            subset = [lb for lb in labels if lb.condition == condition]
            res = score(engine, subset)
            per_condition[condition] = res
            print(
                f"{name:24} {condition:10} {res['labels']:4d} {res['char_accuracy']:7.1%} "
                f"{res['exact_line_accuracy']:7.1%} {res['ms_median']:7.1f} "
                f"{res['ms_p10']:6.1f}-{res['ms_p90']:<6.1f}"
            )
        report["engines"][name] = per_condition
    sample = [lb for lb in labels if lb.condition in ("clean", "mild")]
    ones, twos = [], []
    for _ in range(args.rounds):  # interleaved, so load changes hit both alike
        ones.append(throughput(sample, 1))
        twos.append(throughput(sample, 2))
    ratios = [t / o for o, t in zip(ones, twos, strict=True)]
    one, two, ratio = statistics.median(ones), statistics.median(twos), statistics.median(ratios)
    report["throughput_labels_per_s"] = {
        "threads_1": [round(v, 1) for v in ones],
        "threads_2": [round(v, 1) for v in twos],
        "ratio_2_to_1_median": round(ratio, 2),
    }
    print(
        f"throughput (clean+mild, edged, {args.rounds} interleaved rounds): 1 thread "
        f"{one:.1f}/s ({min(ones):.1f}-{max(ones):.1f}), 2 threads {two:.1f}/s "
        f"({min(twos):.1f}-{max(twos):.1f}); 2:1 ratio median x{ratio:.2f} "
        f"({min(ratios):.2f}-{max(ratios):.2f})"
    )
    for name, res in report["engines"].items():
        for condition in ("clean", "mild"):
            for truth, read in res[condition]["examples_missed"]:
                print(f"  missed [{name}/{condition}] {truth!r} -> {read!r}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
