"""API key protection: one middleware in front of every HTTP area.

When ``http.api_key`` (or ``http.api_key_file``) is set, every route except the
public ones (:data:`PUBLIC_PATHS`) wants the key in the query (``api_key=``, as
PEKAT clients send it), in the header ``X-API-Key``, or as ``Authorization: Bearer
<key>``; on PixLab's ``/imgdiff`` also as its document says, ``key=`` in the query or
the ``WWW-Authenticate`` header. The comparison takes constant time; a missing or
wrong key is 401, in the error shape of the route's API family. Areas do not check
the key themselves.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from edged.core.errors import AuthError, ConfigError
from edged.http._errors import UnavailableError
from edged.http._families import route_path
from edged.runtime.shared import Runtime


class ApiKeyGuard:
    """Checks requests against the key of the *running* settings.

    The key is read again whenever ``runtime.settings`` carries another
    ``api_key`` / ``api_key_file`` (a SIGHUP reload applies them live). A key file
    that cannot be read then fails closed: 503 until it is fixed, never open.
    """

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._source: tuple[object, object] | None = None
        self._key: bytes | None = None

    def current_key(self) -> bytes | None:
        """The configured key (None: no key configured). Raises ConfigError when unreadable."""
        http = self._runtime.settings.http
        source = (http.api_key, http.api_key_file)
        if source != self._source:
            key = self._runtime.settings.http_api_key()
            self._key = key.encode("utf-8") if key else None
            self._source = source
        return self._key

    def check(self, request: web.Request) -> None:
        """Raise AuthError unless the request carries the configured key."""
        try:
            key = self.current_key()
        except ConfigError as exc:
            msg = f"api key: expected a readable key, got an error ({exc})"
            raise UnavailableError(msg) from exc
        if key is None:
            return
        given = _presented_key(request)
        if given is None:
            msg = (
                "api key: expected the configured key in the query (api_key=...), "
                "the X-API-Key header or Authorization: Bearer, got none"
            )
            raise AuthError(msg)
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), key):
            msg = "api key: expected the configured key, got a different one"
            raise AuthError(msg)


PIXLAB_KEY_PATHS = frozenset({"/imgdiff"})
"""Where PixLab's own key sources count too (``key=``, ``WWW-Authenticate``)."""


def _presented_key(request: web.Request) -> str | None:
    keys = request.query.getall("api_key", [])
    if keys:
        return keys[-1]
    if route_path(request) in PIXLAB_KEY_PATHS:
        keys = request.query.getall("key", [])
        if keys:
            return keys[-1]
        www = request.headers.get("WWW-Authenticate", "").split()
        if www:  # the bare key, or "<scheme> <key>"
            return www[-1]
    header = request.headers.get("X-API-Key")
    if header is not None:
        return header
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return None


PUBLIC_PATHS = frozenset(
    {
        "/healthz",
        "/readyz",
        "/metrics",
        "/ping",
        "/version",
        "/api/v1/openapi.json",
        "/imgdiff/results/{name}",
        # The operator web page and its static files (edged.http.ui): the page holds no
        # data; everything it shows comes from the admin API, which wants the key.
        "/",
        "/ui/{name}",
        "/ui/swagger/{name}",
    }
)
"""The routes (templates) that answer without the API key. Every other route, and every
path that matches none, wants the key when one is configured. ``/imgdiff/results/{name}``
serves PixLab's result links, named by 128 random bits, as PixLab's storage links
need no key."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def auth_middleware(guard: ApiKeyGuard) -> Middleware:
    """The app's one API key check: every request outside :data:`PUBLIC_PATHS`.

    Public is decided by the matched route's template, or the raw path when no route
    matches (so ``POST /healthz`` is a 405, an unknown path without the key a 401).
    """

    @web.middleware
    async def require_key(request: web.Request, handler: Handler) -> web.StreamResponse:
        if route_path(request) not in PUBLIC_PATHS:
            guard.check(request)
        return await handler(request)

    return require_key


def auth_for(runtime: Runtime) -> Middleware:
    """The auth middleware of an app serving ``runtime``; a bad ``api_key_file`` fails
    here, at startup."""
    guard = ApiKeyGuard(runtime)
    guard.current_key()
    return auth_middleware(guard)
