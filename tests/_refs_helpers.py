"""Test images for reference inspection: small textured parts and exact captures.

A *world* is drawn at twice the camera size; :func:`capture` poses it (shift, rotation
about the image centre, OpenCV's counter-clockwise angle), integrates it down to the
camera size and applies gain/offset/noise, so a known pose is a known answer.
"""

from __future__ import annotations

import cv2
import numpy as np

OVERSAMPLE = 2


def world(
    size_wh: tuple[int, int] = (320, 240), *, seed: int = 0, colour: bool = False
) -> np.ndarray:
    """A textured part: smooth shading, grain, discs, bars and text (2x camera size)."""
    rng = np.random.default_rng(seed)
    w, h = size_wh[0] * OVERSAMPLE, size_wh[1] * OVERSAMPLE
    base = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 12)
    img = 120.0 + base / (base.std() + 1e-6) * 25.0
    img += cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 1.5) * 10
    out = np.clip(img, 20, 230).astype(np.uint8)
    out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
    for _ in range(14):
        c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        colour_v = tuple(int(v) for v in rng.integers(30, 220, 3))
        cv2.circle(out, c, int(rng.integers(6, 30)), colour_v, -1, cv2.LINE_AA)
    for _ in range(6):
        x, y = int(rng.integers(0, w - 60)), int(rng.integers(0, h - 20))
        cv2.rectangle(out, (x, y), (x + int(rng.integers(20, 90)), y + 12), (40, 40, 40), -1)
    cv2.putText(
        out,
        "LOT 42",
        (w // 8, h - h // 6),
        cv2.FONT_HERSHEY_SIMPLEX,
        2.0,
        (230, 230, 230),
        4,
        cv2.LINE_AA,
    )
    out = cv2.GaussianBlur(out, (0, 0), 1.0)
    return out if colour else cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)


def capture(
    wld: np.ndarray,
    *,
    dx: float = 0.0,
    dy: float = 0.0,
    angle_deg: float = 0.0,
    gain: float = 1.0,
    offset: float = 0.0,
    noise: float = 0.0,
    seed: int = 1,
) -> np.ndarray:
    """Camera image of the world moved by (dx, dy) camera pixels and rotated by angle."""
    h, w = wld.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle_deg, 1.0)
    m[0, 2] += dx * OVERSAMPLE
    m[1, 2] += dy * OVERSAMPLE
    big = cv2.warpAffine(wld, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    img = cv2.resize(big, (w // OVERSAMPLE, h // OVERSAMPLE), interpolation=cv2.INTER_AREA)
    f = img.astype(np.float32) * gain + offset
    if noise > 0:
        f += np.random.default_rng(seed).standard_normal(f.shape).astype(np.float32) * noise
    return np.clip(np.rint(f), 0, 255).astype(np.uint8)


def to_query(
    x: float, y: float, size_wh: tuple[int, int], *, dx: float, dy: float, angle_deg: float
) -> tuple[float, float]:
    """Where a reference pixel ``(x, y)`` lands in a capture with this pose."""
    cx, cy = (size_wh[0] - 1) / 2, (size_wh[1] - 1) / 2
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    # getRotationMatrix2D: [[c, s], [-s, c]] about the centre
    qx = c * (x - cx) + s * (y - cy) + cx + dx
    qy = -s * (x - cx) + c * (y - cy) + cy + dy
    return float(qx), float(qy)


def paint_square(img: np.ndarray, x: int, y: int, size: int, delta: int) -> np.ndarray:
    """A copy of ``img`` with ``delta`` added to a ``size`` x ``size`` square at (x, y)."""
    out = img.astype(np.int16)
    out[y : y + size, x : x + size] += delta
    return np.clip(out, 0, 255).astype(np.uint8)
