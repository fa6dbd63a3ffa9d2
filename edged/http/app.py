"""The aiohttp application factory: ``create_app(runtime)``.

Domain errors (:class:`~edged.core.errors.EdgedError`) become their HTTP status with a
JSON body ``{"error": message, "status": code}`` in one middleware; aiohttp's own
HTTP errors (404, 405, 413) get the same JSON shape. Areas add their routes in
:func:`_add_routes`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from edged._version import __version__
from edged.core.errors import BusyError, EdgedError
from edged.http._keys import RUNTIME
from edged.http.ltu import setup_ltu
from edged.runtime.metrics import CONTENT_TYPE
from edged.runtime.shared import Runtime

log = logging.getLogger("edged.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(status: int, message: str, **extra: object) -> web.Response:
    body = {"error": message, "status": status, **extra}
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map EdgedError and aiohttp HTTP errors to JSON; record request metrics."""
    runtime = request.app[RUNTIME]
    t0 = time.perf_counter()
    route = _route_name(request)
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except BusyError as exc:
        status = exc.http_status
        resp = json_error(status, str(exc))
        resp.headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
        return resp
    except EdgedError as exc:
        status = exc.http_status
        return json_error(status, str(exc))
    except web.HTTPException as exc:
        status = exc.status
        if exc.status < 400:
            raise
        reason = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
        resp = json_error(exc.status, reason)
        for key in ("Allow", "Retry-After", "WWW-Authenticate"):
            if key in exc.headers:
                resp.headers[key] = exc.headers[key]
        return resp
    except Exception:
        log.exception("unhandled error in %s %s", request.method, route)
        status = 500
        return json_error(500, "internal error; see the edged log")
    finally:
        runtime.metrics.http_requests.labels(route, str(status)).inc()
        if route.startswith("/analyze"):
            runtime.metrics.analyze_seconds.labels(route).observe(time.perf_counter() - t0)


def _route_name(request: web.Request) -> str:
    """The route template (bounded label value), not the raw path."""
    info = request.match_info.route.resource
    if info is None:
        return "unmatched"
    return info.canonical


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process serves HTTP."""
    return web.json_response({"status": "ok", "version": __version__})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: every component (sources, workers, publisher, HTTP) is up."""
    health = request.app[RUNTIME].health
    body = {"ready": health.ready, "components": health.components}
    return web.json_response(body, status=200 if health.ready else 503)


async def metrics(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    return web.Response(body=runtime.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


def create_app(runtime: Runtime, *, with_metrics: bool = True) -> web.Application:
    """Build the HTTP application for ``runtime``."""
    app = web.Application(
        middlewares=[error_middleware],
        client_max_size=runtime.settings.http.max_body_bytes,
    )
    app[RUNTIME] = runtime
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if with_metrics:
        app.router.add_get("/metrics", metrics)
    _add_routes(app)
    return app


def create_metrics_app(runtime: Runtime) -> web.Application:
    """A metrics-only application for a separate ``metrics.port``."""
    app = web.Application(middlewares=[error_middleware])
    app[RUNTIME] = runtime
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app


def _add_routes(app: web.Application) -> None:
    """Each HTTP area registers its routes here."""
    from edged.http import admin, deepomatic, ltu_recognition, ltu_reference, pekat, pixlab
    from edged.http._auth import install_guard

    install_guard(app)
    pekat.add_routes(app)
    admin.add_routes(app)
    setup_ltu(app)
    app.add_routes(ltu_reference.routes)  # differences, alignmentMatrix, distance
    app.add_routes(pixlab.routes)  # /imgdiff
    app.add_routes(ltu_recognition.routes)  # classification, objectDetection
    deepomatic.setup(app)  # /v0.7/ recognition specs, versions, networks, tasks
