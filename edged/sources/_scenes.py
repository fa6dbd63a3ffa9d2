"""Procedural parts for the synthetic line: a printed label and a PCB-like board.

Pure functions: a seed and a size in, a ``(H, W, 3)`` uint8 BGR image out. The same
seed always draws the same part, so a reference taught from it matches every frame.
The label prints a lot code (``LOT`` and five digits drawn from the seed);
:func:`render_label` can print another code in its place (a misprint) and says
where the code line is.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True, slots=True)
class PrintedLabel:
    """A rendered label: the image, the lot code printed and the code line's box
    ``(x0, y0, x1, y1)`` (inclusive-exclusive) in label pixels."""

    image: np.ndarray
    lot_code: str
    nominal_lot_code: str
    lot_box_xyxy: tuple[int, int, int, int]


def render_scene(kind: str, *, width: int, height: int, seed: int) -> np.ndarray:
    """The nominal (defect-free, centred) part as ``(height, width, 3)`` uint8 BGR."""
    if kind == "label":
        return render_label(width=width, height=height, seed=seed).image
    if kind == "pcb":
        return _pcb(width, height, np.random.default_rng(seed))
    msg = f"scene: expected 'label' or 'pcb', got {kind!r}"
    raise ValueError(msg)


def render_label(
    *, width: int, height: int, seed: int, lot_code: str | None = None
) -> PrintedLabel:
    """The label of ``seed``; ``lot_code`` replaces the code it would print (the rest
    of the label, drawn from the same random stream, is unchanged)."""
    return _label(width, height, np.random.default_rng(seed), lot_code)


def _label(w: int, h: int, rng: np.random.Generator, lot_code: str | None) -> PrintedLabel:
    img = np.full((h, w, 3), (70, 62, 58), np.uint8)  # dark conveyor belt
    # Belt texture: faint horizontal streaks.
    streaks = rng.normal(0, 3, (h, 1)).astype(np.float32)
    img = np.clip(img.astype(np.float32) + streaks[:, :, None], 0, 255).astype(np.uint8)
    x0, y0, x1, y1 = int(w * 0.12), int(h * 0.12), int(w * 0.88), int(h * 0.88)
    # Label paper, exposed well below saturation as a set-up camera would see it.
    cv2.rectangle(img, (x0, y0), (x1, y1), (200, 206, 210), -1)
    cv2.rectangle(img, (x0 + 8, y0 + 8), (x1 - 8, y1 - 8), (40, 40, 160), 3)  # red frame
    s = min(w, h) / 1024.0
    font = _FONT
    nominal = f"LOT {rng.integers(10000, 99999)}"
    printed = nominal if lot_code is None else lot_code
    lines = ["EDGED PARTS CO.", printed, "QTY 24  REV B"]
    scale, thickness = 2.2 * s, max(1, int(5 * s))
    for i, text in enumerate(lines):
        cv2.putText(
            img, text, (x0 + int(40 * s), y0 + int((110 + i * 90) * s)),
            font, scale, (30, 30, 30), thickness, cv2.LINE_AA,
        )  # fmt: skip
    (tw, th), base = cv2.getTextSize(printed, font, scale, thickness)
    lx, ly = x0 + int(40 * s), y0 + int(200 * s)
    lot_box = (lx - thickness, ly - th - thickness, lx + tw + thickness, ly + base + thickness)
    # A barcode: bars of random widths.
    bx, by, bh = x0 + int(40 * s), y0 + int(400 * s), int(160 * s)
    x = bx
    while x < x1 - int(300 * s):
        bw = int(rng.integers(1, 5) * max(1, 2 * s))
        if rng.random() < 0.55:
            cv2.rectangle(img, (x, by), (x + bw - 1, by + bh), (20, 20, 20), -1)
        x += bw
    # A logo: blue disk with a white ring.
    cx, cy, r = x1 - int(170 * s), y0 + int(170 * s), int(100 * s)
    cv2.circle(img, (cx, cy), r, (170, 90, 20), -1, cv2.LINE_AA)
    cv2.circle(img, (cx, cy), int(r * 0.6), (214, 214, 214), max(1, int(10 * s)), cv2.LINE_AA)
    # Small print (fine detail).
    for i in range(4):
        cv2.putText(
            img, f"SN {rng.integers(10**7, 10**8)}  CE  {i}",
            (x1 - int(560 * s), y1 - int((40 + 34 * i) * s)),
            font, 0.8 * s, (60, 60, 60), max(1, int(2 * s)), cv2.LINE_AA,
        )  # fmt: skip
    return PrintedLabel(img, printed, nominal, lot_box)


def _pcb(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    img = np.full((h, w, 3), (40, 40, 40), np.uint8)
    x0, y0, x1, y1 = int(w * 0.08), int(h * 0.08), int(w * 0.92), int(h * 0.92)
    cv2.rectangle(img, (x0, y0), (x1, y1), (50, 110, 30), -1)  # solder mask green
    s = min(w, h) / 1024.0
    # Traces: random Manhattan paths.
    for _ in range(40):
        px, py = int(rng.integers(x0 + 20, x1 - 20)), int(rng.integers(y0 + 20, y1 - 20))
        for _ in range(4):
            if rng.random() < 0.5:
                nx, ny = int(np.clip(px + rng.integers(-200, 200) * s, x0 + 10, x1 - 10)), py
            else:
                nx, ny = px, int(np.clip(py + rng.integers(-200, 200) * s, y0 + 10, y1 - 10))
            cv2.line(img, (px, py), (nx, ny), (60, 150, 60), max(1, int(6 * s)))
            px, py = nx, ny
        cv2.circle(img, (px, py), max(2, int(9 * s)), (90, 190, 215), -1)  # via / pad
    # ICs with pins.
    for _ in range(5):
        cw, ch = int(rng.integers(120, 220) * s), int(rng.integers(80, 160) * s)
        cx = int(rng.integers(x0 + 40, max(x0 + 41, x1 - cw - 40)))
        cy = int(rng.integers(y0 + 40, max(y0 + 41, y1 - ch - 40)))
        cv2.rectangle(img, (cx, cy), (cx + cw, cy + ch), (25, 25, 25), -1)
        pin = max(2, int(10 * s))
        for k in range(cx + pin, cx + cw - pin, 2 * pin):
            cv2.rectangle(img, (k, cy - pin), (k + pin // 2 + 1, cy), (170, 200, 210), -1)
            cv2.rectangle(img, (k, cy + ch), (k + pin // 2 + 1, cy + ch + pin), (170, 200, 210), -1)
        cv2.putText(
            img, f"U{rng.integers(1, 40)}", (cx + 8, cy + ch // 2 + int(10 * s)),
            cv2.FONT_HERSHEY_SIMPLEX, 1.0 * s, (200, 200, 200), max(1, int(2 * s)), cv2.LINE_AA,
        )  # fmt: skip
    # Mounting holes.
    for hx, hy in ((x0 + 40, y0 + 40), (x1 - 40, y0 + 40), (x0 + 40, y1 - 40), (x1 - 40, y1 - 40)):
        cv2.circle(img, (hx, hy), max(4, int(22 * s)), (20, 20, 20), -1)
        cv2.circle(img, (hx, hy), max(5, int(28 * s)), (90, 190, 215), max(1, int(4 * s)))
    return img
