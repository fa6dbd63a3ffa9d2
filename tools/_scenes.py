"""Procedural, real-looking inspection scenes for the detection benchmark (no download).

A *world* is a part rendered at twice the camera resolution (so a captured pose is an
area-integrated sample, like a sensor, not a nearest-pixel copy). A *capture* poses
the world (shift, rotation about the centre), integrates it down to the camera
resolution, applies optics blur, gain/offset and sensor noise, and quantises.

Scene kinds: ``fabric`` (regular woven texture with a sewn label), ``metal`` (irregular
brushed/cast texture, machined holes, stamped text), ``label`` (printed text,
barcode and logo on a carton), ``pcb`` (components, pads and traces on a board),
``parts`` (machined parts on a conveyor belt), ``print`` (a colour print: inked
areas, logo and text, only in the *line* nuisance). Each comes in colour or grey.

Two nuisance sets: ``legacy`` (shift ±8 px, rotation ±2°, uniform gain/offset, noise
1-3; defects of contrast 45-90) and ``line`` (what a real line adds, issue 17: shift
±12 px, rotation ±3°, scale 0.98-1.02, a perspective tilt moving each corner up to
3 px, a gain gradient of up to ±15 % across the image on top of global gain/offset,
defocus blur sigma <= 0.8 and JPEG quality 80-95 on the query only, noise 1-4; the four
defects at half contrast 20-45 plus ``tiny`` spots of radius 3-7 px, ``hairline``
scratches 1-2 px wide and, on colour parts, ``colour`` regions of the wrong hue at
matched brightness).

Defects (spot, scratch, missing patch, stain) are drawn into the world before the
capture, so they move with the part; their ground-truth mask is returned in the
query's pixel coordinates. ``contrast`` is the change in grey (luma) levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

KINDS = ("fabric", "metal", "label", "pcb", "parts")
LINE_KINDS = (*KINDS, "print")
DEFECTS = ("spot", "scratch", "missing", "stain")
LINE_DEFECTS = (*DEFECTS, "tiny", "hairline", "colour")
OVERSAMPLE = 2
_WORDS = [
    "LOT",
    "REF",
    "QC",
    "PASS",
    "2024",
    "A-17",
    "EXP",
    "BATCH",
    "NO.",
    "SN",
    "0042",
    "MADE IN EU",
    "CE",
    "X7",
    "OK",
    "TYPE B",
    "220V",
    "50Hz",
    "IP65",
    "DATE",
]


@dataclass(frozen=True)
class Pose:
    dx: float
    dy: float
    angle_deg: float
    gain: float
    offset: float
    noise: float
    # line nuisance (defaults = none: the legacy capture, bit for bit)
    scale: float = 1.0
    tilt_px: tuple[float, ...] = ()  # 8 corner offsets (x0, y0, .. x3, y3), camera px
    gradient: tuple[float, float] = (0.0, 0.0)  # gain slope along x, y (-1..1 across)
    blur: float = 0.0  # extra Gaussian sigma on the query, camera px
    jpeg: int = 0  # JPEG quality the query is sent with (0 = none)

    @property
    def line(self) -> bool:
        return bool(self.tilt_px) or self.scale != 1.0 or self.gradient != (0.0, 0.0)


@dataclass(frozen=True)
class Defect:
    kind: str
    contrast: float
    mask: np.ndarray  # (H, W) bool in query coordinates (camera pixels)
    box_xywh: tuple[int, int, int, int]


def _noise(rng: np.random.Generator, h: int, w: int, sigma: float) -> np.ndarray:
    """Smooth noise with unit-ish std, made cheaply at reduced size for large sigma."""
    f = max(1, int(sigma // 3))
    small = rng.standard_normal((h // f + 2, w // f + 2)).astype(np.float32)
    small = cv2.GaussianBlur(small, (0, 0), max(sigma / f, 0.5))
    small /= small.std() + 1e-6
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)[:h, :w]


def _text(
    img: np.ndarray,
    rng: np.random.Generator,
    x: int,
    y: int,
    scale: float,
    colour: int | tuple[int, int, int],
    thick: int,
) -> None:
    words = " ".join(rng.choice(_WORDS, size=int(rng.integers(1, 4))))
    cv2.putText(img, words, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thick, cv2.LINE_AA)


def _fabric(rng: np.random.Generator, h: int, w: int, u: float) -> np.ndarray:
    period = rng.uniform(7, 13) * u
    ang = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = np.sin((xx * np.cos(ang) + yy * np.sin(ang)) * 2 * np.pi / period)
    b = np.sin((-xx * np.sin(ang) + yy * np.cos(ang)) * 2 * np.pi / period)
    weave = np.where((a > 0) ^ (b > 0), a * a, b * b) * 50 + _noise(rng, h, w, 2 * u) * 6
    base = np.array(rng.uniform(60, 170, 3), np.float32)
    img = base[None, None, :] + weave[..., None] * rng.uniform(0.6, 1.0, 3).astype(np.float32)
    img += _noise(rng, h, w, 60 * u)[..., None] * 8
    img = np.clip(img, 10, 245).astype(np.uint8)
    lx, ly = int(rng.uniform(0.1, 0.5) * w), int(rng.uniform(0.1, 0.5) * h)
    lw, lh = int(w * rng.uniform(0.25, 0.4)), int(h * rng.uniform(0.18, 0.3))
    cv2.rectangle(img, (lx, ly), (lx + lw, ly + lh), (228, 226, 220), -1, cv2.LINE_AA)
    for i in range(3):
        _text(
            img,
            rng,
            lx + int(12 * u),
            ly + int((30 + 28 * i) * u),
            0.8 * u / 1.0,
            (40, 40, 40),
            max(1, int(2 * u)),
        )
    return img


def _metal(rng: np.random.Generator, h: int, w: int, u: float) -> np.ndarray:
    grain = _noise(rng, h, w, 1.2 * u)
    k = int(25 * u) | 1
    ang = rng.uniform(0, 180)
    kern = np.zeros((k, k), np.float32)
    kern[k // 2, :] = 1.0 / k
    rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), ang, 1.0)
    kern = cv2.warpAffine(kern, rot, (k, k))
    kern /= kern.sum()
    brushed = cv2.filter2D(grain, -1, kern)
    brushed /= brushed.std() + 1e-6
    level = rng.uniform(110, 160)
    img = level + brushed * 12 + _noise(rng, h, w, 80 * u) * 10
    img = np.clip(img, 15, 240).astype(np.uint8)
    for _ in range(int(rng.integers(3, 7))):
        c = (int(rng.uniform(0.1, 0.9) * w), int(rng.uniform(0.1, 0.9) * h))
        r = int(rng.uniform(10, 28) * u)
        cv2.circle(img, c, r + int(3 * u), 190, -1, cv2.LINE_AA)
        cv2.circle(img, c, r, 35, -1, cv2.LINE_AA)
    _text(img, rng, int(0.1 * w), int(0.85 * h), 1.2 * u, 70, max(1, int(3 * u)))
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)


def _label(rng: np.random.Generator, h: int, w: int, u: float) -> np.ndarray:
    carton = np.array(
        [rng.uniform(90, 140), rng.uniform(130, 170), rng.uniform(170, 210)], np.float32
    )
    img = carton[None, None, :] + _noise(rng, h, w, 3 * u)[..., None] * 6
    img = np.clip(img + _noise(rng, h, w, 100 * u)[..., None] * 6, 10, 245).astype(np.uint8)
    x0, y0 = int(0.08 * w), int(0.1 * h)
    x1, y1 = int(0.92 * w), int(0.9 * h)
    cv2.rectangle(img, (x0, y0), (x1, y1), (236, 236, 232), -1, cv2.LINE_AA)
    ink = (int(rng.uniform(20, 90)), int(rng.uniform(20, 60)), int(rng.uniform(10, 40)))
    cv2.rectangle(img, (x0, y0), (x1, y0 + int(0.12 * h)), ink, -1, cv2.LINE_AA)
    for i in range(7):
        _text(
            img,
            rng,
            x0 + int(20 * u),
            y0 + int(0.12 * h) + int((40 + 36 * i) * u),
            0.9 * u,
            (30, 30, 30),
            max(1, int(2 * u)),
        )
    bx = int(0.6 * w)
    x = bx
    while x < int(0.88 * w):
        bw = int(rng.integers(1, 5) * u * 1.5)
        if rng.random() < 0.55:
            cv2.rectangle(img, (x, int(0.6 * h)), (x + bw, int(0.82 * h)), (15, 15, 15), -1)
        x += bw + int(u * 1.5)
    c = (int(0.72 * w), int(0.4 * h))
    cv2.circle(img, c, int(40 * u), (0, 0, 200), -1, cv2.LINE_AA)
    cv2.circle(img, c, int(24 * u), (236, 236, 232), -1, cv2.LINE_AA)
    return img


def _pcb(rng: np.random.Generator, h: int, w: int, u: float) -> np.ndarray:
    board = np.array([rng.uniform(30, 60), rng.uniform(90, 130), rng.uniform(20, 50)], np.float32)
    img = board[None, None, :] + _noise(rng, h, w, 2 * u)[..., None] * 5
    img = np.clip(img, 10, 245).astype(np.uint8)
    for _ in range(int(rng.integers(25, 45))):
        p1 = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        p2 = (p1[0] + int(rng.normal(0, 150 * u)), p1[1])
        p3 = (p2[0], p2[1] + int(rng.normal(0, 150 * u)))
        cv2.polylines(
            img, [np.array([p1, p2, p3])], False, (60, 150, 70), max(1, int(3 * u)), cv2.LINE_AA
        )
    for _ in range(int(rng.integers(40, 70))):
        c = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        cv2.circle(img, c, int(rng.uniform(4, 8) * u), (80, 170, 200), -1, cv2.LINE_AA)
    for _ in range(int(rng.integers(8, 14))):
        x, y = int(rng.uniform(0.05, 0.85) * w), int(rng.uniform(0.05, 0.85) * h)
        cw, ch = int(rng.uniform(30, 110) * u), int(rng.uniform(20, 70) * u)
        if rng.random() < 0.5:
            for i in range(0, cw, max(2, int(8 * u))):
                cv2.rectangle(
                    img,
                    (x + i, y - int(6 * u)),
                    (x + i + int(3 * u), y + ch + int(6 * u)),
                    (190, 190, 195),
                    -1,
                )
            cv2.rectangle(img, (x, y), (x + cw, y + ch), (25, 25, 28), -1, cv2.LINE_AA)
            _text(img, rng, x + int(4 * u), y + ch // 2 + int(5 * u), 0.4 * u, (170, 170, 170), 1)
        else:
            col = tuple(int(v) for v in rng.uniform(40, 220, 3))
            cv2.rectangle(img, (x, y), (x + cw // 3, y + ch // 3), col, -1, cv2.LINE_AA)
    return img


def _parts(rng: np.random.Generator, h: int, w: int, u: float) -> np.ndarray:
    belt = _noise(rng, h, w, 1.5 * u) * 7 + rng.uniform(40, 70)
    img = cv2.cvtColor(np.clip(belt, 10, 245).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    for _ in range(int(rng.integers(3, 6))):
        c = (int(rng.uniform(0.15, 0.85) * w), int(rng.uniform(0.15, 0.85) * h))
        r = rng.uniform(50, 110) * u
        n = int(rng.integers(8, 20))
        angs = np.linspace(0, 2 * np.pi, 2 * n, endpoint=False)
        rad = np.where(np.arange(2 * n) % 2 == 0, r, r * 0.82)
        pts = np.stack([c[0] + rad * np.cos(angs), c[1] + rad * np.sin(angs)], 1).astype(np.int32)
        metal = tuple(int(v) for v in rng.uniform(150, 210, 3))
        cv2.fillPoly(img, [pts], metal, cv2.LINE_AA)
        cv2.circle(img, c, int(r * 0.35), (45, 45, 50), -1, cv2.LINE_AA)
        cv2.circle(
            img,
            c,
            int(r * 0.6),
            tuple(int(v * 0.8) for v in metal),
            max(1, int(3 * u)),
            cv2.LINE_AA,
        )
    return img


def _print(rng: np.random.Generator, h: int, w: int, u: float) -> np.ndarray:
    """A colour print: paper, saturated ink blocks and bands, a logo and text."""
    paper = np.array([rng.uniform(215, 235), rng.uniform(220, 240), rng.uniform(225, 242)])
    img = paper.astype(np.float32)[None, None, :] + _noise(rng, h, w, 2 * u)[..., None] * 3
    img = np.clip(img, 10, 250).astype(np.uint8)

    def ink() -> tuple[int, int, int]:
        hue = rng.uniform(0, 180)
        hsv = np.array([[[hue, rng.uniform(140, 230), rng.uniform(110, 210)]]], np.uint8)
        b, g, r = (int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])
        return b, g, r

    for _ in range(int(rng.integers(5, 9))):
        x, y = int(rng.uniform(0.02, 0.75) * w), int(rng.uniform(0.02, 0.75) * h)
        bw, bh = int(rng.uniform(0.12, 0.35) * w), int(rng.uniform(0.1, 0.3) * h)
        cv2.rectangle(img, (x, y), (x + bw, y + bh), ink(), -1, cv2.LINE_AA)
    for _ in range(int(rng.integers(2, 4))):
        c = (int(rng.uniform(0.15, 0.85) * w), int(rng.uniform(0.15, 0.85) * h))
        r = int(rng.uniform(40, 90) * u)
        cv2.circle(img, c, r, ink(), -1, cv2.LINE_AA)
        cv2.circle(img, c, int(r * 0.6), ink(), -1, cv2.LINE_AA)
    for i in range(6):
        _text(
            img,
            rng,
            int(rng.uniform(0.05, 0.6) * w),
            int((0.12 + 0.14 * i) * h),
            rng.uniform(0.7, 1.3) * u,
            ink() if rng.random() < 0.5 else (25, 25, 25),
            max(1, int(2 * u)),
        )
    return img


_MAKERS = {
    "fabric": _fabric,
    "metal": _metal,
    "label": _label,
    "pcb": _pcb,
    "parts": _parts,
    "print": _print,
}


def world(kind: str, size_wh: tuple[int, int], *, colour: bool, seed: int) -> np.ndarray:
    """A part rendered at OVERSAMPLE x the camera size (BGR or grey uint8)."""
    rng = np.random.default_rng(seed)
    w, h = size_wh[0] * OVERSAMPLE, size_wh[1] * OVERSAMPLE
    u = OVERSAMPLE * min(size_wh) / 768.0  # drawing unit: world pixels per 768p camera pixel
    img = _MAKERS[kind](rng, h, w, u)
    img = cv2.GaussianBlur(img, (0, 0), 0.7 * OVERSAMPLE)  # print/optics softness in the world
    return img if colour else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


def draw_defect(
    wld: np.ndarray,
    kind: str,
    rng: np.random.Generator,
    size_wh: tuple[int, int],
    contrast_range: tuple[float, float] = (45.0, 90.0),
) -> tuple[np.ndarray, np.ndarray, float]:
    """Draw one defect into a copy of the world; returns (world, world mask, contrast)."""
    h, w = wld.shape[:2]
    u = OVERSAMPLE * min(size_wh) / 768.0
    contrast = float(rng.uniform(*contrast_range))
    cx, cy = float(rng.uniform(0.15, 0.85) * w), float(rng.uniform(0.15, 0.85) * h)
    mask = np.zeros((h, w), np.float32)
    if kind == "colour":
        return _wrong_colour(wld, rng, u, cx, cy)
    if kind == "tiny":
        r = rng.uniform(3, 7) * u
        cv2.circle(mask, (int(cx * 16), int(cy * 16)), int(r * 16), 1.0, -1, cv2.LINE_AA, 4)
        kind = "spot"
    elif kind == "hairline":
        length = rng.uniform(40, 160) * u
        ang = rng.uniform(0, np.pi)
        dx, dy = 0.5 * length * np.cos(ang), 0.5 * length * np.sin(ang)
        p0 = (int((cx - dx) * 16), int((cy - dy) * 16))
        p1 = (int((cx + dx) * 16), int((cy + dy) * 16))
        cv2.line(mask, p0, p1, 1.0, max(1, round(rng.uniform(1, 2) * u)), cv2.LINE_AA, 4)
        kind = "scratch"
    elif kind == "spot":
        r = rng.uniform(3, 8) * u
        cv2.circle(mask, (int(cx * 16), int(cy * 16)), int(r * 16), 1.0, -1, cv2.LINE_AA, 4)
    elif kind == "scratch":
        length = rng.uniform(40, 120) * u
        ang = rng.uniform(0, np.pi)
        t = np.linspace(-0.5, 0.5, 12)
        bend = rng.normal(0, 0.08) * length
        xs = cx + t * length * np.cos(ang) - np.sin(ang) * bend * (1 - 4 * t * t)
        ys = cy + t * length * np.sin(ang) + np.cos(ang) * bend * (1 - 4 * t * t)
        pts = (np.stack([xs, ys], 1) * 16).astype(np.int32)
        cv2.polylines(
            mask, [pts], False, 1.0, max(1, int(rng.uniform(1.5, 3.0) * u)), cv2.LINE_AA, 4
        )
    elif kind == "missing":
        mw, mh = rng.uniform(10, 30) * u, rng.uniform(10, 30) * u
        box = ((cx, cy), (mw, mh), float(rng.uniform(0, 90)))
        pts = cv2.boxPoints(box)
        cv2.fillConvexPoly(mask, (pts * 16).astype(np.int32), 1.0, cv2.LINE_AA, 4)
    else:  # stain
        for _ in range(int(rng.integers(3, 6))):
            ex = cx + rng.normal(0, 6 * u)
            ey = cy + rng.normal(0, 6 * u)
            axes = (int(rng.uniform(6, 16) * u * 16), int(rng.uniform(5, 12) * u * 16))
            cv2.ellipse(
                mask,
                (int(ex * 16), int(ey * 16)),
                axes,
                float(rng.uniform(0, 180)),
                0,
                360,
                1.0,
                -1,
                cv2.LINE_AA,
                4,
            )
        mask = cv2.GaussianBlur(mask, (0, 0), 2.5 * u)
        mask /= max(float(mask.max()), 1e-6)
    grey = wld if wld.ndim == 2 else cv2.cvtColor(wld, cv2.COLOR_BGR2GRAY)
    ys, xs = np.nonzero(mask > 0.5)
    local = float(np.median(grey[ys, xs])) if len(xs) else 128.0
    sign = 1.0 if local < 128 else -1.0
    out = wld.astype(np.float32)
    if kind in ("spot", "missing"):
        # opaque: the texture is replaced by a flat value `contrast` away from the local level
        target = local + sign * contrast
        m = mask[..., None] if out.ndim == 3 else mask
        out = out * (1 - m) + target * m
    else:
        delta = sign * contrast
        if out.ndim == 3 and kind == "stain":
            tint = np.array([1.25, 1.0, 0.8], np.float32)  # brownish; luma change == delta
            tint /= float(tint @ np.array([0.114, 0.587, 0.299], np.float32))
            out += mask[..., None] * delta * tint
        else:
            out += (mask[..., None] if out.ndim == 3 else mask) * delta
    return np.clip(out, 0, 255).astype(np.uint8), mask > 0.5, contrast


def _wrong_colour(
    wld: np.ndarray, rng: np.random.Generator, u: float, cx: float, cy: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """A print in the wrong ink: an ellipse whose hue turns by 100-180 degrees (chroma
    at least 25) while its luma stays that of the surroundings, pixel by pixel.
    Returns (world, world mask, contrast = the median CIELAB a/b distance)."""
    h, w = wld.shape[:2]
    if wld.ndim == 3:  # wrong ink goes where there is ink: the most colourful of 24 places
        ys = rng.uniform(0.15, 0.85, 24) * h
        xs = rng.uniform(0.15, 0.85, 24) * w
        px = wld[ys.astype(int), xs.astype(int)].astype(np.float32) / 255.0
        lab0 = cv2.cvtColor(px[None], cv2.COLOR_BGR2Lab)[0]
        best = int(np.argmax(np.hypot(lab0[:, 1], lab0[:, 2]) - 0.5 * np.abs(lab0[:, 0] - 55)))
        cx, cy = float(xs[best]), float(ys[best])
    mask = np.zeros((h, w), np.float32)
    axes = (int(rng.uniform(8, 22) * u * 16), int(rng.uniform(6, 16) * u * 16))
    centre = (int(cx * 16), int(cy * 16))
    cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1, cv2.LINE_AA, 4)
    if wld.ndim == 2:  # a grey part has no ink colour to get wrong
        return wld.copy(), mask > 0.5, 0.0
    x0, y0, bw, bh = cv2.boundingRect((mask > 0).astype(np.uint8))
    crop = wld[y0 : y0 + bh, x0 : x0 + bw].astype(np.float32)
    m = mask[y0 : y0 + bh, x0 : x0 + bw, None]
    lab = cv2.cvtColor(crop / 255.0, cv2.COLOR_BGR2Lab)
    a, b = lab[..., 1], lab[..., 2]
    turn = np.deg2rad(rng.uniform(100, 180) * rng.choice([-1.0, 1.0]))
    chroma = np.maximum(np.hypot(a, b), float(rng.uniform(25, 40)))
    hue = np.arctan2(b, a) + turn
    new = lab.copy()
    new[..., 1], new[..., 2] = chroma * np.cos(hue), chroma * np.sin(hue)
    bgr = cv2.cvtColor(new, cv2.COLOR_Lab2BGR) * 255.0
    luma = np.array([0.114, 0.587, 0.299], np.float32)
    bgr += ((crop - bgr) @ luma)[..., None]  # the same luma as before, pixel by pixel
    out = wld.astype(np.float32)
    out[y0 : y0 + bh, x0 : x0 + bw] = crop * (1 - m) + bgr * m
    dist = np.hypot(new[..., 1] - a, new[..., 2] - b)[m[..., 0] > 0.5]
    contrast = float(np.median(dist)) if dist.size else 0.0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), mask > 0.5, contrast


def pose_matrix(pose: Pose, size_wh: tuple[int, int]) -> np.ndarray:
    """World->world matrix (OVERSAMPLE pixels) moving the part by the pose: 2x3 for a
    legacy pose, 3x3 (a homography: scale and perspective tilt) for a line pose."""
    w, h = size_wh[0] * OVERSAMPLE, size_wh[1] * OVERSAMPLE
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), pose.angle_deg, pose.scale)
    m[0, 2] += pose.dx * OVERSAMPLE
    m[1, 2] += pose.dy * OVERSAMPLE
    if not pose.line:
        return m
    m3 = np.vstack([m, [0.0, 0.0, 1.0]])
    if pose.tilt_px:
        src = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32)
        off = np.asarray(pose.tilt_px, np.float32).reshape(4, 2) * OVERSAMPLE
        m3 = m3 @ cv2.getPerspectiveTransform(src, src + off)
    return m3


def _warp(img: np.ndarray, m: np.ndarray, border: int) -> np.ndarray:
    size = (img.shape[1], img.shape[0])
    if m.shape[0] == 3:
        return cv2.warpPerspective(img, m, size, flags=cv2.INTER_LINEAR, borderMode=border)
    return cv2.warpAffine(img, m, size, flags=cv2.INTER_LINEAR, borderMode=border)


def capture(
    wld: np.ndarray, pose: Pose, size_wh: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """The camera image of the posed world (uint8, grey or BGR like the world)."""
    big = _warp(wld, pose_matrix(pose, size_wh), cv2.BORDER_REFLECT)
    img = cv2.resize(big, size_wh, interpolation=cv2.INTER_AREA).astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), float(np.hypot(0.5, pose.blur)))
    if pose.gradient != (0.0, 0.0):
        w, h = size_wh
        gx = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :] * np.float32(pose.gradient[0])
        gy = np.linspace(-1.0, 1.0, h, dtype=np.float32)[:, None] * np.float32(pose.gradient[1])
        field = pose.gain * (1.0 + gx + gy)
        img = img * (field[..., None] if img.ndim == 3 else field) + pose.offset
    else:
        img = img * pose.gain + pose.offset
    if pose.noise > 0:
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(pose.noise)
    out = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    if pose.jpeg:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, pose.jpeg])
        assert ok
        out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return out


def capture_mask(mask: np.ndarray, pose: Pose, size_wh: tuple[int, int]) -> np.ndarray:
    """A world mask in camera coordinates of the posed capture."""
    big = _warp(mask.astype(np.uint8) * 255, pose_matrix(pose, size_wh), cv2.BORDER_CONSTANT)
    return cv2.resize(big, size_wh, interpolation=cv2.INTER_AREA) > 64


def random_pose(rng: np.random.Generator) -> Pose:
    return Pose(
        dx=float(rng.uniform(-8, 8)),
        dy=float(rng.uniform(-8, 8)),
        angle_deg=float(rng.uniform(-2, 2)),
        gain=float(rng.uniform(0.88, 1.12)),
        offset=float(rng.uniform(-8, 8)),
        noise=float(rng.uniform(1, 3)),
    )


def random_line_pose(rng: np.random.Generator) -> Pose:
    """The line nuisance of issue 17 (see the module docstring)."""
    direction = rng.uniform(0, 2 * np.pi)
    c, s = float(np.cos(direction)), float(np.sin(direction))
    slope = float(rng.uniform(0.05, 0.15)) / (abs(c) + abs(s))  # +-slope at the far corners
    return Pose(
        dx=float(rng.uniform(-12, 12)),
        dy=float(rng.uniform(-12, 12)),
        angle_deg=float(rng.uniform(-3, 3)),
        gain=float(rng.uniform(0.88, 1.12)),
        offset=float(rng.uniform(-8, 8)),
        noise=float(rng.uniform(1, 4)),
        scale=float(rng.uniform(0.98, 1.02)),
        tilt_px=tuple(float(v) for v in rng.uniform(-3, 3, 8)),
        gradient=(slope * c, slope * s),
        blur=float(rng.uniform(0, 0.8)),
        jpeg=int(rng.integers(80, 96)),
    )


REFERENCE_POSE = Pose(0.0, 0.0, 0.0, 1.0, 0.0, 2.0)


def query(
    wld: np.ndarray,
    size_wh: tuple[int, int],
    rng: np.random.Generator,
    defect: str | None,
    nuisance: str = "legacy",
) -> tuple[np.ndarray, Pose, Defect | None]:
    """A query capture with random nuisance (``legacy`` or ``line``) and optionally one
    defect (line: contrast 20-45 grey levels)."""
    line = nuisance == "line"
    pose = random_line_pose(rng) if line else random_pose(rng)
    if defect is None:
        return capture(wld, pose, size_wh, rng), pose, None
    contrast_range = (20.0, 45.0) if line else (45.0, 90.0)
    dw, wmask, contrast = draw_defect(wld, defect, rng, size_wh, contrast_range)
    img = capture(dw, pose, size_wh, rng)
    qmask = capture_mask(wmask, pose, size_wh)
    ys, xs = np.nonzero(qmask)
    if len(xs) == 0:
        box = (0, 0, 0, 0)
    else:
        box = (
            int(xs.min()),
            int(ys.min()),
            int(xs.max() - xs.min() + 1),
            int(ys.max() - ys.min() + 1),
        )
    return img, pose, Defect(defect, contrast, qmask, box)
