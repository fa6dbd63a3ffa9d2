"""API key protection shared by every HTTP area.

When ``http.api_key`` (or ``http.api_key_file``) is set, protected endpoints want the
key in the query (``api_key=``, as PEKAT clients send it), in the header
``X-API-Key``, or as ``Authorization: Bearer <key>``. The comparison takes constant
time; a missing or wrong key is 401 with a JSON reason.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from edged.core.errors import AuthError, ConfigError
from edged.http._errors import UnavailableError
from edged.http._keys import RUNTIME
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

    @property
    def enabled(self) -> bool:
        return self.current_key() is not None

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


def _presented_key(request: web.Request) -> str | None:
    keys = request.query.getall("api_key", [])
    if keys:
        return keys[-1]
    header = request.headers.get("X-API-Key")
    if header is not None:
        return header
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return None


API_KEY_GUARD = web.AppKey("edged.api_key_guard", ApiKeyGuard)


def install_guard(app: web.Application) -> ApiKeyGuard:
    """Create the app's guard; a bad ``api_key_file`` fails here, at startup."""
    if API_KEY_GUARD not in app:
        guard = ApiKeyGuard(app[RUNTIME])
        guard.current_key()
        app[API_KEY_GUARD] = guard
    return app[API_KEY_GUARD]


def check_api_key(request: web.Request) -> None:
    """Raise AuthError unless the request may use a protected endpoint."""
    guard = request.app.get(API_KEY_GUARD)
    if guard is None:  # routes added without install_guard: fail closed, never open
        guard = ApiKeyGuard(request.app[RUNTIME])
    guard.check(request)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def protected(handler: Handler) -> Handler:
    """Wrap ``handler`` so it answers 401 unless the request carries the API key."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        check_api_key(request)
        return await handler(request)

    return wrapper
