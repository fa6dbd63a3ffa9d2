"""Images by URL: the ``http.url_fetch_hosts`` allow-list, against a local server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import cv2
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import ValidationError

from edged.config import HttpConfig, Settings
from edged.http.app import create_app
from edged.runtime.shared import Runtime

URL = "/v2/services/image/colorPalette"
ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


def _png() -> bytes:
    img = np.zeros((40, 40), np.uint8)
    img[:, 20:] = 255
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


@pytest.fixture
async def images(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> TestServer:
    png = _png()

    async def part(_: web.Request) -> web.Response:
        return web.Response(body=png, content_type="image/png")

    async def big(_: web.Request) -> web.StreamResponse:
        return web.Response(body=b"\x89PNG" + b"\x00" * 300_000, content_type="image/png")

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.Response(body=png, content_type="image/png")

    async def to_part(_: web.Request) -> web.Response:
        raise web.HTTPFound("/part.png")

    async def to_metadata(_: web.Request) -> web.Response:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data")

    app = web.Application()
    app.router.add_get("/part.png", part)
    app.router.add_get("/big.png", big)
    app.router.add_get("/slow.png", slow)
    app.router.add_get("/to-part", to_part)
    app.router.add_get("/to-metadata", to_metadata)
    return await aiohttp_server(app)


@pytest.fixture
async def make_client(aiohttp_client: ClientFactory) -> AsyncIterator[ClientFactory]:
    runtimes: list[Runtime] = []

    async def make(*hosts: str, **http: Any) -> TestClient[Any, Any]:
        rt = Runtime.build(
            Settings(
                http={"url_fetch_hosts": list(hosts), **http},
                recipes={"q": {"checks": {"quality": {}}}},
            )
        )
        runtimes.append(rt)
        return await aiohttp_client(create_app(rt))

    yield make
    for rt in runtimes:
        rt.pool.shutdown()


async def _post(client: TestClient[Any, Any], url: str) -> tuple[int, str]:
    resp = await client.post(URL, data={"image": url})
    body = await resp.json()
    return resp.status, str(body["details"]["message"])


@pytest.mark.parametrize(
    ("hosts", "host"),
    [
        (("127.0.0.1",), "127.0.0.1"),  # an address
        (("127.0.0.0/8",), "127.0.0.1"),  # a network
        (("localhost",), "localhost"),  # a name
        (("local*",), "localhost"),  # a pattern
        (("127.0.0.0/8",), "localhost"),  # a name resolving into a listed network
    ],
)
async def test_allowed_hosts_are_fetched(
    make_client: ClientFactory, images: TestServer, hosts: tuple[str, ...], host: str
) -> None:
    client = await make_client(*hosts)
    status, message = await _post(client, f"http://{host}:{images.port}/part.png")
    assert status == 200, message


@pytest.mark.parametrize(
    ("hosts", "host", "shown"),
    [
        ((), "127.0.0.1", "which is not listed"),
        (("10.0.0.0/8",), "127.0.0.1", "which is not listed"),
        (("*.example.com",), "localhost", "which is not listed"),
        (("10.0.0.0/8",), "localhost", "none of them allowed by http.url_fetch_hosts"),
    ],
)
async def test_other_hosts_are_400_naming_the_setting(
    make_client: ClientFactory,
    images: TestServer,
    hosts: tuple[str, ...],
    host: str,
    shown: str,
) -> None:
    client = await make_client(*hosts)
    status, message = await _post(client, f"http://{host}:{images.port}/part.png")
    assert status == 400
    assert "http.url_fetch_hosts" in message
    assert shown in message


async def test_link_local_and_metadata_are_never_fetched(make_client: ClientFactory) -> None:
    client = await make_client("*", "169.254.0.0/16", "fe80::/10")
    for url in ("http://169.254.169.254/latest/meta-data", "http://[fe80::1]/x.png"):
        status, message = await _post(client, url)
        assert status == 400
        assert "link-local/metadata address, never fetched" in message


async def test_redirects_only_to_allowed_hosts(
    make_client: ClientFactory, images: TestServer
) -> None:
    client = await make_client("127.0.0.1", "169.254.0.0/16")
    status, message = await _post(client, f"http://127.0.0.1:{images.port}/to-part")
    assert status == 200, message
    status, message = await _post(client, f"http://127.0.0.1:{images.port}/to-metadata")
    assert status == 400
    assert "never fetched" in message


async def test_size_cap_and_timeout(make_client: ClientFactory, images: TestServer) -> None:
    client = await make_client("127.0.0.1", max_body_bytes=100_000, url_fetch_timeout_s=0.3)
    status, message = await _post(client, f"http://127.0.0.1:{images.port}/big.png")
    assert status == 413
    assert "expected at most 100000 bytes (http.max_body_bytes)" in message
    status, message = await _post(client, f"http://127.0.0.1:{images.port}/slow.png")
    assert status == 400
    assert "http.url_fetch_timeout_s = 0.3 s" in message


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "http://example.com", "", "a b"])
def test_bad_allow_list_entries_are_config_errors(entry: str) -> None:
    with pytest.raises(ValidationError, match="expected a host name, a pattern"):
        HttpConfig(url_fetch_hosts=[entry])
