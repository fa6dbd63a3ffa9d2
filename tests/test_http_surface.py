"""The HTTP surface as a whole: every route behind the API key unless allow-listed, and
every error — 401, 404, 405, 413, a bug — in the shape of the API it belongs to.

The route walk reads ``app.router.routes()`` of the daemon's fully built app, so a
route added later is walked too: it cannot be left open.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from _http_helpers import MemoryStore, make_runtime
from aiohttp import web
from aiohttp.test_utils import TestClient

from edged._version import __version__
from edged.core.errors import InputError
from edged.http import RUNTIME, create_app
from edged.http._families import ApiFamily, HttpError, JsonBody, register_family
from edged.http.deepomatic import DEEPOMATIC_FAMILY
from edged.runtime.shared import Runtime

KEY = "s3cret"
PUBLIC = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/ping",
    "/version",
    "/api/v1/openapi.json",
    "/imgdiff/results/{name}",  # PixLab result links: 128 random bits, no key (as PixLab)
    *("/", "/ui/{name}", "/ui/swagger/{name}"),  # the web page (its data is not public)
}
"""The allow-list, written out here on purpose: changing it must change this test."""

ClientFactory = Callable[..., Any]


def _runtime(**http: Any) -> Runtime:
    rt = make_runtime(references=MemoryStore(), api_key=KEY, **http)
    rt.health.set("http", True)  # /readyz answers 200
    return rt


@pytest.fixture
async def make_client(aiohttp_client: ClientFactory) -> AsyncIterator[Callable[..., Any]]:
    runtimes: list[Runtime] = []

    async def make(
        extra: Callable[[web.Application], None] | None = None, **http: Any
    ) -> TestClient[Any, Any]:
        rt = _runtime(**http)
        runtimes.append(rt)
        app = create_app(rt)
        if extra is not None:
            extra(app)  # a new area, registered like every other one
        return await aiohttp_client(app)

    yield make
    for rt in runtimes:
        rt.pool.shutdown()


@pytest.fixture
async def client(make_client: Callable[..., Any]) -> TestClient[Any, Any]:
    return await make_client()


# --------------------------------------------------------------------------- shapes


def _assert_shape(path: str, body: Any, status: int) -> str:
    """The error body is in the shape of ``path``'s API; returns the reason it gives."""
    if path.startswith("/v2/services/image/"):  # LTU envelope
        assert set(body) == {"result", "details", "code", "errors", "version"}, body
        assert body["result"] is None
        assert body["code"] == status
        assert body["errors"] == [body["details"]["message"]]
        assert body["version"] == __version__
        details = body["details"]
        assert set(details) == {"name", "score", "message", "info"}
        assert details["name"] == path.rsplit("/", 1)[-1]
        assert details["info"]["status"] == status
        return str(details["message"])
    if path.startswith("/v0.7/"):  # Deepomatic: {"error": reason}
        assert list(body) == ["error"], (path, body)
        return str(body["error"])
    if path == "/imgdiff":  # PixLab: same keys as edged's, status first as PixLab sends it
        assert list(body) == ["status", "error"], body
        assert body["status"] == status
        return str(body["error"])
    assert list(body) == ["error", "status"], (path, body)  # PEKAT, admin, the rest
    assert body["status"] == status
    return str(body["error"])


def _concrete(template: str) -> str:
    """A path for a route template: every ``{param}`` becomes a value."""
    values = {"camera": "http", "recipe": "spots", "version": "v1", "id": "x"}
    values["name"] = "swagger-ui.css" if template.startswith("/ui/swagger/") else "app.js"
    return re.sub(r"\{(\w+)[^}]*\}", lambda m: values.get(m.group(1), "x"), template)


def _walk(app: web.Application) -> list[tuple[str, str, str]]:
    """(method, template, path) of every route of ``app``."""
    routes = []
    for route in app.router.routes():
        assert route.resource is not None
        template = route.resource.canonical
        routes.append((route.method, template, _concrete(template)))
    return routes


# --------------------------------------------------------------------------- route walk


async def test_every_route_outside_the_allow_list_wants_the_key(
    client: TestClient[Any, Any],
) -> None:
    routes = _walk(client.app)
    assert {t for _, t, _ in routes} >= PUBLIC  # every public route is really served
    private = [r for r in routes if r[1] not in PUBLIC]
    assert len(private) >= 25  # PEKAT, LTU, PixLab and admin routes are all walked
    for method, template, path in private:
        resp = await client.request(method, path, data=b"")
        assert resp.status == 401, (method, template, resp.status)
        if method != "HEAD":
            _assert_shape(path, await resp.json(), 401)
        for auth in ({"X-API-Key": KEY}, {"Authorization": f"Bearer {KEY}"}):
            resp = await client.request(method, path, data=b"", headers=auth)
            assert resp.status != 401, (method, template, await resp.text())
            assert resp.status < 500, (method, template, resp.status, await resp.text())
            if resp.status >= 400 and method != "HEAD":
                _assert_shape(path, await resp.json(), resp.status)
        resp = await client.request(method, path, data=b"", params={"api_key": KEY})
        assert resp.status not in (401, 500, 503), (method, template, resp.status)


async def test_every_allow_listed_route_answers_without_the_key(
    client: TestClient[Any, Any],
) -> None:
    for method, template, path in _walk(client.app):
        if template in PUBLIC:
            resp = await client.request(method, path)
            # a result link that was never made is a 404, not a 401
            expected = 404 if template.startswith("/imgdiff/results/") else 200
            assert resp.status == expected, (method, template, resp.status)


async def test_a_new_area_cannot_be_left_open(make_client: Callable[..., Any]) -> None:
    async def report(request: web.Request) -> web.Response:
        return web.json_response({"lines": 3})

    client = await make_client(lambda app: app.router.add_get("/api/v2/report", report))
    assert (await client.get("/api/v2/report")).status == 401
    resp = await client.get("/api/v2/report", headers={"X-API-Key": KEY})
    assert resp.status == 200
    assert await resp.json() == {"lines": 3}


async def test_unknown_paths_want_the_key_before_they_say_404(
    client: TestClient[Any, Any],
) -> None:
    resp = await client.get("/nothing/here")
    assert resp.status == 401
    assert "api key" in _assert_shape("/nothing/here", await resp.json(), 401)
    resp = await client.get("/nothing/here", headers={"X-API-Key": KEY})
    assert resp.status == 404
    assert _assert_shape("/nothing/here", await resp.json(), 404) == "Not Found"


async def test_an_unreadable_key_file_fails_closed_in_every_family(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    rt = client.app[RUNTIME]
    http = rt.settings.http.model_copy(update={"api_key": None, "api_key_file": tmp_path / "no"})
    rt.settings = rt.settings.model_copy(update={"http": http})
    for path in ("/analyze_image", "/v2/services/image/colorPalette", "/imgdiff"):
        resp = await client.post(path, data=b"", headers={"X-API-Key": KEY})
        assert resp.status == 503
        assert "expected a readable key" in _assert_shape(path, await resp.json(), 503)
    assert (await client.get("/healthz")).status == 200  # public routes stay up


# --------------------------------------------------------------------------- 404, 405, 413

AUTH = {"X-API-Key": KEY}


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/analyze_image", 405, "POST"),  # PEKAT
        ("POST", "/analyze_nothing", 404, None),
        ("PUT", "/v2/services/image/colorPalette", 405, "GET,POST"),  # LTU: GET and POST
        ("DELETE", "/v2/services/image/differences", 405, "GET,POST"),
        ("POST", "/v2/services/image/noSuchService", 404, None),
        ("PUT", "/imgdiff", 405, "GET,POST"),  # PixLab
        ("DELETE", "/api/v1/cameras", 405, "GET,HEAD"),  # admin
        ("GET", "/api/v1/nothing", 404, None),
        ("POST", "/healthz", 405, "GET,HEAD"),  # public path, wrong method: no key needed
    ],
)
async def test_404_and_405_take_the_shape_of_their_api(
    client: TestClient[Any, Any], method: str, path: str, status: int, allow: str | None
) -> None:
    headers = {} if path == "/healthz" else AUTH
    resp = await client.request(method, path, headers=headers)
    assert resp.status == status
    reason = _assert_shape(path, await resp.json(), status)
    assert reason == ("Not Found" if status == 404 else "Method Not Allowed")
    if allow is not None:
        assert sorted(resp.headers["Allow"].split(",")) == sorted(allow.split(","))


@pytest.mark.parametrize(
    "path",
    [
        "/analyze_image",
        "/v2/services/image/colorPalette",
        "/imgdiff",
        "/api/v1/references/spots/http",
    ],
)
async def test_a_body_over_the_limit_is_413_in_the_shape_of_its_api(
    make_client: Callable[..., Any], path: str
) -> None:
    client = await make_client(max_body_bytes=1024)
    headers = {**AUTH, "Content-Type": "image/png"}
    resp = await client.post(path, data=bytes(4096), headers=headers)
    assert resp.status == 413, await resp.text()
    assert "1024" in _assert_shape(path, await resp.json(), 413)


# --------------------------------------------------------------------------- new families


def _other_error(request: web.Request, error: HttpError) -> JsonBody:
    return {"error": error.message}


DEEPOMATIC = DEEPOMATIC_FAMILY  # the real area's family (edged.http.deepomatic)


def _deepomatic_area(app: web.Application) -> None:
    """A new area as the next one will be written: routes + its family, in setup(app)."""

    async def recognize(request: web.Request) -> web.Response:
        body = await request.read()
        if not body:
            msg = "image: expected a JPEG or PNG body, got nothing"
            raise InputError(msg)
        return web.json_response({"outputs": []})

    register_family(app, DEEPOMATIC)
    app.router.add_post("/v0.7/recognition/networks/{network}/inference", recognize)


async def test_a_registered_family_renders_its_errors_in_its_shape(
    make_client: Callable[..., Any],
) -> None:
    client = await make_client(_deepomatic_area)
    url = "/v0.7/recognition/networks/1/inference"
    resp = await client.post(url, data=b"x")
    assert resp.status == 401
    body = await resp.json()
    assert set(body) == {"error"}
    assert "api key" in body["error"]
    resp = await client.post(url, data=b"", headers=AUTH)
    assert resp.status == 400
    assert await resp.json() == {"error": "image: expected a JPEG or PNG body, got nothing"}
    resp = await client.get(url, headers=AUTH)
    assert resp.status == 405
    assert await resp.json() == {"error": "Method Not Allowed"}
    resp = await client.get("/v0.7/nothing", headers=AUTH)
    assert resp.status == 404
    assert await resp.json() == {"error": "Not Found"}
    resp = await client.post(url, data=b"x", headers=AUTH)
    assert resp.status == 200
    assert await resp.json() == {"outputs": []}
    # the families already there keep theirs
    resp = await client.get("/api/v1/nothing", headers=AUTH)
    assert await resp.json() == {"error": "Not Found", "status": 404}


def test_two_families_cannot_own_one_prefix() -> None:
    app = web.Application()
    register_family(app, DEEPOMATIC)
    register_family(app, DEEPOMATIC)  # the same family again (two areas share it): fine
    other = ApiFamily("other", _other_error, prefixes=("/v0.7/",))
    with pytest.raises(ValueError, match=r"already owned by 'Deepomatic'"):
        register_family(app, other)


async def test_only_a_bug_is_a_500_logged_once_with_its_route(
    make_client: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(request: web.Request) -> web.Response:
        msg = "a bug"
        raise RuntimeError(msg)

    def area(app: web.Application) -> None:
        _deepomatic_area(app)
        app.router.add_get("/v0.7/broken/{id}", broken)

    client = await make_client(area)
    with caplog.at_level(logging.ERROR, logger="edged.http"):
        resp = await client.get("/v0.7/broken/7", headers=AUTH)
    assert resp.status == 500
    assert await resp.json() == {"error": "internal error; see the edged log"}
    logged = [r for r in caplog.records if r.name == "edged.http"]
    assert len(logged) == 1
    assert "GET /v0.7/broken/{id}" in logged[0].getMessage()
    metrics = client.app[RUNTIME].metrics.render()
    assert b'route="/v0.7/broken/{id}",status="500"' in metrics
