"""The analysis gate: bodies first, then at most ``http.max_concurrent`` analyses at once.

A request goes through three steps:

1. **Body** — received *before* a slot is taken, within ``http.body_timeout_s``
   (else 408), so a client trickling its body holds no analysis slot. Bodies
   being received or waiting for a slot share ``http.body_budget_bytes``: a
   request whose declared size (``Content-Length``, else ``http.max_body_bytes``)
   does not fit is refused at once (429 with ``Retry-After``).
2. **Slot** — one of ``http.max_concurrent``. When all are taken the request waits
   in a FIFO of at most ``http.max_queued`` (default 0: no queue); beyond it, or
   when its deadline passes while waiting, it is refused with 429 and
   ``Retry-After``.
3. **Work** — in the worker pool, within ``http.request_timeout_s`` of the body's
   arrival (else 503). A slot stays taken until the work in the worker thread has
   really finished, even when the request already timed out: a thread cannot be
   cancelled, so releasing early would let more work run than the bound allows.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from edged.core.errors import BusyError
from edged.http._errors import AnalysisTimeoutError, BodyTimeoutError

T = TypeVar("T")
B = TypeVar("B")


class AnalysisGate:
    """Body budget, bounded concurrency with an optional bounded queue, deadlines."""

    def __init__(
        self,
        max_concurrent: int,
        *,
        timeout_s: float,
        body_timeout_s: float | None = None,
        max_queued: int = 0,
        body_budget_bytes: int | None = None,
        max_body_bytes: int = 64 * 1024 * 1024,
        retry_after_s: float = 1.0,
    ):
        self.max_concurrent = max_concurrent
        self.max_body_bytes = max_body_bytes
        self.timeout_s = timeout_s
        self.body_timeout_s = timeout_s if body_timeout_s is None else body_timeout_s
        self.max_queued = max_queued
        self.body_budget_bytes = body_budget_bytes
        self.retry_after_s = retry_after_s
        self._active = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._body_bytes = 0

    @property
    def active(self) -> int:
        """Analyses holding a slot right now (including timed-out ones still running)."""
        return self._active

    @property
    def queued(self) -> int:
        return len(self._waiters)

    @property
    def body_bytes(self) -> int:
        """Bytes reserved by bodies being received or waiting for a slot."""
        return self._body_bytes

    def _busy(self, why: str) -> BusyError:
        return BusyError(f"busy: {why}; retry later", retry_after_s=self.retry_after_s)

    def _reserve(self, size: int) -> int:
        budget = self.body_budget_bytes
        if budget is None:
            return 0
        if self._body_bytes + size > budget:
            raise self._busy(
                f"{self._body_bytes} bytes of request bodies are being received, this one "
                f"declares {size}; at most {budget} together (http.body_budget_bytes)"
            )
        self._body_bytes += size
        return size

    async def _acquire(self, deadline: float) -> None:
        if self._active < self.max_concurrent and not self._waiters:
            self._active += 1
            return
        if len(self._waiters) >= self.max_queued:
            raise self._busy(
                f"{self._active} analyses running, at most {self.max_concurrent} "
                f"(http.max_concurrent), {len(self._waiters)} waiting "
                f"(http.max_queued {self.max_queued})"
            )
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            async with asyncio.timeout_at(deadline):
                await fut
        except BaseException as exc:
            if fut.done() and not fut.cancelled():
                self._leave()  # the slot was handed over as we gave up: pass it on
            else:
                fut.cancel()
                with_waiter = fut in self._waiters
                if with_waiter:
                    self._waiters.remove(fut)
            if isinstance(exc, TimeoutError):
                raise self._busy(
                    f"no analysis slot became free within {self.timeout_s:g} s "
                    "(http.request_timeout_s)"
                ) from exc
            raise

    def _leave(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot goes to the next waiter as it is
                return
        self._active -= 1

    async def run(
        self,
        receive: Callable[[], Awaitable[B]],
        work: Callable[[B], Awaitable[T]],
        *,
        body_bytes: int = 0,
    ) -> T:
        """``receive()`` the body (reserving ``body_bytes`` of the body budget), take a
        slot, then ``work(body)`` — each within its deadline (see the module doc)."""
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
imgdiff): ``http.max_concurrent`` bounds them together, not each family apart."""


def install_gate(
    app: web.Application,
    *,
    max_concurrent: int,
    timeout_s: float,
    body_timeout_s: float | None = None,
    max_queued: int = 0,
    body_budget_bytes: int | None = None,
    max_body_bytes: int = 64 * 1024 * 1024,
) -> AnalysisGate:
    """Give ``app`` its one analysis gate (the app factory does this, not the areas)."""
    app[GATE] = AnalysisGate(
        max_concurrent,
        timeout_s=timeout_s,
        body_timeout_s=body_timeout_s,
        max_queued=max_queued,
        body_budget_bytes=body_budget_bytes,
        max_body_bytes=max_body_bytes,
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
