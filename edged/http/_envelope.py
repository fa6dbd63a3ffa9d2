"""The LTU response envelope, for answers and errors, and the LTU API family.

Every answer, success or error, is::

    {"result": {...} | null,
     "details": {"name": NAME, "score": number, "message": sentence | reason,
                 "info": {..., "elapsed_ms": ...}},
     "code": 0 | HTTP status, "errors": [] | [reason],
     "version": EDGED_VERSION}

``details.name``, ``score``, ``message`` and ``info`` are what the LTU document
gives for each service (``heatmap`` for heatMap, ``quality`` for imageQuality,
"Found 8 colors"…); ``code`` and ``errors`` are the document's status of the
execution (0 and empty on success); edged adds ``info.elapsed_ms``.

:func:`ltu_endpoint` wraps a service's success in the envelope. Errors (400 bad
input, 401 no API key, 404, 405, 408 body too slow, 413 too large, 429 busy, 503
too slow — never 500) are rendered by the app's error middleware through
:data:`LTU_FAMILY`, which every LTU area registers in its ``setup(app)``: the
envelope with ``result`` null, the reason in ``details.message`` and ``errors``,
``code`` the HTTP status and ``details.info`` ``{"status", "error"}``.

A wrapped service runs under the app's analysis gate (:mod:`edged.http._gate`):
at most ``http.max_concurrent`` analyses at once, a bounded wait queue behind them
(429 beyond), each within ``http.request_timeout_s``; the form is read inside the gate.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from edged._version import __version__
from edged.http._families import ApiFamily, HttpError, JsonBody
from edged.http._gate import GATE, gated
from edged.http._input import read_form

LTU_GATE = GATE
"""The app's analysis gate, shared with the analyze endpoints (see ``_gate.GATE``)."""

PREFIX = "/v2/services/image/"


@dataclass(frozen=True, slots=True)
class LtuAnswer:
    """What a service handler returns: the result and optional score and info."""

    result: Mapping[str, Any]
    score: float | None = 0
    info: Mapping[str, Any] = field(default_factory=dict)
    message: str = ""
    name: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Further top-level keys a service's document shows (distance's ``source``)."""


def envelope(
    name: str,
    result: Mapping[str, Any] | None,
    *,
    score: float | None = 0,
    message: str = "",
    info: Mapping[str, Any] | None = None,
    code: int = 0,
    errors: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The LTU envelope around ``result``."""
    return {
        "result": dict(result) if result is not None else None,
        "details": {
            "name": name,
            "score": score,
            "message": message,
            "info": dict(info or {}),
        },
        "code": code,
        "errors": list(errors),
        "version": __version__,
    }


def ltu_error_body(request: web.Request, error: HttpError) -> JsonBody:
    """The envelope of an error; the service name is the last segment of the path."""
    name = request.path.rstrip("/").rsplit("/", 1)[-1]
    info = {"status": error.status, "error": error.kind}
    return envelope(
        name,
        None,
        score=None,
        message=error.message,
        info=info,
        code=error.status,
        errors=(error.message,),
    )


LTU_FAMILY = ApiFamily("LTU", ltu_error_body, prefixes=(PREFIX,))
"""The LTU image services: errors in the envelope (register it in each LTU area's setup)."""

Service = Callable[[web.Request], Awaitable[LtuAnswer]]
Handler = Callable[[web.Request], Awaitable[web.Response]]


def ltu_endpoint(name: str) -> Callable[[Service], Handler]:
    """Wrap a service handler: run it under the analysis gate, time it, and put its
    answer in the envelope with ``info.elapsed_ms``. Errors pass through to the
    app's error middleware."""

    def wrap(fn: Service) -> Handler:
        @functools.wraps(fn)
        async def handler(request: web.Request) -> web.Response:
            t0 = time.perf_counter()
            answer = await _gated(request, fn)
            elapsed_ms = round((time.perf_counter() - t0) * 1000.0, 3)
            info = {**answer.info, "elapsed_ms": elapsed_ms}
            body = envelope(
                answer.name or name,
                answer.result,
                score=answer.score,
                message=answer.message,
                info=info,
            )
            body.update(answer.extra)
            return web.json_response(body)

        return handler

    return wrap


async def _gated(request: web.Request, fn: Service) -> LtuAnswer:
    async def receive() -> object:
        return await read_form(request)

    async def work(_: object) -> LtuAnswer:
        return await fn(request)

    return await gated(request, receive, work)
