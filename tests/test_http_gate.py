"""The analysis gate's slots and wait queue, driven step by step with events.

Every test holds the work open with an :class:`asyncio.Event` and lets the loop
settle, so the outcomes are known answers (who got a slot, who waits, who is
refused, in which order), never timing measurements.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from edged.core.errors import BusyError
from edged.http._gate import AnalysisGate
from edged.runtime.metrics import Metrics


class Load:
    """Requests through one gate whose work waits for ``release``; records what ran."""

    def __init__(self, gate: AnalysisGate) -> None:
        self.gate = gate
        self.release = asyncio.Event()
        self.started: list[int] = []
        self.running = 0
        self.most_running = 0

    async def request(self, n: int) -> int:
        async def receive() -> int:
            return n

        async def work(body: int) -> int:
            self.started.append(body)
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            try:
                await self.release.wait()
            finally:
                self.running -= 1
            return body * 10

        return await self.gate.run(receive, work)

    def start(self, n: int) -> asyncio.Task[int]:
        return asyncio.ensure_future(self.request(n))


async def settle(cond: Callable[[], bool] = lambda: False, *, steps: int = 50) -> None:
    """Let the loop run until ``cond()`` holds (or ``steps`` turns passed)."""
    for _ in range(steps):
        if cond():
            return
        await asyncio.sleep(0)


async def test_slots_plus_depth_all_succeed_and_the_next_is_refused() -> None:
    metrics = Metrics()
    gate = AnalysisGate(2, timeout_s=30, queue_depth=3, metrics=metrics)
    load = Load(gate)
    tasks = [load.start(i) for i in range(5)]
    await settle(lambda: gate.waiting == 3)
    assert (gate.active, gate.waiting) == (2, 3)
    assert "edged_http_queue_waiting 3.0" in metrics.render().decode()
    with pytest.raises(BusyError, match=r"http\.queue_depth") as refused:
        await load.request(99)
    assert refused.value.http_status == 429
    assert refused.value.retry_after_s == 1.0
    load.release.set()
    assert await asyncio.gather(*tasks) == [0, 10, 20, 30, 40]
    assert (gate.active, gate.waiting) == (0, 0)
    text = metrics.render().decode()
    assert 'edged_http_refused_total{reason="queue_full"} 1.0' in text
    assert "edged_http_queue_wait_seconds_count 3.0" in text


async def test_waiters_get_slots_in_arrival_order_and_slots_are_never_exceeded() -> None:
    gate = AnalysisGate(2, timeout_s=30, queue_depth=10)
    load = Load(gate)
    tasks = [load.start(i) for i in range(8)]
    await settle(lambda: gate.waiting == 6 and len(load.started) == 2)
    assert load.started == [0, 1]
    load.release.set()
    await asyncio.gather(*tasks)
    assert load.started == list(range(8))
    assert load.most_running == 2


async def test_a_newcomer_does_not_overtake_the_line() -> None:
    gate = AnalysisGate(1, timeout_s=30, queue_depth=5)
    order: list[str] = []
    hold = asyncio.Event()

    async def job(name: str, wait: asyncio.Event | None) -> None:
        async def receive() -> None:
            return None

        async def work(_: None) -> None:
            order.append(name)
            if wait is not None:
                await wait.wait()

        await gate.run(receive, work)

    first = asyncio.ensure_future(job("first", hold))
    await settle(lambda: gate.active == 1)
    waiter = asyncio.ensure_future(job("waiter", None))
    await settle(lambda: gate.waiting == 1)
    hold.set()  # the slot is handed to the waiter before any newcomer can take it
    newcomer = asyncio.ensure_future(job("newcomer", None))
    await asyncio.gather(first, waiter, newcomer)
    assert order == ["first", "waiter", "newcomer"]


async def test_a_waiter_that_times_out_is_refused_with_429_and_leaves_the_line() -> None:
    metrics = Metrics()
    gate = AnalysisGate(1, timeout_s=30, queue_depth=2, queue_timeout_s=0.01, metrics=metrics)
    load = Load(gate)
    holder = load.start(0)
    await settle(lambda: gate.active == 1)
    with pytest.raises(BusyError, match=r"http\.queue_timeout_s") as refused:
        await load.request(1)  # the slot is held until release: the wait runs out
    assert refused.value.http_status == 429
    assert (gate.active, gate.waiting) == (1, 0)
    load.release.set()
    assert await holder == 0
    assert load.started == [0]  # the refused request never ran
    assert gate.active == 0
    assert 'edged_http_refused_total{reason="queue_timeout"} 1.0' in metrics.render().decode()


async def test_a_cancelled_waiter_leaves_the_line_and_the_next_one_moves_up() -> None:
    gate = AnalysisGate(1, timeout_s=30, queue_depth=2)
    load = Load(gate)
    tasks = [load.start(i) for i in range(3)]
    await settle(lambda: gate.waiting == 2)
    tasks[1].cancel()  # its client went away while it waited
    await settle(lambda: gate.waiting == 1)
    assert gate.waiting == 1
    load.release.set()
    assert await tasks[0] == 0
    assert await tasks[2] == 20
    with pytest.raises(asyncio.CancelledError):
        await tasks[1]
    assert load.started == [0, 2]
    assert (gate.active, gate.waiting) == (0, 0)


async def test_a_waiter_cancelled_after_the_hand_over_passes_the_slot_on() -> None:
    gate = AnalysisGate(1, timeout_s=30, queue_depth=2)
    load = Load(gate)
    holder = load.start(0)
    await settle(lambda: gate.active == 1)
    second, third = load.start(1), load.start(2)
    await settle(lambda: gate.waiting == 2)
    load.release.set()
    await holder  # its slot was handed to `second`, which has not resumed yet ...
    second.cancel()  # ... and is cancelled now: the slot goes on to `third`
    assert await third == 20
    with pytest.raises(asyncio.CancelledError):
        await second
    assert (gate.active, gate.waiting) == (0, 0)


async def test_depth_zero_refuses_at_once() -> None:
    gate = AnalysisGate(1, timeout_s=30, queue_depth=0)
    load = Load(gate)
    holder = load.start(0)
    await settle(lambda: gate.active == 1)
    with pytest.raises(BusyError, match=r"http\.max_concurrent"):
        await load.request(1)
    load.release.set()
    assert await holder == 0
