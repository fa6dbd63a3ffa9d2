"""Real in-process result sinks and sources for lifecycle tests."""

from __future__ import annotations

import asyncio
from typing import Any

from edged.config import CameraConfig
from edged.core.errors import SourceError
from edged.core.frames import Frame
from edged.core.result import Result
from edged.runtime.contracts import SinkStats
from edged.sources.synthetic import SyntheticSource


class RecordingSink:
    """A ResultSink that keeps what it is given; can be told to fail once."""

    def __init__(self, *, fail_on_call: int | None = None) -> None:
        self.results: list[Result] = []
        self.states: dict[str, dict[str, Any]] = {}
        self.calls = 0
        self._fail_on_call = fail_on_call
        self.stopped_with: float | None = None

    async def publish_result(self, result: Result) -> None:
        self.calls += 1
        if self.calls == self._fail_on_call:
            msg = "outbox disk full (injected)"
            raise OSError(msg)
        await asyncio.sleep(0)
        self.results.append(result)

    def set_state(self, camera: str, state: dict[str, Any]) -> None:
        self.states[camera] = state

    def last_seq(self, camera: str) -> int | None:
        return None  # like a fresh outbox: every daemon it serves starts at seq 0

    def stats(self) -> SinkStats:
        return SinkStats(connected=True, published=len(self.results))

    async def stop(self, grace_s: float = 5.0) -> None:
        self.stopped_with = grace_s


class FlakySource(SyntheticSource):
    """A synthetic source whose device 'drops off' once after ``fail_after`` frames."""

    def __init__(self, camera: str, cfg: CameraConfig, *, fail_after: int) -> None:
        super().__init__(camera, cfg)
        self.fail_after = fail_after
        self.failed = False
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1
        await super().start()

    async def read(self) -> Frame:
        if not self.failed and self._seq == self.fail_after:
            self.failed = True
            msg = f"camera {self.camera!r}: GenTL timeout x3 (injected)"
            raise SourceError(msg)
        return await super().read()


async def wait_for(predicate, timeout_s: float = 10.0, interval_s: float = 0.02) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            msg = f"condition not met within {timeout_s} s"
            raise AssertionError(msg)
        await asyncio.sleep(interval_s)
