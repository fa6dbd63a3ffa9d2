"""Run-wide options and shared state of one benchmark run (frames, scratch directory)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tools.bench._frames import BenchFrames, make_frames, size_label

FULL_SIZES: tuple[tuple[int, int], ...] = ((1280, 1024), (2448, 2048))
QUICK_SIZES: tuple[tuple[int, int], ...] = ((640, 512),)
TARGET_SIZE: tuple[int, int] = (2448, 2048)
"""Issue 9's targets are stated for 2448x2048 BayerRG8 frames on 2 cores."""


@dataclass(frozen=True, slots=True)
class Options:
    """Command-line options. ``quick``: CI smoke run; ``soak``: 10-minute memory run."""

    quick: bool = False
    soak: bool = False
    only: tuple[str, ...] = ()
    profile: bool = True
    soak_s: float = 600.0


@dataclass
class Bench:
    """What every section shares in one run."""

    options: Options
    workdir: Path
    _frames: dict[tuple[int, int], BenchFrames] = field(default_factory=dict)

    @property
    def quick(self) -> bool:
        return self.options.quick

    @property
    def sizes(self) -> tuple[tuple[int, int], ...]:
        return QUICK_SIZES if self.quick else FULL_SIZES

    @property
    def size_labels(self) -> tuple[str, ...]:
        return tuple(size_label(s) for s in self.sizes)

    @property
    def target_label(self) -> str:
        return size_label(TARGET_SIZE)

    @property
    def largest(self) -> tuple[int, int]:
        return max(self.sizes, key=lambda s: s[0] * s[1])

    def reps(self, full: int, quick: int) -> int:
        """A repetition count: ``full`` normally, ``quick`` in a smoke run."""
        return quick if self.quick else full

    def seconds(self, full: float, quick: float) -> float:
        """A duration: ``full`` normally, ``quick`` in a smoke run."""
        return quick if self.quick else full

    def frames(self, size_wh: tuple[int, int]) -> BenchFrames:
        if size_wh not in self._frames:
            self._frames[size_wh] = make_frames(size_wh)
        return self._frames[size_wh]

    def scratch(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path
