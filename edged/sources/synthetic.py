"""The synthetic line: a procedural part per frame, with nuisance, defects and ground truth.

Runs anywhere (demos, tests, benchmarks). Every frame is the nominal part (see
:mod:`edged.sources._scenes`) moved and lit like a real line moves and lights it —
shift, small rotation, gain, offset, sensor noise — and, at ``defect_rate``, carries
one defect of ``defect_kinds`` (scratch, spot, missing feature, stain; misprint on
the label: its lot code printed wrong). The ``texture`` scene is a textured surface
instead (``texture``: granulate, grain or weave; see :mod:`edged.sources._textures`):
every frame is a new instance of it, as no two good wooden or woven parts are alike,
and its defects are scratches, spots, foreign-texture patches and colour stains.
Frames are deterministic in ``(seed, seq)``, and each carries its ground truth::

    {"defect": true, "kind": "spot", "box": {"x":..,"y":..,"width":..,"height":..},
     "shift_px": [dx, dy], "rotation_deg": r, "gain": g, "offset": o, "noise_sigma": s,
     "lot_code": "LOT 12345"}

``lot_code`` (label scene) is the code printed on that frame; a misprint's ``box`` is
the code line and ``nominal_lot_code`` what should have been printed.

``box`` is in pixels of the emitted frame. Pixel formats: Mono8, BGR8, RGB8 and the
four Bayer 8-bit patterns (mosaicked from the rendered BGR image, PFNC order).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from edged.config import CameraConfig, NuisanceConfig, SyntheticConfig
from edged.core.frames import Frame
from edged.sources._pacing import Pacer
from edged.sources._scenes import PrintedLabel, render_label, render_scene
from edged.sources._textures import DEFECT_KINDS as TEXTURE_DEFECT_KINDS
from edged.sources._textures import draw_defect, render_texture
from edged.sources.base import EndOfStream, FrameSource, SourceState

DEFECT_KINDS = ("scratch", "spot", "missing", "stain", "misprint")

# PFNC Bayer pattern -> (row, col) offset of R and of B in the 2x2 cell.
_BAYER_RB: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "RG": ((0, 0), (1, 1)),
    "GR": ((0, 1), (1, 0)),
    "GB": ((1, 0), (0, 1)),
    "BG": ((1, 1), (0, 0)),
}


def mosaic(image: np.ndarray, pattern: str) -> np.ndarray:
    """Sample ``image`` ((H, W, 3) uint8 BGR) through a Bayer filter with PFNC ``pattern``.

    Returns ``(H, W)`` uint8: the raw data a Bayer camera of that pattern would send.
    """
    (ry, rx), (by, bx) = _BAYER_RB[pattern]
    raw = image[:, :, 1].copy()  # green everywhere, then R and B sites
    raw[ry::2, rx::2] = image[ry::2, rx::2, 2]
    raw[by::2, bx::2] = image[by::2, bx::2, 0]
    return raw


@dataclass(frozen=True, slots=True)
class SyntheticFrame:
    """One rendered frame: ``image`` is (H, W, 3) uint8 BGR, ``truth`` its ground truth."""

    image: np.ndarray
    truth: dict[str, Any]


class SyntheticLine:
    """Renders frames of one synthetic line. Pure: no clock, no I/O."""

    def __init__(self, cfg: SyntheticConfig) -> None:
        self.cfg = cfg
        self.label: PrintedLabel | None = None
        if cfg.scene == "label":
            self.label = render_label(width=cfg.width, height=cfg.height, seed=cfg.seed)
            self.nominal = self.label.image
        elif cfg.scene == "texture":  # a new instance every frame; this one shows the look
            rng = np.random.default_rng([cfg.seed, 2**32 - 1])
            self.nominal = render_texture(cfg.texture, width=cfg.width, height=cfg.height, rng=rng)
        else:
            self.nominal = render_scene(
                cfg.scene, width=cfg.width, height=cfg.height, seed=cfg.seed
            )
        h, w = self.nominal.shape[:2]
        # Where defects may go: the part, away from its border (see _scenes).
        self._part_xyxy = (int(w * 0.16), int(h * 0.16), int(w * 0.84), int(h * 0.84))
        # A textured board is larger than the camera's view: rendered with a margin
        # wider than the largest shift plus the corners' travel under the largest
        # rotation, it fills the whole view after the nuisance, as on a real line
        # (warped with reflected borders, the view's edges showed a mirror image of
        # the board, which no camera sees).
        nz = cfg.nuisance
        travel = 0.5 * math.hypot(w, h) * 2.0 * math.sin(math.radians(nz.rotation_deg) / 2.0)
        self._board_margin_px = math.ceil(nz.shift_px + travel) + 2
        sigma = cfg.nuisance.noise_sigma
        self._noise = NoiseBank(self.nominal.size, sigma, seed=cfg.seed) if sigma > 0 else None

    def render(self, seq: int, *, defect: bool | None = None) -> SyntheticFrame:
        """Frame ``seq``. ``defect`` forces (True/False) or leaves to ``defect_rate`` (None)."""
        cfg, nz = self.cfg, self.cfg.nuisance
        rng = np.random.default_rng([cfg.seed, seq])
        has_defect = bool(rng.random() < cfg.defect_rate) if defect is None else defect
        part = self.nominal
        truth: dict[str, Any] = {"defect": has_defect, "seq": seq}
        box_xyxy: tuple[int, int, int, int] | None = None
        lot_code = self.label.lot_code if self.label is not None else None
        margin = 0  # the texture scene: the camera's view inside a larger board
        if cfg.scene == "texture":
            margin = self._board_margin_px
            part = render_texture(
                cfg.texture, width=cfg.width + 2 * margin, height=cfg.height + 2 * margin, rng=rng
            )
            if has_defect:
                texture_defect = TEXTURE_DEFECT_KINDS[int(rng.integers(len(TEXTURE_DEFECT_KINDS)))]
                size_px = max(12, int(min(cfg.width, cfg.height) * float(rng.uniform(0.05, 0.1))))
                x0, y0, x1, y1 = self._part_xyxy
                box_xyxy = draw_defect(
                    part, texture_defect, rng=rng, size_px=size_px, base=cfg.texture,
                    box_xyxy=(x0 + margin, y0 + margin, x1 + margin, y1 + margin),
                )  # fmt: skip
                truth["kind"] = texture_defect
        elif has_defect:
            kinds = cfg.defect_kinds
            kind = kinds[int(rng.integers(len(kinds)))]
            if kind == "misprint" and self.label is not None:
                lot_code = misprint(self.label.lot_code, rng)
                printed = render_label(
                    width=cfg.width, height=cfg.height, seed=cfg.seed, lot_code=lot_code
                )
                part, box_xyxy = printed.image, printed.lot_box_xyxy
                truth["nominal_lot_code"] = self.label.lot_code
            else:
                part = part.copy()
                box_xyxy = _draw_defect(part, kind, self._part_xyxy, rng)
            truth["kind"] = kind
        dx, dy, angle, gain, offset = _nuisance(nz, rng)
        h, w = part.shape[0] - 2 * margin, part.shape[1] - 2 * margin
        m = cv2.getRotationMatrix2D((w / 2.0 + margin, h / 2.0 + margin), angle, 1.0)
        m[:, 2] += np.array([dx - margin, dy - margin])
        moved = cv2.warpAffine(
            part, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
        image = _photometric(moved, gain, offset, self._noise, rng)
        truth.update(
            shift_px=[round(dx, 3), round(dy, 3)],
            rotation_deg=round(angle, 4),
            gain=round(gain, 4),
            offset=round(offset, 3),
            noise_sigma=nz.noise_sigma,
        )
        if box_xyxy is not None:
            truth["box"] = _transform_box(box_xyxy, m, w, h)
        if lot_code is not None:
            truth["lot_code"] = lot_code
        return SyntheticFrame(image, truth)

    def to_pixel_format(self, image: np.ndarray) -> np.ndarray:
        """Convert a rendered BGR image into the raw layout of ``cfg.pixel_format``."""
        fmt = self.cfg.pixel_format
        if fmt == "BGR8":
            return image
        if fmt == "RGB8":
            return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        if fmt == "Mono8":
            return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        return mosaic(image, fmt[5:7])


def misprint(code: str, rng: np.random.Generator) -> str:
    """``code`` printed wrong: one digit replaced by another, or the last one missing."""
    digits = [i for i, c in enumerate(code) if c.isdigit()]
    if not digits:
        return code[:-1]
    if rng.random() < 0.5:
        return code[:-1]
    i = digits[int(rng.integers(len(digits)))]
    wrong = str((int(code[i]) + int(rng.integers(1, 10))) % 10)
    return code[:i] + wrong + code[i + 1 :]


def _nuisance(nz: NuisanceConfig, rng: np.random.Generator) -> tuple[float, ...]:
    dx = float(rng.uniform(-nz.shift_px, nz.shift_px))
    dy = float(rng.uniform(-nz.shift_px, nz.shift_px))
    angle = float(rng.uniform(-nz.rotation_deg, nz.rotation_deg))
    gain = 1.0 + float(rng.uniform(-nz.gain, nz.gain))
    offset = float(rng.uniform(-nz.offset, nz.offset))
    return dx, dy, angle, gain, offset


class NoiseBank:
    """Gaussian sensor noise drawn once per line, so a frame costs an addition, not a draw.

    Holds ``size + spare`` int8 values of ``N(0, sigma)`` (rounded, clipped to ±127;
    ``sigma`` ≤ 32), drawn from NumPy's generator seeded with ``seed``. A frame's noise
    is the contiguous slice starting at an offset drawn from the frame's own generator:
    a view, nothing copied — the same ``(seed, seq)`` gives the same noise, and two
    frames see different values at each pixel. Drawing ~15 M values per 2448×2048 BGR
    frame cost ~50–70 ms of CPU; the slice and the saturating add cost ~4 ms.
    """

    SPARE = 1 << 20
    _CHUNK = 1 << 20

    def __init__(self, size: int, sigma: float, *, seed: int) -> None:
        self.size = size
        self.sigma = sigma
        rng = np.random.default_rng([seed, 0x4E4F4953])  # its own stream: "NOIS"
        values = np.empty(size + self.SPARE, np.int8)
        for start in range(0, values.size, self._CHUNK):
            n = min(self._CHUNK, values.size - start)
            draw = rng.standard_normal(n, dtype=np.float32) * np.float32(sigma)
            values[start : start + n] = np.clip(np.rint(draw), -127, 127)
        self.values = values

    def noise(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Noise of ``shape`` (``prod(shape) == size``), int8, a view into the bank."""
        offset = int(rng.integers(self.SPARE + 1))
        return self.values[offset : offset + self.size].reshape(shape)


def _photometric(
    image: np.ndarray,
    gain: float,
    offset: float,
    bank: NoiseBank | None,
    rng: np.random.Generator,
) -> np.ndarray:
    out = cv2.convertScaleAbs(image, alpha=gain, beta=offset) if (gain, offset) != (1, 0) else image
    if bank is not None:
        out = cv2.add(out, bank.noise(image.shape, rng), dtype=cv2.CV_8U)
    return out


def _draw_defect(
    img: np.ndarray,
    kind: str,
    area_xyxy: tuple[int, int, int, int],
    rng: np.random.Generator,
) -> tuple[int, int, int, int]:
    """Draw one defect in place; returns its box (x0, y0, x1, y1), inclusive-exclusive."""
    x0, y0, x1, y1 = area_xyxy
    s = min(img.shape[:2]) / 1024.0
    margin = max(2, min(40, (x1 - x0) // 4, (y1 - y0) // 4))  # small frames: smaller margin
    cx = int(rng.integers(x0 + margin, x1 - margin))
    cy = int(rng.integers(y0 + margin, y1 - margin))
    contrast = float(rng.uniform(45, 90))
    local = img[cy, cx].astype(np.float32)
    sign = -1.0 if float(local.mean()) > 128 else 1.0
    colour = tuple(float(np.clip(c + sign * contrast, 0, 255)) for c in local)
    mask = np.zeros(img.shape[:2], np.uint8)
    if kind == "scratch":
        length = rng.uniform(60, 160) * s
        a = rng.uniform(0, np.pi)
        p = (int(cx - np.cos(a) * length / 2), int(cy - np.sin(a) * length / 2))
        q = (int(cx + np.cos(a) * length / 2), int(cy + np.sin(a) * length / 2))
        cv2.line(mask, p, q, 255, max(2, int(3 * s)), cv2.LINE_AA)
    elif kind == "spot":
        cv2.circle(mask, (cx, cy), max(4, int(rng.uniform(6, 14) * s)), 255, -1, cv2.LINE_AA)
    elif kind == "missing":
        # A patch of the part is gone: the belt shows through.
        hw, hh = int(rng.uniform(16, 40) * s), int(rng.uniform(16, 40) * s)
        cv2.rectangle(mask, (cx - hw, cy - hh), (cx + hw, cy + hh), 255, -1)
        colour = (70.0, 62.0, 58.0)
    else:  # stain: a soft blob
        axes = (max(6, int(rng.uniform(14, 30) * s)), max(5, int(rng.uniform(9, 20) * s)))
        cv2.ellipse(mask, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), 2.0)
    bx, by, bw, bh = cv2.boundingRect(mask)  # blend only where the defect is
    roi = (slice(by, by + bh), slice(bx, bx + bw))
    alpha = mask[roi].astype(np.float32)[:, :, None] / 255.0
    patch = img[roi].astype(np.float32) * (1 - alpha) + np.array(colour, np.float32) * alpha
    img[roi] = np.clip(patch + 0.5, 0, 255).astype(np.uint8)
    ys, xs = np.nonzero(mask[roi])
    return bx + int(xs.min()), by + int(ys.min()), bx + int(xs.max()) + 1, by + int(ys.max()) + 1


def _transform_box(
    box_xyxy: tuple[int, int, int, int], m: np.ndarray, w: int, h: int
) -> dict[str, int]:
    x0, y0, x1, y1 = box_xyxy
    corners = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]], np.float64)
    pts = corners @ m.T
    bx0, by0 = int(np.floor(max(0.0, pts[:, 0].min()))), int(np.floor(max(0.0, pts[:, 1].min())))
    bx1, by1 = int(np.ceil(min(w, pts[:, 0].max()))), int(np.ceil(min(h, pts[:, 1].max())))
    return {"x": bx0, "y": by0, "width": bx1 - bx0, "height": by1 - by0}


class SyntheticSource(FrameSource):
    """A FrameSource that paces a :class:`SyntheticLine` at the camera's fps.

    Rendering runs in a thread (never on the event loop). With ``frames: N`` the
    source ends (EndOfStream) after N frames.
    """

    def __init__(self, camera: str, cfg: CameraConfig) -> None:
        super().__init__(camera)
        assert cfg.synthetic is not None
        self.cfg = cfg
        self.line = SyntheticLine(cfg.synthetic)
        self._seq = 0
        self._pacer = Pacer(max_lag_periods=1)  # a slow consumer gets no pile-up
        self._running = False
        self._fps_window: list[float] = []
        self._triggers = 0
        self._trigger_event = asyncio.Event()

    async def start(self) -> None:
        self._running = True
        self._pacer.reset()

    async def stop(self) -> None:
        self._running = False

    async def read(self) -> Frame:
        if not self._running:
            msg = f"camera {self.camera!r}: read() before start()"
            raise EndOfStream(msg)
        limit = self.line.cfg.frames
        if limit is not None and self._seq >= limit:
            msg = f"camera {self.camera!r}: synthetic line finished after {limit} frames"
            raise EndOfStream(msg)
        loop = asyncio.get_running_loop()
        if self.line.cfg.triggered:
            await self._wait_for_trigger()
        else:
            wait_s = self._pacer.wait_s(loop.time(), self.cfg.fps)
            if wait_s:
                await asyncio.sleep(wait_s)
        seq = self._seq
        self._seq += 1
        host_ts_ns = time.time_ns()
        rendered = await asyncio.to_thread(self.line.render, seq)
        data = self.line.to_pixel_format(rendered.image)
        self._fps_window = [*self._fps_window[-29:], loop.time()]
        h, w = rendered.image.shape[:2]
        return Frame(
            data=data,
            pixel_format=self.line.cfg.pixel_format,
            width=w,
            height=h,
            camera=self.camera,
            seq=seq,
            host_ts_ns=host_ts_ns,
            device_ts_ns=host_ts_ns,
            frame_id=seq,
            ground_truth=rendered.truth,
        )

    @property
    def triggerable(self) -> bool:
        return self.line.cfg.triggered

    async def trigger(self) -> None:
        """One software trigger: the next :meth:`read` emits one frame (``triggered: true``)."""
        if not self.line.cfg.triggered:
            await super().trigger()  # raises: a free-running line has no trigger
            return
        self._triggers += 1
        self._trigger_event.set()

    async def _wait_for_trigger(self) -> None:
        while self._triggers == 0:
            self._trigger_event.clear()
            await self._trigger_event.wait()
        self._triggers -= 1

    def state(self) -> SourceState:
        win = self._fps_window
        fps = (len(win) - 1) / (win[-1] - win[0]) if len(win) > 1 and win[-1] > win[0] else 0.0
        return SourceState(
            connected=self._running,
            frames=self._seq,
            fps=round(fps, 2),
            device=f"synthetic:{self.line.cfg.scene}",
        )

    def nominal_image(self) -> np.ndarray:
        """The defect-free, centred part ((H, W, 3) uint8 BGR): what a reference looks like
        (for the texture scene: one good instance of the texture)."""
        return self.line.nominal
