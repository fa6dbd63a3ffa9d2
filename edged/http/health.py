"""Health and metrics: ``GET /healthz`` (liveness), ``/readyz`` (readiness), ``/metrics``.

All three are public (no API key; see :data:`edged.http._auth.PUBLIC_PATHS`).
"""

from __future__ import annotations

from aiohttp import web

from edged._version import __version__
from edged.http._keys import RUNTIME
from edged.runtime.metrics import CONTENT_TYPE


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process serves HTTP."""
    return web.json_response({"status": "ok", "version": __version__})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: every component (sources, workers, publisher, HTTP) is up."""
    health = request.app[RUNTIME].health
    body = {"ready": health.ready, "components": health.components}
    return web.json_response(body, status=200 if health.ready else 503)


async def metrics(request: web.Request) -> web.Response:
    """The Prometheus text exposition of the runtime's metrics."""
    runtime = request.app[RUNTIME]
    return web.Response(body=runtime.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


def setup(app: web.Application) -> None:
    """Add ``/healthz`` and ``/readyz``."""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)


def setup_metrics(app: web.Application) -> None:
    """Add ``/metrics`` (on the main app, or on the metrics-only app of ``metrics.port``)."""
    app.router.add_get("/metrics", metrics)
