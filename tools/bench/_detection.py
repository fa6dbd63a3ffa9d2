"""Detection figures for the peers section, from the reference-inspection benchmark.

``tools/bench_detection.py`` (the references area) owns the scenes (procedural
worlds with nuisance and defects) and the methods edged, absdiff and SSIM; this
module runs a slice of it and adds pixelmatch-fast on the very same queries (same
seeds, same scene generator, same scoring), so every method is judged alike.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

Box = tuple[int, int, int, int]


def load() -> Any | None:
    """The detection benchmark module, or None when this checkout lacks it."""
    try:
        return importlib.import_module("tools.bench_detection")
    except ImportError:
        return None


def pixelmatch_boxes(ref: np.ndarray, query: np.ndarray, min_area: float) -> list[Box]:
    """pixelmatch-fast as users run it: mismatched pixels (threshold 0.1, anti-aliasing
    ignored) as a mask, external contours of at least ``min_area`` px.

    ref, query: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR of the same size.
    """
    from PIL import Image
    from pixelmatch import pixelmatch

    def pil(img: np.ndarray) -> Image.Image:
        code = cv2.COLOR_GRAY2RGB if img.ndim == 2 else cv2.COLOR_BGR2RGB
        return Image.fromarray(cv2.cvtColor(img, code))

    a, b = pil(ref), pil(query)
    out = Image.new("RGBA", a.size)
    pixelmatch(a, b, output=out, threshold=0.1, diff_mask=True)
    mask = (np.asarray(out)[:, :, 3] > 0).astype(np.uint8) * 255
    contours, _h = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [cv2.boundingRect(c) for c in contours if cv2.contourArea(c) >= min_area]


def run(
    mod: Any,
    *,
    size_wh: tuple[int, int],
    kinds: tuple[str, ...],
    queries: int,
    with_pixelmatch: bool,
    log: Callable[[str], None],
) -> dict[str, dict[str, Any]]:
    """Method -> figures (``pairs, recall, far, region_precision, localised, median_ms``).

    Methods: those of ``mod.run`` (edged at the recipe's working size, edged at
    LTU's 900 px, absdiff, SSIM) and, with ``with_pixelmatch``, pixelmatch-fast.
    """
    w, h = size_wh
    sl = mod.Slice(w, h, kinds, 1, queries)
    tallies = mod.run([sl], seed=1, ssim_every=1, variation=False, log=log)
    rows = {name: t.row() for name, t in tallies[f"{w}x{h}"].items()}
    if with_pixelmatch:
        rows["pixelmatch"] = _pixelmatch_tally(mod, sl, seed=1).row()
    return rows


def _pixelmatch_tally(mod: Any, sl: Any, *, seed: int) -> Any:
    """pixelmatch on the queries ``mod.run`` made for ``sl`` (its seeding, replayed)."""
    scenes = mod._scenes
    tally = mod.Tally()
    w, h = sl.width, sl.height
    min_area = 16.0 * (min(w, h) / 768.0) ** 2
    for kind in sl.kinds:
        kind_i = scenes.KINDS.index(kind)
        for colour in (True, False):
            for wi in range(sl.worlds):
                wseed = seed * 100_000 + kind_i * 1000 + int(colour) * 100 + wi + w
                rng = np.random.default_rng(wseed)
                wld = scenes.world(kind, (w, h), colour=colour, seed=wseed)
                ref = scenes.capture(wld, scenes.REFERENCE_POSE, (w, h), rng)
                for qi in range(sl.queries):
                    defect = None if qi % 2 == 0 else scenes.DEFECTS[(qi // 2 + wi + kind_i) % 4]
                    q, _pose, d = scenes.query(wld, (w, h), rng, defect)
                    mod._peer(tally, pixelmatch_boxes, ref, q, d, f"{kind}/{qi}", min_area)
    return tally
