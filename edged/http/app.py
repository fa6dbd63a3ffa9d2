"""The aiohttp application factory: ``create_app(runtime)``.

The app owns the concerns every area shares, each in one place:

- the API key: one middleware with an allow-list of public routes
  (:mod:`edged.http._auth`);
- compressed request bodies: refused with 415, never decompressed
  (:mod:`edged.http._encoding`);
- errors: one middleware rendering every error — 401, 404, 405, 413, 429 included —
  in the shape of the request's API family (:mod:`edged.http._error_middleware`,
  :mod:`edged.http._families`), and request metrics;
- the analysis gate that every analysing endpoint shares (:mod:`edged.http._gate`);
- resources with a lifetime, in ``app.cleanup_ctx`` (the URL-input client session).

Each area adds its routes, its state and its API family in its own
``setup(app)``; :data:`AREAS` lists them. A new area (say Deepomatic v0.7) is one
module::

    DEEPOMATIC = ApiFamily("Deepomatic", lambda request, error: {"error": error.message},
                           prefixes=("/v0.7/",))

    def setup(app: web.Application) -> None:
        register_family(app, DEEPOMATIC)   # its 4xx/5xx, 404 and 405 take this shape
        app.router.add_post("/v0.7/...", handler)  # handlers raise EdgedError subclasses

plus one line in :data:`AREAS`. Its routes want the API key unless listed in
:data:`edged.http._auth.PUBLIC_PATHS`; it neither checks the key nor catches errors.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from edged.http import (
    _refs,
    admin,
    deepomatic,
    health,
    ltu,
    ltu_recognition,
    ltu_reference,
    openapi,
    pekat,
    pixlab,
    station,
    ui,
)
from edged.http._auth import auth_for
from edged.http._encoding import HANDLER_ARGS, content_encoding_middleware
from edged.http._error_middleware import error_middleware
from edged.http._families import FAMILIES, FamilyTable
from edged.http._gate import install_gate
from edged.http._input import fetch_session
from edged.http._keys import RUNTIME
from edged.runtime.shared import Runtime

Setup = Callable[[web.Application], None]

AREAS: tuple[Setup, ...] = (
    health.setup,
    pekat.setup,  # /analyze_*, /ping, /version
    ltu.setup,  # /v2/services/image/<check services>
    ltu_reference.setup,  # /v2/services/image/{differences,alignmentMatrix,distance}
    pixlab.setup,  # /imgdiff
    ltu_recognition.setup,  # /v2/services/image/{classification,objectDetection}
    deepomatic.setup,  # /v0.7/: recognition specs, versions, networks, tasks
    openapi.setup,  # /api/v1/openapi.json
    admin.setup,  # /api/v1/cameras, recipes, results
    _refs.setup,  # /api/v1/references
    station.setup,  # /api/v1/failures, /api/v1/health
    ui.setup,  # the operator web page: /, /ui/...
)
"""Every HTTP area of the main app, in registration order."""


def _base_app(runtime: Runtime, *, client_max_size: int = 1024**2) -> web.Application:
    """An app with the runtime, the family table, and the error and auth middlewares."""
    app = web.Application(client_max_size=client_max_size, handler_args=HANDLER_ARGS)
    app[RUNTIME] = runtime
    app[FAMILIES] = FamilyTable()
    app.middlewares.append(error_middleware)  # outermost: renders the auth's 401 too
    app.middlewares.append(auth_for(runtime))
    app.middlewares.append(content_encoding_middleware)  # 415, never a decompressed bomb
    return app


def create_app(runtime: Runtime, *, with_metrics: bool = True) -> web.Application:
    """Build the HTTP application for ``runtime``."""
    http = runtime.settings.http
    app = _base_app(runtime, client_max_size=http.max_body_bytes)
    install_gate(
        app,
        max_concurrent=http.max_concurrent,
        timeout_s=http.request_timeout_s,
        body_timeout_s=http.body_timeout_s,
        queue_depth=http.queue_depth,
        queue_timeout_s=http.queue_timeout_s,
        body_budget_bytes=http.body_budget_bytes,
        max_body_bytes=http.max_body_bytes,
        metrics=runtime.metrics,
    )
    app.cleanup_ctx.append(fetch_session)  # URL inputs' client session, closed with the app
    for setup in AREAS:
        setup(app)
    if with_metrics:
        health.setup_metrics(app)
    return app


def create_metrics_app(runtime: Runtime) -> web.Application:
    """A metrics-only application for a separate ``metrics.port``."""
    app = _base_app(runtime)
    health.setup_metrics(app)
    app.router.add_get("/healthz", health.healthz)
    return app
