"""A camera that replays pre-rendered frames at a fixed rate (or as fast as taken).

Rendering a 2448x2048 synthetic part costs ~120 ms of CPU, more than inspecting
it: the synthetic source would measure itself, not edged. A real camera's frames
cost the daemon nothing to make, so the benchmark renders a few distinct frames
of the synthetic line once and replays them, stamped with a fresh host timestamp
when they are handed over, exactly like a source's ``read()``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import numpy as np

from edged.core.frames import Frame
from edged.sources._pacing import Pacer
from edged.sources.base import EndOfStream, FrameSource, SourceState


class ReplaySource(FrameSource):
    """Cycles ``raws`` ((H, W) uint8 raw frames of ``pixel_format``) at ``fps``.

    ``fps=None`` hands a frame over as soon as it is asked for; ``frames`` ends the
    stream (EndOfStream) after that many. Nothing accumulates per frame, so a soak
    measures the daemon's memory, not the source's.
    """

    def __init__(
        self,
        camera: str,
        raws: Sequence[np.ndarray],
        *,
        pixel_format: str = "BayerRG8",
        fps: float | None = None,
        frames: int | None = None,
    ) -> None:
        super().__init__(camera)
        self.raws = list(raws)
        self.pixel_format = pixel_format
        self.fps = fps
        self.frames = frames
        self._seq = 0
        self._pacer = Pacer(max_lag_periods=float("inf"))  # fixed rate: late frames are made up
        self._running = False

    async def start(self) -> None:
        self._running = True
        self._pacer.reset()

    async def stop(self) -> None:
        self._running = False

    async def read(self) -> Frame:
        if not self._running:
            msg = f"camera {self.camera!r}: read() before start()"
            raise EndOfStream(msg)
        if self.frames is not None and self._seq >= self.frames:
            msg = f"camera {self.camera!r}: replay finished after {self.frames} frames"
            raise EndOfStream(msg)
        if self.fps is None:
            await asyncio.sleep(0)
        elif wait_s := self._pacer.wait_s(asyncio.get_running_loop().time(), self.fps):
            await asyncio.sleep(wait_s)
        seq = self._seq
        self._seq += 1
        raw = self.raws[seq % len(self.raws)]
        ts = time.time_ns()
        h, w = raw.shape[:2]
        return Frame(
            data=raw,
            pixel_format=self.pixel_format,
            width=w,
            height=h,
            camera=self.camera,
            seq=seq,
            host_ts_ns=ts,
            frame_id=seq,
        )

    def state(self) -> SourceState:
        return SourceState(connected=self._running, frames=self._seq, device="bench:replay")
