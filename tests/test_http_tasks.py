"""The inference task store: bounded, expiring, cancelled on close."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from edged.core.errors import InputError, NotFoundError
from edged.http._errors import UnavailableError
from edged.http._tasks import TaskStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_pending_bound_expiry_and_eviction() -> None:
    clock = Clock()
    store = TaskStore(max_tasks=3, max_pending=2, ttl_s=10.0, clock=clock)
    gate = asyncio.Event()

    async def slow() -> Mapping[str, Any]:
        await gate.wait()
        return {"ok": True}

    a, b = store.submit(slow), store.submit(slow)
    assert (a.id, b.id, store.pending) == (1, 2, 2)
    with pytest.raises(UnavailableError, match="expected fewer than 2 pending"):
        store.submit(slow)
    assert store.get(1).to_api()["status"] == "pending"
    gate.set()
    await _settle()
    assert store.get(1).to_api() | {"date_created": "", "date_updated": ""} == {
        "id": 1,
        "status": "success",
        "error": None,
        "data": {"ok": True},
        "date_created": "",
        "date_updated": "",
    }
    # full (3 tasks): the oldest finished one makes room
    c = store.submit(slow)
    await _settle()
    d = store.submit(slow)
    await _settle()
    assert len(store) == 3
    with pytest.raises(NotFoundError, match="unknown or expired"):
        store.get(a.id)
    assert store.get(d.id).status == "success"
    # finished tasks expire after ttl_s
    clock.now = 11.0
    with pytest.raises(NotFoundError):
        store.get(c.id)
    assert len(store) == 0


async def test_errors_land_in_the_task_and_close_cancels() -> None:
    store = TaskStore(max_tasks=10, max_pending=10, ttl_s=60.0)

    async def bad() -> Mapping[str, Any]:
        raise InputError("image: expected a PNG")

    async def broken() -> Mapping[str, Any]:
        raise RuntimeError("boom")

    async def forever() -> Mapping[str, Any]:
        await asyncio.Event().wait()
        return {}

    t1, t2, t3 = store.submit(bad), store.submit(broken), store.submit(forever)
    await _settle()
    assert (t1.status, t1.error) == ("error", "image: expected a PNG")
    assert (t2.status, t2.error) == ("error", "internal error: RuntimeError: boom")
    await store.close()
    assert (t3.status, t3.error) == ("error", "cancelled: edged is shutting down")
    assert store.pending == 0
