from __future__ import annotations

import asyncio

from edged.runtime.supervisor import Backoff, Supervisor


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
        backoff=Backoff(min_s=0.05, max_s=1.0), on_restart=lambda n, e: seen.append(f"{n}:{e}")
    )
    task = sup.spawn("worker:a", component)
    assert task.get_name() == "worker:a"
    await asyncio.wait_for(third_run.wait(), 5)
    assert seen == ["worker:a:boom 1", "worker:a:boom 2"]
    assert sup.restarts == {"worker:a": 2}
    gap1, gap2 = runs[1] - runs[0], runs[2] - runs[1]
    assert gap1 >= 0.035  # 0.05 s +-20 % jitter
    assert gap2 >= 0.07  # doubled: 0.1 s +-20 %
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
    b = Backoff(min_s=1.0, max_s=8.0)
    assert 0.8 <= b.delay_s(1) <= 1.2
    assert 3.2 <= b.delay_s(3) <= 4.8
    assert 6.4 <= b.delay_s(10) <= 9.6
