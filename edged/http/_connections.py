"""Connection limits below HTTP: a cap on open connections, idle and header timeouts.

aiohttp keeps a connection open for an hour by default, whether it is idle or a
client is sending its request headers one byte at a time, and it accepts every
connection: a few hundred idle sockets exhaust the process's file descriptors
(then ``/healthz`` and MQTT reconnects fail with EMFILE).

:class:`LimitedSite` listens like ``aiohttp.web.TCPSite`` but

- answers a connection beyond ``max_connections`` with a fixed
  ``503 Service Unavailable`` + ``Retry-After`` and closes it at once (counted);
- and is meant for a runner made with ``keepalive_timeout=idle_timeout_s``, which
  closes a connection that has no complete request within that time — idle after
  connecting or after a response, or still sending its headers (slowloris).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

_BODY = b'{"error": "connections: expected fewer open connections, got the limit", "status": 503}'
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: application/json\r\n"
    b"Retry-After: 1\r\n"
    b"Connection: close\r\n"
    b"Content-Length: " + str(len(_BODY)).encode() + b"\r\n"
    b"\r\n" + _BODY
)
_LOG_INTERVAL_S = 60.0
_LINGER_S = 1.0


class ConnectionLimit:
    """Counts open connections; refuses beyond ``max_connections``."""

    def __init__(self, max_connections: int, on_refused: Callable[[], None] | None = None) -> None:
        self.max_connections = max_connections
        self.active = 0
        self.refused = 0
        self._on_refused = on_refused
        self._next_log = 0.0
        self._unlogged = 0

    def refuse(self) -> None:
        self.refused += 1
        self._unlogged += 1
        if self._on_refused is not None:
            self._on_refused()
        now = time.monotonic()
        if now >= self._next_log:
            self._next_log = now + _LOG_INTERVAL_S
            log.warning(
                "HTTP: %d connection(s) refused with 503: %d open, the limit "
                "(http.max_connections)",
                self._unlogged,
                self.max_connections,
            )
            self._unlogged = 0


class _Gate(asyncio.Protocol):
    """Wraps aiohttp's protocol for one connection: admitted, or refused at once."""

    def __init__(self, make: Callable[[], Any], limit: ConnectionLimit) -> None:
        self._make = make
        self._limit = limit
        self._inner: Any = None
        self._refused: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._limit.active >= self._limit.max_connections:
            self._limit.refuse()
            assert isinstance(transport, asyncio.Transport)
            # Answer, stop sending, and read what the client sends for a moment:
            # closing with its request unread would reset the connection before
            # the client has read the answer.
            self._refused = transport
            transport.write(_REFUSAL)
            if transport.can_write_eof():
                transport.write_eof()
            asyncio.get_running_loop().call_later(_LINGER_S, transport.abort)
            return
        self._limit.active += 1
        self._inner = self._make()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._inner is not None:
            return bool(self._inner.eof_received())
        if self._refused is not None:
            self._refused.close()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._inner is not None:
            self._limit.active -= 1
            inner, self._inner = self._inner, None
            inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


class LimitedSite(web.TCPSite):
    """``web.TCPSite`` with a cap on open connections (see the module docstring)."""

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, *, limit: ConnectionLimit
    ) -> None:
        super().__init__(runner, host, port)
        self.limit = limit

    async def start(self) -> None:
        self._runner._reg_site(self)
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        limit = self.limit
        self._server = await loop.create_server(
            lambda: _Gate(server, limit), self._host, self._port, backlog=self._backlog
        )
