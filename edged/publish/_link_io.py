"""paho's socket on the asyncio event loop.

paho tells us when it opens or closes its socket and when it has bytes to write
(``on_socket_open`` / ``on_socket_close`` / ``on_socket_register_write`` /
``on_socket_unregister_write``). :class:`SocketBridge` watches that socket with
``loop.add_reader`` / ``add_writer`` and calls ``loop_read`` / ``loop_write``
when it is ready, so every paho callback (CONNACK, PUBACK, incoming PUBLISH)
runs on the event loop. paho makes the socket-open callback from the worker
thread that runs ``connect()``; those calls reach the loop through
``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt


class SocketBridge:
    """Drives one paho client's socket from the event loop (see the module docstring)."""

    def __init__(self, client: mqtt.Client) -> None:
        self._client = client
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._fds: set[int] = set()
        client.on_socket_open = self._paho_socket_open
        client.on_socket_close = self._paho_socket_close
        client.on_socket_register_write = self._paho_register_write
        client.on_socket_unregister_write = self._paho_unregister_write

    def bind(self) -> None:
        """Attach to the running loop (call from it before the first connect)."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    def on_loop(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop: now when called there, else soon."""
        assert self._loop is not None
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def readable(self) -> None:
        """Read what the socket has (and what TLS holds decrypted but unseen)."""
        client = self._client
        client.loop_read()
        # TLS: decrypted bytes may wait inside the SSL object, invisible to the selector.
        sock = client.socket()
        while isinstance(sock, ssl.SSLSocket) and sock.pending():
            client.loop_read()
            sock = client.socket()

    def writable(self) -> None:
        self._client.loop_write()

    # ------------------------------------------------------------------ paho's socket callbacks

    def _paho_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self.on_loop(self._add_reader, sock.fileno())

    def _paho_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self.on_loop(self._remove_fd, sock.fileno())

    def _paho_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self.on_loop(self._add_writer, sock.fileno())

    def _paho_unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self.on_loop(self._remove_writer, sock.fileno())

    def _add_reader(self, fd: int) -> None:
        assert self._loop is not None
        if fd >= 0:
            self._fds.add(fd)
            self._loop.add_reader(fd, self.readable)

    def _add_writer(self, fd: int) -> None:
        assert self._loop is not None
        if fd >= 0 and fd in self._fds:
            self._loop.add_writer(fd, self.writable)

    def _remove_writer(self, fd: int) -> None:
        assert self._loop is not None
        if fd >= 0:
            self._loop.remove_writer(fd)

    def _remove_fd(self, fd: int) -> None:
        assert self._loop is not None
        if fd >= 0:
            self._loop.remove_reader(fd)
            self._loop.remove_writer(fd)
            self._fds.discard(fd)
