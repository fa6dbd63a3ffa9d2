"""The analysis gate: bodies first, then at most ``http.max_concurrent`` analyses at
once, with a bounded first-come-first-served line in between.

A request goes through three steps:

1. **Body** — received *before* a slot is taken, within ``http.body_timeout_s``
   (else 408), so a client trickling its body holds no analysis slot. Bodies
   being received or waiting for a slot share ``http.body_budget_bytes``: a
   request whose declared size (``Content-Length``, else ``http.max_body_bytes``)
   does not fit is refused at once (429 with ``Retry-After``).
2. **Slot** — one of ``http.max_concurrent``. When all are taken the request waits
   in line: at most ``http.queue_depth`` wait, each at most ``http.queue_timeout_s``
   (and never past its deadline, below), and each freed slot goes straight to the
   first in line — a newcomer never overtakes a waiter. A request that finds the
   line full, or whose wait runs out, is refused with 429 and ``Retry-After``; it
   never ran.
3. **Work** — in the worker pool; the answer is due ``http.request_timeout_s`` after
   the body arrived, waiting included (else 503). A slot stays taken until the work
   in the worker thread has really finished, even when the request already timed
   out: a thread cannot be cancelled, so releasing early would let more work run
   than the bound allows.

The line and its refusals show in the runtime's metrics: ``edged_http_queue_waiting``,
``edged_http_queue_wait_seconds`` and ``edged_http_refused_total{reason}``.
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
    """Body budget, bounded concurrency with a bounded FIFO line, deadlines.

    ``queue_depth=0`` refuses at once when every slot is taken (no line).
    """

    def __init__(
        self,
        max_concurrent: int,
        *,
        timeout_s: float,
        body_timeout_s: float | None = None,
        queue_depth: int = 0,
        queue_timeout_s: float = 10.0,
        body_budget_bytes: int | None = None,
        max_body_bytes: int = 64 * 1024 * 1024,
        retry_after_s: float = 1.0,
        metrics: Metrics | None = None,
    ):
        self.max_concurrent = max_concurrent
        self.max_body_bytes = max_body_bytes
        self.timeout_s = timeout_s
        self.body_timeout_s = timeout_s if body_timeout_s is None else body_timeout_s
        self.queue_depth = queue_depth
        self.queue_timeout_s = queue_timeout_s
        self.body_budget_bytes = body_budget_bytes
        self.retry_after_s = retry_after_s
        self._active = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._body_bytes = 0
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

    @property
    def body_bytes(self) -> int:
        """Bytes reserved by bodies being received or waiting for a slot."""
        return self._body_bytes

    def _busy(self, reason: str, why: str) -> BusyError:
        if self._metrics is not None:
            self._metrics.http_refused.labels(reason).inc()
        return BusyError(f"busy: {why}; retry later", retry_after_s=self.retry_after_s)

    def _reserve(self, size: int) -> int:
        budget = self.body_budget_bytes
        if budget is None:
            return 0
        if self._body_bytes + size > budget:
            raise self._busy(
                "body_budget",
                f"{self._body_bytes} bytes of request bodies are being received, this one "
                f"declares {size}; at most {budget} together (http.body_budget_bytes)",
            )
        self._body_bytes += size
        return size

    async def _acquire(self, deadline: float) -> None:
        """Take a slot, waiting in line if need be (429 when the line is full or the
        wait runs out at ``queue_timeout_s`` or ``deadline``, whichever comes first)."""
        if self._active < self.max_concurrent and not self._waiters:
            self._active += 1
            return
        if len(self._waiters) >= self.queue_depth:
            raise self._busy(
                "queue_full",
                f"{self._active} analyses running (http.max_concurrent {self.max_concurrent}) "
                f"and {len(self._waiters)} waiting (http.queue_depth {self.queue_depth})",
            )
        loop = asyncio.get_running_loop()
        granted: asyncio.Future[None] = loop.create_future()
        self._waiters.append(granted)
        t0 = loop.time()
        try:
            async with asyncio.timeout_at(min(deadline, t0 + self.queue_timeout_s)):
                await asyncio.shield(granted)
        except TimeoutError as exc:
            if not granted.done():  # else the slot came just as the wait ran out: take it
                self._leave_line(granted)
                raise self._busy(
                    "queue_timeout",
                    f"no analysis slot (http.max_concurrent {self.max_concurrent}) came free "
                    f"within {loop.time() - t0:.3g} s (http.queue_timeout_s "
                    f"{self.queue_timeout_s:g}, http.request_timeout_s {self.timeout_s:g})",
                ) from exc
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
        *,
        body_bytes: int = 0,
    ) -> T:
        """``receive()`` the body (reserving ``body_bytes`` of the body budget), take a
        slot (waiting in line if need be), then ``work(body)`` — each within its
        deadline (see the module doc)."""
        reserved = self._reserve(body_bytes)
        try:
            loop = asyncio.get_running_loop()
            try:
                async with asyncio.timeout(self.body_timeout_s):
                    body = await receive()
            except TimeoutError as exc:
                msg = (
                    f"request body: expected it within {self.body_timeout_s:g} s "
                    "(http.body_timeout_s), got it late"
                )
                raise BodyTimeoutError(msg) from exc
            deadline = loop.time() + self.timeout_s
            await self._acquire(deadline)
            job: asyncio.Future[T] | None = None
            try:
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
        finally:
            self._body_bytes -= reserved

    def _leave_after(self, job: asyncio.Future[Any]) -> None:
        self._leave()
        if not job.cancelled():
            job.exception()  # retrieved: a late failure is not "never retrieved"


def declared_body_bytes(request: web.Request, max_body_bytes: int) -> int:
    """What a request's body may take: its Content-Length, else the body limit."""
    size = request.content_length
    return max_body_bytes if size is None else min(size, max_body_bytes)


GATE = web.AppKey("edged.analysis_gate", AnalysisGate)
"""The one gate every analysing endpoint of an app shares (PEKAT analyze, LTU services,
imgdiff, reference uploads): ``http.max_concurrent`` bounds them together."""


def install_gate(
    app: web.Application,
    *,
    max_concurrent: int,
    timeout_s: float,
    body_timeout_s: float | None = None,
    queue_depth: int = 0,
    queue_timeout_s: float = 10.0,
    body_budget_bytes: int | None = None,
    max_body_bytes: int = 64 * 1024 * 1024,
    metrics: Metrics | None = None,
) -> AnalysisGate:
    """Give ``app`` its one analysis gate (the app factory does this, not the areas)."""
    app[GATE] = AnalysisGate(
        max_concurrent,
        timeout_s=timeout_s,
        body_timeout_s=body_timeout_s,
        queue_depth=queue_depth,
        queue_timeout_s=queue_timeout_s,
        body_budget_bytes=body_budget_bytes,
        max_body_bytes=max_body_bytes,
        metrics=metrics,
    )
    return app[GATE]


async def gated(
    request: web.Request,
    receive: Callable[[], Awaitable[B]],
    work: Callable[[B], Awaitable[T]],
) -> T:
    """Run ``receive`` then ``work`` under the app's gate, reserving the request's
    declared body size; without a gate (a bare app) just run them."""
    gate = request.app.get(GATE)
    if gate is None:
        return await work(await receive())
    size = declared_body_bytes(request, gate.max_body_bytes)
    return await gate.run(receive, work, body_bytes=size)
