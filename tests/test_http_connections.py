"""Issue 20, item 5 (connections): raw sockets against the daemon's real HTTP server.

Idle sockets and slow clients must not hold connections for an hour (aiohttp's
default), and a flood of connections must not take every file descriptor.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edged.config import Settings
from edged.daemon import Daemon


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    settings = Settings(
        recipes={"r1": {}},
        mqtt={"enabled": False},
        http={"port": 0, "idle_timeout_s": 1.0, "max_connections": 4},
        state_dir=tmp_path / "state",
        references_dir=tmp_path / "refs",
    )
    d = Daemon(settings)
    await d.start()
    yield d
    await d.stop()


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.settimeout(5)
    return s


def _closed_within(s: socket.socket, timeout_s: float, trickle: bytes = b"") -> float | None:
    """Seconds until the server closed ``s`` (sending ``trickle`` a byte every 0.2 s
    meanwhile), or None if it stayed open for ``timeout_s``."""
    t0 = time.monotonic()
    s.settimeout(0.2)
    i = 0
    while time.monotonic() - t0 < timeout_s:
        if i < len(trickle):
            try:
                s.sendall(trickle[i : i + 1])
            except OSError:
                return time.monotonic() - t0
            i += 1
        try:
            data = s.recv(4096)
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - t0
        if data == b"":
            return time.monotonic() - t0
    return None


def _get(port: int, path: str) -> bytes:
    with _connect(port) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


async def test_idle_connection_is_closed_after_idle_timeout(daemon: Daemon) -> None:
    assert daemon.http_port is not None
    s = await asyncio.to_thread(_connect, daemon.http_port)
    with s:
        closed = await asyncio.to_thread(_closed_within, s, 6.0)
    assert closed is not None
    assert 0.5 <= closed <= 3.0


async def test_slowloris_headers_are_cut_off(daemon: Daemon) -> None:
    """One header byte every 0.2 s: the request never completes within the idle
    timeout, so the connection is closed (not kept for an hour)."""
    assert daemon.http_port is not None
    s = await asyncio.to_thread(_connect, daemon.http_port)
    slow = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200
    with s:
        closed = await asyncio.to_thread(_closed_within, s, 6.0, slow)
    assert closed is not None
    assert closed <= 3.0


async def test_connections_beyond_the_cap_get_503_and_healthz_comes_back(
    daemon: Daemon,
) -> None:
    assert daemon.http_port is not None
    port = daemon.http_port
    held = [await asyncio.to_thread(_connect, port) for _ in range(4)]
    try:
        await asyncio.sleep(0.1)
        refused = await asyncio.to_thread(_get, port, "/healthz")
    finally:
        for s in held:
            s.close()
    assert refused.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"Retry-After: 1\r\n" in refused
    assert refused.endswith(b'"status": 503}')
    await asyncio.sleep(0.2)  # the server sees the closes
    ok = await asyncio.to_thread(_get, port, "/healthz")
    assert ok.startswith(b"HTTP/1.1 200 OK\r\n")
    sample = daemon.runtime.metrics.registry.get_sample_value(
        "edged_http_connections_refused_total"
    )
    assert sample == 1.0


async def test_keep_alive_requests_still_work_within_the_timeout(daemon: Daemon) -> None:
    assert daemon.http_port is not None
    s = await asyncio.to_thread(_connect, daemon.http_port)

    def two_requests() -> list[bytes]:
        out = []
        for _ in range(2):
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            out.append(s.recv(65536))
            time.sleep(0.5)  # idle, but less than the timeout
        return out

    with s:
        first, second = await asyncio.to_thread(two_requests)
    assert first.startswith(b"HTTP/1.1 200 OK")
    assert second.startswith(b"HTTP/1.1 200 OK")


async def test_trickled_bodies_hold_no_analysis_slot(tmp_path: Path) -> None:
    """Issue 20: four clients sending one body byte every 2 s held every analysis slot
    (all other requests 429). Bodies are received before a slot is taken."""
    settings = Settings(
        recipes={"r1": {}},
        mqtt={"enabled": False},
        http={"port": 0, "max_concurrent": 1},
        state_dir=tmp_path / "state",
        references_dir=tmp_path / "refs",
    )
    d = Daemon(settings)
    await d.start()
    try:
        assert d.http_port is not None
        port = d.http_port
        head = (
            b"POST /analyze_raw_image?width=8&height=8 HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Length: 64\r\n\r\n"
        )
        slow = [await asyncio.to_thread(_connect, port) for _ in range(4)]
        for s in slow:
            s.sendall(head + b"\0")
        await asyncio.sleep(0.3)

        def analyze() -> bytes:
            with _connect(port) as s:
                s.sendall(head.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n") + bytes(64))
                out = b""
                while chunk := s.recv(65536):
                    out += chunk
            return out

        answer = await asyncio.to_thread(analyze)
        for s in slow:
            s.close()
    finally:
        await d.stop()
    assert answer.startswith(b"HTTP/1.1 200 OK"), answer[:300]
