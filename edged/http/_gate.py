"""The analysis gate: at most ``http.max_concurrent`` analyses at once, each with a deadline.

A request that finds every slot taken is refused at once (429 with
``Retry-After``) — there is no queue to grow. A slot stays taken until the work
in the worker thread has really finished, even when the request already timed
out (503): a thread cannot be cancelled, so releasing early would let more work
run than the bound allows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from edged.core.errors import BusyError
from edged.http._errors import AnalysisTimeoutError, BodyTimeoutError

T = TypeVar("T")
B = TypeVar("B")


class AnalysisGate:
    """Bounded concurrency plus a per-request deadline."""

    def __init__(self, max_concurrent: int, *, timeout_s: float, retry_after_s: float = 1.0):
        self.max_concurrent = max_concurrent
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self._active = 0

    @property
    def active(self) -> int:
        """Analyses holding a slot right now (including timed-out ones still running)."""
        return self._active

    def _enter(self) -> None:
        if self._active >= self.max_concurrent:
            msg = (
                f"busy: {self._active} analyses running, at most {self.max_concurrent} "
                "(http.max_concurrent); retry later"
            )
            raise BusyError(msg, retry_after_s=self.retry_after_s)
        self._active += 1

    def _leave(self) -> None:
        self._active -= 1

    async def run(
        self,
        receive: Callable[[], Awaitable[B]],
        work: Callable[[B], Awaitable[T]],
    ) -> T:
        """Take a slot, ``receive()`` the body, then ``work(body)`` — all before the deadline.

        A body not received in time is a 408; work not finished in time is a 503 and
        its slot is given back only when the work ends.
        """
        self._enter()
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


GATE = web.AppKey("edged.analysis_gate", AnalysisGate)
"""The one gate every analysing endpoint of an app shares (PEKAT analyze, LTU services,
imgdiff): ``http.max_concurrent`` bounds them together, not each family apart."""


def install_gate(app: web.Application, *, max_concurrent: int, timeout_s: float) -> AnalysisGate:
    """Give ``app`` its one analysis gate (the app factory does this, not the areas)."""
    app[GATE] = AnalysisGate(max_concurrent, timeout_s=timeout_s)
    return app[GATE]
