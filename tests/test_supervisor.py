from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from edged.core.backoff import Backoff
from edged.runtime.supervisor import Supervisor


async def test_crashing_component_is_restarted_with_backoff() -> None:
    runs: list[float] = []
    seen: list[str] = []
    third_run = asyncio.Event()

    async def component() -> None:
        runs.append(asyncio.get_running_loop().time())
        if len(runs) < 3:
            msg = f"boom {len(runs)}"
            raise RuntimeError(msg)
        third_run.set()
        await asyncio.sleep(3600)

    sup = Supervisor(
        backoff=Backoff(min_s=0.05, max_s=1.0, jitter=0.2),
        on_restart=lambda n, e: seen.append(f"{n}:{e}"),
    )
    task = sup.spawn("worker:a", component)
    assert task.get_name() == "worker:a"
    await asyncio.wait_for(third_run.wait(), 5)
    assert seen == ["worker:a:boom 1", "worker:a:boom 2"]
    assert sup.restarts == {"worker:a": 2}
    gap1, gap2 = runs[1] - runs[0], runs[2] - runs[1]
    assert gap1 >= 0.04  # 0.05 s less up to 20 % jitter
    assert gap2 >= 0.08  # doubled: 0.1 s less up to 20 %
    assert sup.names == ["worker:a"]
    await sup.stop()
    assert task.cancelled()
    assert sup.names == []


async def test_component_that_returns_is_not_restarted() -> None:
    calls = 0

    async def once() -> None:
        nonlocal calls
        calls += 1

    sup = Supervisor()
    await sup.spawn("once", once)
    assert calls == 1
    assert sup.names == []


def test_backoff_grows_and_caps() -> None:
    b = Backoff(min_s=1.0, max_s=8.0, jitter=0.2, rng=random.Random(3))
    delays = [b.next_delay_s() for _ in range(10)]
    assert 0.8 <= delays[0] <= 1.0
    assert 3.2 <= delays[2] <= 4.0
    assert 6.4 <= delays[9] <= 8.0


async def test_each_component_backs_off_on_its_own_and_a_healthy_run_resets() -> None:
    runs: dict[str, list[float]] = {"a": [], "b": []}
    done = asyncio.Event()

    def crasher(name: str, crashes: int) -> Callable[[], Awaitable[None]]:
        async def component() -> None:
            runs[name].append(asyncio.get_running_loop().time())
            if len(runs[name]) <= crashes:
                raise RuntimeError(name)
            if all(len(r) > 1 for r in runs.values()):
                done.set()
            await asyncio.sleep(3600)

        return component

    sup = Supervisor(backoff=Backoff(0.05, 1.0), healthy_after_s=0.0)
    sup.spawn("a", crasher("a", 3))
    sup.spawn("b", crasher("b", 1))
    await asyncio.wait_for(done.wait(), 5)
    await asyncio.sleep(0.3)
    await sup.stop()
    # healthy_after_s=0: every run counts as healthy, so every restart waits min_s (0.05 s),
    # never the doubled 0.1 / 0.2 s.
    gaps = [t1 - t0 for t0, t1 in zip(runs["a"], runs["a"][1:], strict=False)]
    assert len(gaps) == 3
    assert all(0.045 <= g < 0.095 for g in gaps), gaps
    assert sup.restarts == {"a": 3, "b": 1}
