"""Procedural textured surfaces and the defects drawn on them.

Pure functions: a generator and a size in, ``(H, W, 3)`` uint8 BGR out. Every
call draws a new instance of the same texture (no two good parts are
pixel-alike), as wood, textiles or granulates are: what the ``anomaly`` check
is for. Used by the synthetic source's ``texture`` scene, the tests and
``tools/bench_anomaly.py``.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

TextureKind = Literal["granulate", "grain", "weave"]
TEXTURE_KINDS: tuple[TextureKind, ...] = ("granulate", "grain", "weave")
DefectKind = Literal["scratch", "spot", "foreign", "stain"]
DEFECT_KINDS: tuple[DefectKind, ...] = ("scratch", "spot", "foreign", "stain")

# A tint per texture (BGR), so colour stains have something to differ from.
_TINT = {"granulate": (0.92, 0.98, 1.0), "grain": (0.62, 0.82, 1.0), "weave": (1.0, 0.9, 0.85)}


def _noise(rng: np.random.Generator, h: int, w: int, sigma: float) -> np.ndarray:
    n = rng.normal(0.0, 1.0, (h, w)).astype(np.float32)
    n = cv2.GaussianBlur(n, (0, 0), sigma)
    std = float(n.std())
    return n / std if std > 0 else n


def texture_grey(
    kind: TextureKind, *, width: int, height: int, rng: np.random.Generator
) -> np.ndarray:
    """A new instance of texture ``kind`` as ``(height, width)`` float32 luma in 0..255."""
    h, w = height, width
    if kind == "granulate":  # granulate / cast surface: blobs at two scales
        t = 0.7 * _noise(rng, h, w, 1.5) + 0.5 * _noise(rng, h, w, 4.0)
        out = 128.0 + 30.0 * t
    elif kind == "grain":  # wood-like: stretched noise and wavy rings along x
        stretched = cv2.resize(_noise(rng, h, max(8, w // 8), 1.2), (w, h))
        yy = np.arange(h, dtype=np.float32)[:, None]
        xx = np.arange(w, dtype=np.float32)[None, :]
        phase = float(rng.uniform(0, 2 * np.pi))
        warp = 6.0 * np.sin(xx / 37.0 + phase) + 3.0 * _noise(rng, h, w, 12.0)
        rings = np.sin(2 * np.pi * (yy + warp) / 11.0)
        out = 120.0 + 22.0 * rings + 14.0 * stretched + 4.0 * _noise(rng, h, w, 0.7)
    elif kind == "weave":  # textile: two orthogonal threads with jitter
        yy = np.arange(h, dtype=np.float32)[:, None]
        xx = np.arange(w, dtype=np.float32)[None, :]
        jx = 0.8 * _noise(rng, h, w, 6.0)
        jy = 0.8 * _noise(rng, h, w, 6.0)
        px, py = rng.uniform(0, 2 * np.pi, 2)
        warp = np.sin(2 * np.pi * (xx + jx) / 6.0 + px)
        weft = np.sin(2 * np.pi * (yy + jy) / 6.0 + py)
        out = 125.0 + 28.0 * warp * weft + 10.0 * (warp + weft) + 6.0 * _noise(rng, h, w, 0.8)
    else:
        msg = f"texture: expected one of {list(TEXTURE_KINDS)}, got {kind!r}"
        raise ValueError(msg)
    result: np.ndarray = np.clip(out, 0, 255).astype(np.float32)
    return result


def render_texture(
    kind: TextureKind, *, width: int, height: int, rng: np.random.Generator
) -> np.ndarray:
    """A new good instance of texture ``kind``, ``(height, width, 3)`` uint8 BGR."""
    grey = texture_grey(kind, width=width, height=height, rng=rng)
    tint = np.asarray(_TINT[kind], np.float32)
    return np.clip(grey[..., None] * tint, 0, 255).astype(np.uint8)


def draw_defect(
    image: np.ndarray,
    kind: DefectKind,
    *,
    rng: np.random.Generator,
    box_xyxy: tuple[int, int, int, int] | None = None,
    size_px: int = 40,
    base: TextureKind | None = None,
) -> tuple[int, int, int, int]:
    """Draw a defect of ``kind`` into ``image`` (grey or BGR uint8, in place).

    The defect lies inside ``box_xyxy`` (default: the image less a 20 % band);
    ``size_px`` is its typical extent. A ``foreign`` patch is cut from a texture
    other than ``base`` (the image's own texture, when it is one of ours).
    Returns the defect's bounding box ``(x0, y0, x1, y1)`` (exclusive ends).
    """
    h, w = image.shape[:2]
    bx0, by0, bx1, by1 = box_xyxy or (w // 5, h // 5, w - w // 5, h - h // 5)
    s = max(6, min(size_px, bx1 - bx0 - 2, by1 - by0 - 2))
    x = int(rng.integers(bx0, max(bx0 + 1, bx1 - s)))
    y = int(rng.integers(by0, max(by0 + 1, by1 - s)))
    colour = image.ndim == 3
    if kind == "scratch":
        x2 = x + s - 1
        y2 = int(np.clip(y + rng.integers(-s // 3, s // 3 + 1), by0, by1 - 1))
        value = 25 if rng.random() < 0.5 else 235
        cv2.line(image, (x, y), (x2, y2), (value, value, value) if colour else value, 2)
        return min(x, x2) - 1, min(y, y2) - 1, max(x, x2) + 2, max(y, y2) + 2
    if kind == "spot":
        r = max(3, s // 4)
        value = 30
        cx, cy = x + s // 2, y + s // 2
        cv2.circle(image, (cx, cy), r, (value, value, value) if colour else value, -1, cv2.LINE_AA)
        return cx - r - 1, cy - r - 1, cx + r + 2, cy + r + 2
    if kind == "foreign":
        others = [k for k in TEXTURE_KINDS if k != base]
        src = others[int(rng.integers(len(others)))]
        patch = render_texture(src, width=s, height=s, rng=rng)
        image[y : y + s, x : x + s] = patch if colour else cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY)
        return x, y, x + s, y + s
    if kind == "stain":
        mask = np.zeros((h, w), np.float32)
        cv2.ellipse(mask, (x + s // 2, y + s // 2), (s // 2, s // 3), float(rng.uniform(0, 180)),
                    0, 360, 1.0, -1, cv2.LINE_AA)  # fmt: skip
        mask = cv2.GaussianBlur(mask, (0, 0), 2.0)
        if colour:
            tint = np.asarray((0.75, 0.95, 1.25), np.float32)  # rust-like: more red, less blue
            gain = 1.0 + mask[..., None] * (tint - 1.0)
        else:
            gain = 1.0 - 0.3 * mask
        image[...] = np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        return x, y, x + s, y + s
    msg = f"defect: expected one of {list(DEFECT_KINDS)}, got {kind!r}"
    raise ValueError(msg)
