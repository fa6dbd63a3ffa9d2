"""The LTU response envelope and the error handling every image service shares.

Every answer, success or error, is::

    {"result": {...} | null,
     "details": {"name": SERVICE, "score": float | null, "message": "OK" | reason,
                 "info": {"elapsed_ms": ..., ...}},
     "version": EDGED_VERSION}

Errors keep the envelope and carry the reason in ``details.message`` with the
HTTP status of the error (400 bad input, 401 no API key, 408 body too slow, 413
too large, 429 busy, 503 too slow), never 500.

Every service wrapped by :func:`ltu_endpoint` checks the API key (when the app
has a runtime and ``http.api_key`` is set) and runs under the LTU analysis gate
that :func:`install_gate` puts on the app: at most ``http.max_concurrent`` LTU
requests at once (429 beyond), each within ``http.request_timeout_s``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from edged._version import __version__
from edged.core.errors import BusyError, EdgedError
from edged.http._auth import check_api_key
from edged.http._gate import GATE, shared_gate
from edged.http._input import read_form
from edged.http._keys import RUNTIME

LTU_GATE = GATE
"""The app's analysis gate, shared with the analyze endpoints (see ``_gate.GATE``)."""


def install_gate(app: web.Application) -> None:
    """Give ``app`` its analysis gate from the runtime's ``http`` settings (no runtime: none)."""
    if app.get(RUNTIME) is not None:
        shared_gate(app)


@dataclass(frozen=True, slots=True)
class LtuAnswer:
    """What a service handler returns: the result and optional score and info."""

    result: Mapping[str, Any]
    score: float | None = None
    info: Mapping[str, Any] = field(default_factory=dict)


def envelope(
    name: str,
    result: Mapping[str, Any] | None,
    *,
    score: float | None = None,
    message: str = "OK",
    info: Mapping[str, Any] | None = None,
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
        "version": __version__,
    }


def envelope_response(
    name: str,
    result: Mapping[str, Any] | None,
    *,
    status: int = 200,
    score: float | None = None,
    message: str = "OK",
    info: Mapping[str, Any] | None = None,
) -> web.Response:
    body = envelope(name, result, score=score, message=message, info=info)
    return web.json_response(body, status=status)


Service = Callable[[web.Request], Awaitable[LtuAnswer]]
Handler = Callable[[web.Request], Awaitable[web.Response]]


def ltu_endpoint(name: str) -> Callable[[Service], Handler]:
    """Wrap a service handler: time it, put its answer in the envelope, and turn
    every edged error (and aiohttp's own 4xx) into an envelope with that status."""

    def wrap(fn: Service) -> Handler:
        @functools.wraps(fn)
        async def handler(request: web.Request) -> web.Response:
            t0 = time.perf_counter()
            try:
                answer = await _guarded(request, fn)
            except EdgedError as exc:
                info = {"status": exc.http_status, "error": type(exc).__name__}
                resp = envelope_response(
                    name, None, status=exc.http_status, message=str(exc), info=info
                )
                if isinstance(exc, BusyError):
                    resp.headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
                return resp
            except web.HTTPClientError as exc:
                info = {"status": exc.status, "error": type(exc).__name__}
                return envelope_response(
                    name, None, status=exc.status, message=exc.text or exc.reason, info=info
                )
            elapsed_ms = round((time.perf_counter() - t0) * 1000.0, 3)
            info = {**answer.info, "elapsed_ms": elapsed_ms}
            return envelope_response(name, answer.result, score=answer.score, info=info)

        return handler

    return wrap


async def _guarded(request: web.Request, fn: Service) -> LtuAnswer:
    if RUNTIME in request.app:
        check_api_key(request)
    gate = request.app.get(LTU_GATE)
    if gate is None:
        return await fn(request)

    async def receive() -> object:
        return await read_form(request)

    async def work(_: object) -> LtuAnswer:
        return await fn(request)

    return await gate.run(receive, work)
