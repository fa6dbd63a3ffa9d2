"""The analysis gate: at most ``http.max_concurrent`` analyses at once, a bounded
FIFO wait queue behind them, and a deadline for each analysis.

A request that finds every slot taken waits in line — at most
``http.queue_depth`` requests wait, each at most ``http.queue_timeout_s`` — and
takes the first slot that frees up, in arrival order (a newcomer never overtakes
a waiter). Only a request that finds the line full, or that waited its whole
``queue_timeout_s``, is refused: 429 with ``Retry-After``. A request in line has
not had its body read yet (the TCP window holds it back), so the line costs
sockets, not memory.

The deadline (``http.request_timeout_s``) starts when the request gets its slot:
the body is read and the work done within it (408 for a late body, 503 for late
work). A slot stays taken until the work in the worker thread has really
finished, even when the request already timed out: a thread cannot be cancelled,
so releasing early would let more work run than the bound allows.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from edged.core.errors import BusyError
from edged.http._errors import AnalysisTimeoutError, BodyTimeoutError
from edged.runtime.metrics import Metrics

T = TypeVar("T")
B = TypeVar("B")


class AnalysisGate:
    """Bounded concurrency, a bounded FIFO wait queue, and a per-request deadline.

    ``queue_depth=0`` refuses at once when every slot is taken (no queue).
    """

    def __init__(
        self,
        max_concurrent: int,
        *,
        timeout_s: float,
        queue_depth: int = 0,
        queue_timeout_s: float = 10.0,
        retry_after_s: float = 1.0,
        metrics: Metrics | None = None,
    ):
        self.max_concurrent = max_concurrent
        self.timeout_s = timeout_s
        self.queue_depth = queue_depth
        self.queue_timeout_s = queue_timeout_s
        self.retry_after_s = retry_after_s
        self._active = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._metrics = metrics
        if metrics is not None:
            metrics.http_queue_waiting.set_function(lambda: len(self._waiters))

    @property
    def active(self) -> int:
        """Analyses holding a slot right now (including timed-out ones still running)."""
        return self._active

    @property
    def waiting(self) -> int:
        """Requests waiting in line for a slot."""
        return len(self._waiters)

    async def _enter(self) -> None:
        if self._active < self.max_concurrent and not self._waiters:
            self._active += 1
            return
        if len(self._waiters) >= self.queue_depth:
            self._count_refused("queue_full")
            msg = (
                f"busy: {self._active} analyses running (http.max_concurrent "
                f"{self.max_concurrent}) and {len(self._waiters)} waiting (http.queue_depth "
                f"{self.queue_depth}); retry later"
            )
            raise BusyError(msg, retry_after_s=self.retry_after_s)
        loop = asyncio.get_running_loop()
        granted: asyncio.Future[None] = loop.create_future()
        self._waiters.append(granted)
        t0 = loop.time()
        try:
            async with asyncio.timeout(self.queue_timeout_s):
                await asyncio.shield(granted)
        except TimeoutError as exc:
            if not granted.done():  # else the slot came just as the wait ran out: take it
                self._leave_line(granted)
                self._count_refused("queue_timeout")
                msg = (
                    f"busy: waited {self.queue_timeout_s:g} s (http.queue_timeout_s) "
                    f"for one of {self.max_concurrent} analysis slots (http.max_concurrent); "
                    "retry later"
                )
                raise BusyError(msg, retry_after_s=self.retry_after_s) from exc
        except BaseException:  # cancelled: the client went away while in line
            if granted.done():
                self._leave()  # handed over meanwhile: pass it on
            else:
                self._leave_line(granted)
            raise
        if self._metrics is not None:
            self._metrics.http_queue_wait_seconds.observe(loop.time() - t0)

    def _leave_line(self, granted: asyncio.Future[None]) -> None:
        granted.cancel()
        self._waiters.remove(granted)

    def _count_refused(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.http_refused.labels(reason).inc()

    def _leave(self) -> None:
        """Free a slot, or hand it straight to the first waiter (FIFO, no overtaking)."""
        if self._waiters:
            self._waiters.popleft().set_result(None)  # the slot changes hands: _active stays
        else:
            self._active -= 1

    async def run(
        self,
        receive: Callable[[], Awaitable[B]],
        work: Callable[[B], Awaitable[T]],
    ) -> T:
        """Take a slot (waiting in line if need be), ``receive()`` the body, then
        ``work(body)`` — body and work within the deadline.

        A full line, or a wait longer than ``queue_timeout_s``, is a 429; a body not
        received in time is a 408; work not finished in time is a 503 and its slot is
        given back only when the work ends.
        """
        await self._enter()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        job: asyncio.Future[T] | None = None
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    body = await receive()
            except TimeoutError as exc:
                msg = f"request body: expected it within {self.timeout_s:g} s, got it late"
                raise BodyTimeoutError(msg) from exc
            job = asyncio.ensure_future(work(body))
            try:
                async with asyncio.timeout_at(deadline):
                    return await asyncio.shield(job)
            except TimeoutError as exc:
                msg = (
                    f"analysis: expected it to finish within {self.timeout_s:g} s "
                    "(http.request_timeout_s), it did not"
                )
                raise AnalysisTimeoutError(msg) from exc
        finally:
            if job is not None and not job.done():
                job.add_done_callback(self._leave_after)
            else:
                self._leave()

    def _leave_after(self, job: asyncio.Future[Any]) -> None:
        self._leave()
        if not job.cancelled():
            job.exception()  # retrieved: a late failure is not "never retrieved"


async def gated(
    request: web.Request,
    receive: Callable[[], Awaitable[B]],
    work: Callable[[B], Awaitable[T]],
) -> T:
    """``receive()`` then ``work(body)`` under the app's analysis gate; directly when the
    app has none (routes added to a bare app, as some tests do)."""
    gate = request.app.get(GATE)
    if gate is None:
        return await work(await receive())
    return await gate.run(receive, work)


GATE = web.AppKey("edged.analysis_gate", AnalysisGate)
"""The one gate every analysing endpoint of an app shares (PEKAT analyze, LTU services,
imgdiff): ``http.max_concurrent`` bounds them together, not each family apart."""


def install_gate(
    app: web.Application,
    *,
    max_concurrent: int,
    timeout_s: float,
    queue_depth: int = 0,
    queue_timeout_s: float = 10.0,
    metrics: Metrics | None = None,
) -> AnalysisGate:
    """Give ``app`` its one analysis gate (the app factory does this, not the areas)."""
    app[GATE] = AnalysisGate(
        max_concurrent,
        timeout_s=timeout_s,
        queue_depth=queue_depth,
        queue_timeout_s=queue_timeout_s,
        metrics=metrics,
    )
    return app[GATE]
