"""The benchmark's frames: one synthetic label line per size, rendered once per run.

The reference is the line's nominal part; queries are the same part moved and lit
like a real line (shift, rotation, gain, offset, noise), with and without a defect.
Bayer frames are the query mosaicked through each PFNC pattern, so every stage sees
the same content.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from edged.config import NuisanceConfig, SyntheticConfig
from edged.core.frames import Frame
from edged.sources.synthetic import SyntheticLine, mosaic

BAYER_PATTERNS: tuple[str, ...] = ("RG", "GR", "GB", "BG")


def size_label(size_wh: tuple[int, int]) -> str:
    return f"{size_wh[0]}x{size_wh[1]}"


@dataclass(frozen=True, slots=True)
class BenchFrames:
    """Frames of one size. Images are ``(H, W, 3)`` uint8 BGR; raw Bayer is ``(H, W)`` uint8."""

    size_wh: tuple[int, int]
    line: SyntheticLine
    reference: np.ndarray
    defective: np.ndarray
    good: np.ndarray
    truth: dict[str, object]
    raw: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return size_label(self.size_wh)

    def frame(self, pattern: str = "RG", *, seq: int = 0, camera: str = "bench") -> Frame:
        """The defective query as a raw Bayer Frame of ``pattern`` (PFNC, e.g. ``"RG"``)."""
        w, h = self.size_wh
        return Frame(
            data=self.raw[pattern],
            pixel_format=f"Bayer{pattern}8",
            width=w,
            height=h,
            camera=camera,
            seq=seq,
            host_ts_ns=time.time_ns(),
        )

    def raw_frames(self, count: int, *, pattern: str = "RG") -> list[np.ndarray]:
        """``count`` distinct raw Bayer frames of the line (seq 1..count, defects at the
        line's rate): what a camera would send."""
        return [mosaic(self.line.render(seq).image, pattern) for seq in range(1, count + 1)]


def make_frames(size_wh: tuple[int, int], *, seed: int = 11) -> BenchFrames:
    """Render the reference and two queries (one with a defect) at ``size_wh``."""
    w, h = size_wh
    cfg = SyntheticConfig(
        scene="label",
        width=w,
        height=h,
        pixel_format="BayerRG8",
        defect_rate=0.2,
        seed=seed,
        nuisance=NuisanceConfig(shift_px=6, rotation_deg=1.5, gain=0.1, offset=6, noise_sigma=2),
    )
    line = SyntheticLine(cfg)
    bad = line.render(0, defect=True)
    good = line.render(1_000_000, defect=False)
    raw = {p: mosaic(bad.image, p) for p in BAYER_PATTERNS}
    return BenchFrames(size_wh, line, line.nominal, bad.image, good.image, bad.truth, raw)
