"""The one place where errors become HTTP responses (and request metrics are counted).

Every error a request meets — an :class:`~edged.core.errors.EdgedError` from a
handler or the auth middleware, aiohttp's own 404/405/413, or a bug — leaves
through :func:`error_middleware`, rendered in the shape of the request's API
family (:mod:`edged.http._families`) with the error's HTTP status. Only a true
internal error is a 500, logged once with its route; ``Retry-After`` (429) is
set here and nowhere else.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from edged.core.errors import BusyError, EdgedError
from edged.http._families import HttpError, family_of
from edged.http._keys import RUNTIME

log = logging.getLogger("edged.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_KEPT_HEADERS = ("Allow", "WWW-Authenticate")
"""Headers of aiohttp's own errors that the rendered answer keeps (405's Allow)."""

INTERNAL_ERROR = "internal error; see the edged log"


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every error in the request's API family shape; record request metrics."""
    t0 = time.perf_counter()
    route = _route_name(request)
    status = 500
    try:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                status = exc.status
                raise
            kept = {k: exc.headers[k] for k in _KEPT_HEADERS if k in exc.headers}
            response = _render(request, _from_http(exc), kept)
        except EdgedError as exc:
            response = _render(request, _from_edged(exc), {})
        except Exception:
            log.exception("unhandled error in %s %s", request.method, route)
            response = _render(request, HttpError(500, INTERNAL_ERROR, "InternalError"), {})
        status = response.status
        return response
    finally:
        _record(request, route, status, t0)


def _from_edged(exc: EdgedError) -> HttpError:
    retry = exc.retry_after_s if isinstance(exc, BusyError) else None
    return HttpError(exc.http_status, str(exc), type(exc).__name__, retry)


def _from_http(exc: web.HTTPException) -> HttpError:
    """aiohttp's error: its text when it says more than ``"404: Not Found"``, else its reason."""
    text = exc.text or ""
    message = text if text and not text.startswith(str(exc.status)) else exc.reason
    retry: float | None = None
    with contextlib.suppress(KeyError, ValueError):
        retry = float(exc.headers["Retry-After"])
    return HttpError(exc.status, message, type(exc).__name__, retry)


def _render(request: web.Request, error: HttpError, headers: dict[str, str]) -> web.Response:
    body = family_of(request).render(request, error)
    if error.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, round(error.retry_after_s)))
    return web.json_response(body, status=error.status, headers=headers)


def _route_name(request: web.Request) -> str:
    """The route template (a bounded label value), not the raw path."""
    resource = request.match_info.route.resource
    return "unmatched" if resource is None else resource.canonical


def _record(request: web.Request, route: str, status: int, t0: float) -> None:
    metrics = request.app[RUNTIME].metrics
    metrics.http_requests.labels(route, str(status)).inc()
    if route.startswith("/analyze"):
        metrics.analyze_seconds.labels(route).observe(time.perf_counter() - t0)
