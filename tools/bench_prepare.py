"""In-process cost of LTU ``differences`` without decoding: prepare image1, compare image2.

What ``POST /v2/services/image/differences`` spends besides PNG decoding and HTTP, on
the benchmark's frames (``tools.bench._frames``: a colour label line, shifted,
rotated, relit, with a defect), at the LTU default working resolution (400):

- ``fresh``: ``prepare_reference([image1])`` + ``compare`` + the LTU JSON — a new image1;
- ``repeated``: ``compare`` + the LTU JSON against a reference already prepared and
  used once — the reference cache's hit;
- ``prepare_reference`` alone (part of its work may be deferred to the first compare,
  so ``fresh`` is the figure that counts).

Items run interleaved (one call of each per round, shuffled), medians with
[min-max]; the load average is printed before and after, since the machine may be
shared. Compare two checkouts back to back in one session::

    PYTHONPATH=/work/main  .venv/bin/python -m tools.bench_prepare
    PYTHONPATH=.           .venv/bin/python -m tools.bench_prepare
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import edged
from edged.checks.difference import DifferenceSettings, compare
from edged.checks.ltu_differences import ltu_differences
from edged.checks.prepared import PreparedReference, ReferenceParams, prepare_reference
from tools.bench._frames import BenchFrames, make_frames
from tools.bench._measure import interleaved

SIZES: tuple[tuple[int, int], ...] = ((1024, 768), (2448, 2048))


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def items(fr: BenchFrames, resolution: int) -> dict[str, Callable[[], object]]:
    """The timed calls for one frame size."""
    settings = DifferenceSettings.preset(3)
    params = ReferenceParams(
        resolution=resolution,
        behaviors=settings.behaviors,
        motion_model=settings.motion_model,
        colour=settings.colour,
    )
    wh = fr.size_wh

    def answer(ref: PreparedReference) -> object:
        res = compare(ref, fr.defective, settings)
        return ltu_differences(res, image1_wh=wh, image2_wh=wh)

    cached = prepare_reference([fr.reference], params=params)
    answer(cached)
    return {
        "fresh (prepare + compare + LTU JSON)": lambda: answer(
            prepare_reference([fr.reference], params=params)
        ),
        "repeated (compare + LTU JSON, cached reference)": lambda: answer(cached),
        "prepare_reference alone": lambda: prepare_reference([fr.reference], params=params),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--resolution", type=int, default=400, help="LTU working resolution")
    ap.add_argument(
        "--sizes", default=",".join(f"{w}x{h}" for w, h in SIZES), help="e.g. 2448x2048,1024x768"
    )
    args = ap.parse_args(argv)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    print(f"edged from {os.path.dirname(edged.__file__)}; cores {os.cpu_count()}")
    print(f"load average before: {_load()}")
    for w, h in sizes:
        size = (w, h)
        fr = make_frames(size)
        samples = interleaved(items(fr, args.resolution), rounds=args.rounds, warmup=2)
        print(f"{size[0]}x{size[1]} (resolution {args.resolution}, {args.rounds} rounds)")
        for name, s in samples.items():
            print(f"  {name:50s} {s.median_ms:7.2f} ms  [{s.min_ms:.2f}-{s.max_ms:.2f}]")
    print(f"load average after: {_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
