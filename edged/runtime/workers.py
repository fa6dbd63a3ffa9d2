"""The bounded worker pool: pixel work runs here, never on the event loop.

OpenCV and NumPy release the GIL in their kernels, so threads give real
parallelism for inspection. The pool is bounded twice: ``workers`` threads, and a
semaphore so no more than ``workers + backlog`` jobs are ever submitted — callers
wait (await) instead of piling work into an unbounded executor queue.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class WorkerPool:
    """``await pool.run(fn, *args, **kwargs)`` runs ``fn`` in a worker thread."""

    def __init__(
        self, workers: int, *, backlog: int | None = None, name: str = "edged-worker"
    ) -> None:
        if workers < 1:
            msg = f"workers: expected >= 1, got {workers}"
            raise ValueError(msg)
        self.workers = workers
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._slots = asyncio.Semaphore(workers + (workers if backlog is None else backlog))
        self._busy = 0
        self._lock = threading.Lock()
        self._last_done = time.monotonic()
        self._closed = False

    @property
    def busy(self) -> int:
        """Jobs running right now."""
        return self._busy

    @property
    def last_done_monotonic(self) -> float:
        """``time.monotonic()`` when a job last finished (for the watchdog)."""
        return self._last_done

    def _wrap(self, fn: Callable[[], T]) -> T:
        with self._lock:
            self._busy += 1
        try:
            return fn()
        finally:
            with self._lock:
                self._busy -= 1
                self._last_done = time.monotonic()

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self._closed:
            msg = "worker pool is shut down"
            raise RuntimeError(msg)
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        async with self._slots:
            return await loop.run_in_executor(self._executor, self._wrap, call)

    @property
    def closed(self) -> bool:
        return self._closed

    def shutdown(self, *, wait: bool = True) -> None:
        self._closed = True
        self._executor.shutdown(wait=wait, cancel_futures=True)
