"""The watchdog heartbeat: beats only while the pipeline progresses or has nothing pending."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from _ops_helpers import NotifyListener

from edged.runtime.metrics import Metrics
from edged.runtime.sdnotify import Notifier
from edged.runtime.watchdog import Heartbeat, Progress, StallDetector
from edged.runtime.workers import WorkerPool


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------ the decision (exact)


def test_idle_lanes_are_healthy_however_long() -> None:
    clock = FakeClock()
    progress = Progress(clock=clock)
    det = StallDetector(progress, stall_s=30, clock=clock)
    progress.pending("line1", 0)
    clock.now += 3600
    state = det.check()
    assert state.healthy
    assert state.pending == 0


def test_pending_work_without_progress_stalls_after_the_limit() -> None:
    clock = FakeClock()
    progress = Progress(clock=clock)
    det = StallDetector(progress, stall_s=30, clock=clock)
    clock.now += 600  # idle for long: must not count against the new work
    progress.pending("line1", 3)
    clock.now += 29.5
    assert det.check().healthy
    clock.now += 1.0
    state = det.check()
    assert not state.healthy
    assert state.lane == "line1"
    assert state.pending == 3
    assert state.stalled_s == pytest.approx(30.5)
    assert state.reason == "line1: no progress for 30.5 s with 3 items pending"
    progress.tick("line1", "inspect")
    assert det.check().healthy
    assert progress.counts() == {"inspect": 1}


def test_one_stuck_lane_is_enough() -> None:
    clock = FakeClock()
    progress = Progress(clock=clock)
    det = StallDetector(progress, stall_s=10, clock=clock)
    progress.pending("a", 1)
    progress.pending("b", 1)
    for _ in range(20):
        clock.now += 1
        progress.tick("a")
    state = det.check()
    assert not state.healthy
    assert state.lane == "b"
    assert state.pending == 2
    progress.forget("b")
    assert det.check().healthy


class FakePool:
    def __init__(self) -> None:
        self.busy = 0
        self.last_done_monotonic = 0.0


def test_a_busy_pool_that_finishes_nothing_stalls() -> None:
    clock = FakeClock()
    pool = FakePool()
    det = StallDetector(Progress(clock=clock), stall_s=5, pool=pool, clock=clock)
    pool.busy = 2
    assert det.check().healthy  # first sight of the busy pool starts its clock
    clock.now += 4.9
    assert det.check().healthy
    clock.now += 0.2
    state = det.check()
    assert (state.healthy, state.lane, state.pending) == (False, "workers", 2)
    pool.last_done_monotonic = clock.now  # a job finished
    assert det.check().healthy
    pool.busy = 0
    clock.now += 100
    assert det.check().healthy


def test_stall_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="stall_s: expected > 0, got 0"):
        StallDetector(Progress(), stall_s=0)


# ------------------------------------------------------------------ real socket, real loop


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[NotifyListener]:
    lst = NotifyListener(tmp_path / "notify.sock")
    yield lst
    lst.close()


def _heartbeat(
    listener: NotifyListener,
    progress: Progress,
    *,
    stall_s: float,
    pool: WorkerPool | None = None,
    metrics: Metrics | None = None,
) -> Heartbeat:
    env = {"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "100000"}  # beat every 50 ms
    return Heartbeat(
        Notifier.from_env(env),
        StallDetector(progress, stall_s=stall_s, pool=pool),
        metrics=metrics,
        status=lambda: f"inspected {progress.counts().get('inspect', 0)}",
        environ=env,
    )


@pytest.fixture
async def running() -> AsyncIterator[list[asyncio.Task[None]]]:
    tasks: list[asyncio.Task[None]] = []
    yield tasks
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _beats_between(listener: NotifyListener, t0: float, t1: float) -> int:
    return sum(1 for t, m in listener.snapshot() if "WATCHDOG" in m and t0 <= t < t1)


async def test_beats_while_progressing_and_stops_when_pending_work_stalls(
    listener: NotifyListener,
    running: list[asyncio.Task[None]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    progress = Progress()
    metrics = Metrics()
    hb = _heartbeat(listener, progress, stall_s=0.4, metrics=metrics)
    assert hb.watchdog_enabled
    assert hb.interval_s == pytest.approx(0.05)
    stalled = asyncio.Event()

    async def pipeline() -> None:
        while not stalled.is_set():
            progress.pending("line1", 2)
            progress.tick("line1", "inspect")
            await asyncio.sleep(0.02)
        progress.pending("line1", 4)  # frames keep arriving, nothing gets inspected

    running.append(asyncio.create_task(hb.run(), name="heartbeat"))
    running.append(asyncio.create_task(pipeline(), name="pipeline"))
    await asyncio.sleep(0.6)
    t_progress_end = time.monotonic()
    assert _beats_between(listener, 0, t_progress_end) >= 5
    assert metrics.watchdog_healthy._value.get() == 1

    stalled.set()
    await asyncio.sleep(1.2)
    t_end = time.monotonic()
    # Beats continue until the stall limit (0.4 s) is reached, then stop.
    assert _beats_between(listener, t_progress_end + 0.6, t_end) == 0
    assert hb.last_state is not None
    assert not hb.last_state.healthy
    status = listener.wait_for(lambda m: m.get("STATUS", "").startswith("STALLED"))
    assert status["STATUS"].startswith("STALLED: line1: no progress for ")
    assert status["STATUS"].endswith("with 4 items pending")
    assert metrics.watchdog_healthy._value.get() == 0
    assert metrics.watchdog_stalled_seconds._value.get() >= 0.4
    assert "heartbeat stopped" in caplog.text

    # One inspected frame and the heartbeat is back.
    progress.tick("line1", "inspect")
    await asyncio.sleep(0.3)
    assert _beats_between(listener, t_end, time.monotonic()) >= 2
    assert "heartbeat resumed" in caplog.text


async def test_an_idle_line_keeps_beating(
    listener: NotifyListener, running: list[asyncio.Task[None]]
) -> None:
    progress = Progress()
    progress.pending("triggered-line", 0)
    hb = _heartbeat(listener, progress, stall_s=0.2)
    running.append(asyncio.create_task(hb.run(), name="heartbeat"))
    await asyncio.sleep(0.7)  # well past the stall limit with nothing to do
    assert _beats_between(listener, 0, time.monotonic()) >= 8
    assert listener.with_key("STATUS")[0][1] == {"STATUS": "inspected 0"}


async def test_a_blocked_event_loop_stops_the_heartbeat(
    listener: NotifyListener, running: list[asyncio.Task[None]]
) -> None:
    metrics = Metrics()
    hb = _heartbeat(listener, Progress(), stall_s=5, metrics=metrics)
    running.append(asyncio.create_task(hb.run(), name="heartbeat"))
    await asyncio.sleep(0.3)
    t_block = time.monotonic()
    time.sleep(0.6)  # noqa: ASYNC251 -- on purpose: the loop is stuck
    t_unblock = time.monotonic()
    await asyncio.sleep(0.01)
    assert metrics.event_loop_lag_seconds._value.get() >= 0.4  # the late wake-up is measured
    await asyncio.sleep(0.3)
    beats = [t for t, m in listener.snapshot() if "WATCHDOG" in m]
    assert any(t < t_block for t in beats)
    assert not any(t_block + 0.06 < t < t_unblock for t in beats)
    assert any(t > t_unblock for t in beats)
    gaps = [b - a for a, b in itertools.pairwise(beats)]
    assert max(gaps) >= 0.5


async def test_a_wedged_worker_stops_the_heartbeat(
    listener: NotifyListener, running: list[asyncio.Task[None]]
) -> None:
    pool = WorkerPool(1)
    release = threading.Event()
    hb = _heartbeat(listener, Progress(), stall_s=0.3, pool=pool)
    running.append(asyncio.create_task(hb.run(), name="heartbeat"))
    job = asyncio.create_task(pool.run(release.wait, 10.0), name="wedged-job")
    await asyncio.sleep(0.8)
    assert hb.last_state is not None
    assert not hb.last_state.healthy
    assert hb.last_state.lane == "workers"
    t_stuck = time.monotonic()
    await asyncio.sleep(0.3)
    assert _beats_between(listener, t_stuck, time.monotonic()) == 0
    release.set()
    assert await job is True
    await asyncio.sleep(0.3)
    assert hb.last_state.healthy
    pool.shutdown()


async def test_without_watchdog_usec_it_only_keeps_status(
    listener: NotifyListener, running: list[asyncio.Task[None]]
) -> None:
    env = {"NOTIFY_SOCKET": listener.address}
    hb = Heartbeat(
        Notifier.from_env(env),
        StallDetector(Progress(), stall_s=1),
        status=lambda: "idle",
        idle_interval_s=0.05,
        environ=env,
    )
    assert not hb.watchdog_enabled
    running.append(asyncio.create_task(hb.run(), name="heartbeat"))
    await asyncio.sleep(0.3)
    msgs = [m for _, m in listener.snapshot()]
    assert msgs == [{"STATUS": "idle"}]  # sent once: it did not change
