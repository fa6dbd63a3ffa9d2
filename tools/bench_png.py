"""Benchmark: edged's PNG encoder and decoder against OpenCV's, one run, same frames.

    python tools/bench_png.py              # 1280x1024 and 2448x2048, ~1 min
    python tools/bench_png.py --rounds 5   # quicker

Frames are the benchmark's label line (colour with sensor noise, as a camera
delivers it) and its grey luma. Per frame, in interleaved rounds:

- encode: ``edged.imaging.png_write.encode_png`` at level 1 (what HTTP answers use)
  and 3 (what the reference store uses) against ``cv2.imencode(".png")`` at zlib
  level 1 (what edged used before) and 3; the file size of each;
- decode: edged's HTTP decoder (``edged.http._decode.decode_encoded``: the fast
  decoder, or OpenCV where it steps aside) and ``cv2.imdecode`` on the file
  ``cv2.imencode(".png", image)`` writes with no options (what clients usually send)
  and on the file edged writes at level 1.

Every encoded file is checked to decode to the same pixels. Medians [min-max] in
ms, the speed-up against OpenCV at the same level, and the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np

from edged.http._decode import decode_encoded
from edged.imaging.png import decode_png
from edged.imaging.png_write import encode_png
from tools.bench._frames import make_frames
from tools.bench._measure import Samples, interleaved

SIZES = ((1280, 1024), (2448, 2048))


def _cv_encode(image: np.ndarray, level: int) -> bytes:
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, level])
    assert ok
    return bytes(buf.tobytes())


def _cv_decode(data: bytes) -> np.ndarray:
    out = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert out is not None
    return out


def _fmt(s: Samples) -> str:
    return f"{s.median_ms:.1f} [{s.min_ms:.1f}–{s.max_ms:.1f}]"


def run_frame(label: str, image: np.ndarray, rounds: int) -> list[str]:
    files = {
        "edged L1": encode_png(image, level=1),
        "edged L3": encode_png(image, level=3),
        "OpenCV L1": _cv_encode(image, 1),
        "OpenCV L3": _cv_encode(image, 3),
    }
    ok, default = cv2.imencode(".png", image)
    assert ok
    client = default.tobytes()
    for name, data in files.items():
        back = _cv_decode(data)
        assert np.array_equal(back, image), f"{name} is not lossless"
        fast = decode_png(data)
        assert fast is None or np.array_equal(fast, image), f"{name} decodes differently"
    encoders: dict[str, Callable[[], object]] = {
        "encode edged L1": lambda: encode_png(image, level=1),
        "encode edged L3": lambda: encode_png(image, level=3),
        "encode OpenCV L1": lambda: _cv_encode(image, 1),
        "encode OpenCV L3": lambda: _cv_encode(image, 3),
        "decode OpenCV's file: edged": lambda: decode_encoded(client, max_pixels=1 << 30),
        "decode OpenCV's file: OpenCV": lambda: _cv_decode(client),
        "decode edged's file: edged": lambda: decode_encoded(files["edged L1"], max_pixels=1 << 30),
        "decode edged's file: OpenCV": lambda: _cv_decode(files["edged L1"]),
    }
    load0 = os.getloadavg()[0]
    s = interleaved(encoders, rounds=rounds)
    load1 = os.getloadavg()[0]
    h, w = image.shape[:2]
    kind = "BGR" if image.ndim == 3 else "grey"
    rows = [f"| {label} {w}×{h} {kind} | | | load {load0:.1f}→{load1:.1f} |"]
    for level in (1, 3):
        mine, theirs = s[f"encode edged L{level}"], s[f"encode OpenCV L{level}"]
        rows.append(
            f"| encode, level {level} | {_fmt(mine)} ({len(files[f'edged L{level}']) / 1e6:.2f} MB)"
            f" | {_fmt(theirs)} ({len(files[f'OpenCV L{level}']) / 1e6:.2f} MB) | "
            f"{theirs.median_ms / mine.median_ms:.1f}× |"
        )
    for whose in ("OpenCV's", "edged's"):
        mine, theirs = s[f"decode {whose} file: edged"], s[f"decode {whose} file: OpenCV"]
        rows.append(
            f"| decode {whose} file | {_fmt(mine)} | {_fmt(theirs)} | "
            f"{theirs.median_ms / mine.median_ms:.1f}× |"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds per frame")
    args = ap.parse_args(argv)
    print("| frame / operation | edged ms | OpenCV ms | speed-up |")
    print("| --- | --- | --- | --- |")
    for size in SIZES:
        frame = make_frames(size).defective
        for image in (frame, cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)):
            for row in run_frame("label", image, max(1, args.rounds)):
                print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
