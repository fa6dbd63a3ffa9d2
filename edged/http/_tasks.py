"""Asynchronous inference tasks: a bounded in-memory store with expiry.

:meth:`TaskStore.submit` starts the work as a named asyncio task and returns its
:class:`Task` (``pending``) at once; the work's result or error lands in the task
(``success`` / ``error``). Finished tasks expire after ``ttl_s``; when the store
holds ``max_tasks`` the oldest finished ones go first, and when ``max_pending``
tasks are queued a new one is refused (503, retry later), so a client that never
polls cannot fill memory. :meth:`close` cancels what is still running.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from edged.core.atomic import utc_now
from edged.core.errors import EdgedError, NotFoundError
from edged.http._errors import UnavailableError

log = logging.getLogger("edged.http.tasks")

Status = Literal["pending", "success", "error"]


@dataclass
class Task:
    """One inference task (mutable: the store completes it)."""

    id: int
    created_s: float
    date_created: str = field(default_factory=utc_now)
    status: Status = "pending"
    error: str | None = None
    data: Mapping[str, Any] | None = None
    date_updated: str | None = None
    finished_s: float | None = None

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "error": self.error,
            "data": None if self.data is None else dict(self.data),
            "date_created": self.date_created,
            "date_updated": self.date_updated,
        }


class TaskStore:
    """Bounded, expiring tasks (see the module docstring)."""

    def __init__(
        self,
        *,
        max_tasks: int,
        max_pending: int,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_tasks = max_tasks
        self.max_pending = max_pending
        self.ttl_s = ttl_s
        self._clock = clock
        self._ids = itertools.count(1)
        self._tasks: collections.OrderedDict[int, Task] = collections.OrderedDict()
        self._running: dict[int, asyncio.Task[None]] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def pending(self) -> int:
        return len(self._running)

    def _expire(self) -> None:
        now = self._clock()
        for task_id in [
            t.id
            for t in self._tasks.values()
            if t.finished_s is not None and now - t.finished_s > self.ttl_s
        ]:
            del self._tasks[task_id]
        while len(self._tasks) >= self.max_tasks:
            oldest = next((t.id for t in self._tasks.values() if t.finished_s is not None), None)
            if oldest is None:
                break
            del self._tasks[oldest]

    def submit(self, work: Callable[[], Awaitable[Mapping[str, Any]]]) -> Task:
        """Start ``work`` in a task; 503 when too many are pending or the store is full."""
        self._expire()
        if len(self._running) >= self.max_pending or len(self._tasks) >= self.max_tasks:
            msg = (
                f"inference tasks: expected fewer than {self.max_pending} pending "
                f"(recognition.max_pending_tasks), got {len(self._running)}; retry later"
            )
            raise UnavailableError(msg)
        task = Task(next(self._ids), self._clock())
        self._tasks[task.id] = task
        self._running[task.id] = asyncio.get_running_loop().create_task(
            self._run(task, work), name=f"edged.inference-task-{task.id}"
        )
        return task

    async def _run(self, task: Task, work: Callable[[], Awaitable[Mapping[str, Any]]]) -> None:
        try:
            task.data = await work()
            task.status = "success"
        except asyncio.CancelledError:
            task.status, task.error = "error", "cancelled: edged is shutting down"
            raise
        except EdgedError as exc:
            task.status, task.error = "error", str(exc)
        except Exception as exc:
            log.exception("inference task %s failed", task.id)
            task.status, task.error = "error", f"internal error: {type(exc).__name__}: {exc}"
        finally:
            task.date_updated = utc_now()
            task.finished_s = self._clock()
            self._running.pop(task.id, None)

    def get(self, task_id: int) -> Task:
        self._expire()
        task = self._tasks.get(task_id)
        if task is None:
            msg = f"task {task_id}: expected a known task id, got none (unknown or expired)"
            raise NotFoundError(msg)
        return task

    async def close(self) -> None:
        """Cancel every running task and wait for them."""
        running = list(self._running.values())
        for t in running:
            t.cancel()
        await asyncio.gather(*running, return_exceptions=True)
