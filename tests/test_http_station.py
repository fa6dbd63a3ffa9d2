"""The station routes: kept failures, health JSON, reference images, and the web page's files."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from _http_helpers import MemoryStore, make_runtime
from aiohttp.test_utils import TestClient

from edged.core.errors import NotFoundError
from edged.core.result import FrameInfo, RegionModel, Result, new_result_id
from edged.http import create_app
from edged.imaging.png_write import encode_png
from edged.references import ReferenceStore
from edged.runtime.failures import FailureRing
from edged.runtime.shared import Runtime

KEY = "k3y"
AUTH = {"X-API-Key": KEY}
ClientFactory = Callable[..., Any]


def failed(camera: str, seq: int) -> Result:
    return Result(
        id=new_result_id(),
        seq=seq,
        node="n1",
        camera=camera,
        recipe="spots",
        ts=f"2026-01-01T00:00:0{seq}.000Z",
        frame=FrameInfo(width=64, height=48, pixel_format="Mono8", seq=seq, host_ts="t"),
        verdict="fail",
        reasons=["dark_spots.count = 1, limit == 0"],
        regions=[RegionModel(x=10, y=12, width=8, height=6, label="spot", check="dark_spots")],
    )


def jpeg(shade: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((48, 64, 3), shade, np.uint8))
    assert ok
    return buf.tobytes()


@pytest.fixture
async def env(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> AsyncIterator[tuple[TestClient[Any, Any], Runtime, list[Result]]]:
    rt = make_runtime(references=MemoryStore(), api_key=KEY)
    rt.failures = FailureRing(tmp_path / "failures", keep_per_camera=3, max_bytes=10**7)
    results = [failed("cam1", i) for i in range(4)] + [failed("cam2", 0)]
    for i, r in enumerate(results):
        rt.failures.add(r, jpeg(40 * i))
    client = await aiohttp_client(create_app(rt))
    yield client, rt, results
    rt.pool.shutdown()


# --------------------------------------------------------------------------- failures


async def test_failures_are_listed_newest_first_and_bounded(env: Any) -> None:
    client, _rt, results = env
    resp = await client.get("/api/v1/failures", headers=AUTH)
    assert resp.status == 200
    doc = await resp.json()
    assert [(p["camera"], p["seq"]) for p in doc["failures"]] == [
        ("cam2", 0),
        ("cam1", 3),
        ("cam1", 2),
        ("cam1", 1),
    ]  # fmt: skip  (cam1 #0 went: 3 per camera)
    assert doc["keep_per_camera"] == 3
    assert doc["enabled"] is True
    first = doc["failures"][1]
    assert first["id"] == results[3].id
    assert first["reasons"] == ["dark_spots.count = 1, limit == 0"]
    assert first["regions"] == 1
    resp = await client.get("/api/v1/failures", params={"camera": "cam1", "n": "2"}, headers=AUTH)
    assert [p["seq"] for p in (await resp.json())["failures"]] == [3, 2]


async def test_a_failed_part_serves_its_result_and_image(env: Any) -> None:
    client, _rt, results = env
    part = results[3]
    resp = await client.get(f"/api/v1/failures/cam1/{part.id}", headers=AUTH)
    assert resp.status == 200
    assert await resp.json() == part.to_json_dict()
    resp = await client.get(f"/api/v1/failures/cam1/{part.id}/image.jpg", headers=AUTH)
    assert resp.status == 200
    assert resp.content_type == "image/jpeg"
    assert await resp.read() == jpeg(120)


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/api/v1/failures?n=0", 400, "n: expected an integer in [1, 500]"),
        ("/api/v1/failures?n=many", 400, "got 'many'"),
        ("/api/v1/failures?camera=nope", 404, "camera: expected one of"),
        ("/api/v1/failures/cam1/nope", 404, "expected the id of a kept part"),
        ("/api/v1/failures/cam1/..%2F..%2Fetc%2Fpasswd/image.jpg", 404, "kept part"),
        ("/api/v1/failures/nope/x/image.jpg", 404, "camera: expected one of"),
    ],
)
async def test_bad_failure_requests_say_what_was_expected(
    env: Any, path: str, status: int, says: str
) -> None:
    client = env[0]
    resp = await client.get(path, headers=AUTH)
    assert resp.status == status
    body = await resp.json()
    assert body["status"] == status
    assert says in body["error"]


async def test_the_oldest_kept_part_is_gone(env: Any) -> None:
    client, _rt, results = env
    resp = await client.get(f"/api/v1/failures/cam1/{results[0].id}", headers=AUTH)
    assert resp.status == 404


async def test_without_a_ring_nothing_is_kept(aiohttp_client: ClientFactory) -> None:
    rt = make_runtime()
    client = await aiohttp_client(create_app(rt))
    doc = await (await client.get("/api/v1/failures")).json()
    assert doc["failures"] == []
    assert doc["enabled"] is False
    resp = await client.get(f"/api/v1/failures/cam1/{new_result_id()}")
    assert resp.status == 404
    assert "failures.enabled is false" in (await resp.json())["error"]
    rt.pool.shutdown()


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/failures",
        "/api/v1/failures/cam1/x",
        "/api/v1/failures/cam1/x/image.jpg",
        "/api/v1/health",
        "/api/v1/references/spots/http/v1/image.jpg",
    ],
)
async def test_station_routes_want_the_key(env: Any, path: str) -> None:
    client = env[0]
    resp = await client.get(path)
    assert resp.status == 401
    resp = await client.get(path, headers={"X-API-Key": "wrong"})
    assert resp.status == 401


# --------------------------------------------------------------------------- health


async def test_health_reports_the_figures_prometheus_sees(env: Any) -> None:
    client, rt, _ = env
    m = rt.metrics
    m.mqtt_connected.set(1)
    m.mqtt_changed_time.set(1_767_225_600.25)  # 2026-01-01T00:00:00.250Z
    m.outbox_depth.set(17)
    m.outbox_oldest_age.set(2.5)
    m.dead_lettered.inc(3)
    m.published.inc(40)
    m.workers_total.set(2)
    m.workers_busy.set(1)
    m.watchdog_healthy.set(0)
    m.watchdog_stalled_seconds.set(31.5)
    rt.health.set("http", True)
    doc = await (await client.get("/api/v1/health", headers=AUTH)).json()
    assert doc["mqtt"] == {
        "enabled": True,
        "broker": "127.0.0.1:1883",
        "connected": True,
        "since": "2026-01-01T00:00:00.250Z",
        "outbox": 17,
        "outbox_oldest_age_s": 2.5,
        "dead_letters": 3,
        "published": 40,
        "retries": 0,
    }
    assert doc["workers"] == {"total": 2, "busy": 1, "queues": {}}
    assert doc["watchdog"]["healthy"] is False
    assert doc["watchdog"]["stalled_s"] == 31.5
    assert doc["ready"] is True
    assert doc["failures"]["kept"] == 4
    metrics = (await (await client.get("/metrics")).read()).decode()
    assert "edged_outbox_messages 17.0" in metrics
    assert "edged_mqtt_dead_letter_total 3.0" in metrics


# --------------------------------------------------------------------------- references


async def test_reference_images_come_as_thumbnails(env: Any) -> None:
    client = env[0]
    image = np.zeros((200, 400, 3), np.uint8)
    image[:, 200:] = 255
    resp = await client.post("/api/v1/references/spots/http", data=encode_png(image), headers=AUTH)
    assert resp.status == 201
    version = (await resp.json())["version"]
    resp = await client.get(f"/api/v1/references/spots/http/{version}/image.jpg", headers=AUTH)
    assert resp.status == 200
    thumb = cv2.imdecode(np.frombuffer(await resp.read(), np.uint8), cv2.IMREAD_COLOR)
    assert thumb.shape == (160, 320, 3)  # 320 wide by default, aspect kept
    assert thumb[:, :150].mean() < 10
    assert thumb[:, 170:].mean() > 245
    resp = await client.get(
        f"/api/v1/references/spots/http/{version}/image.jpg", params={"width": "1000"}, headers=AUTH
    )
    full = cv2.imdecode(np.frombuffer(await resp.read(), np.uint8), cv2.IMREAD_COLOR)
    assert full.shape == (200, 400, 3)  # never scaled up
    for params, status in (({"width": "8"}, 400), ({"index": "5"}, 404), ({"index": "-1"}, 400)):
        resp = await client.get(
            f"/api/v1/references/spots/http/{version}/image.jpg", params=params, headers=AUTH
        )
        assert resp.status == status, params
    resp = await client.get("/api/v1/references/spots/http/vx/image.jpg", headers=AUTH)
    assert resp.status == 400
    assert "version: expected a number" in (await resp.json())["error"]
    resp = await client.get("/api/v1/references/spots/http/v9/image.jpg", headers=AUTH)
    assert resp.status == 404


def test_the_store_reads_one_image_of_a_version(tmp_path: Path) -> None:
    store = ReferenceStore(tmp_path)
    base = np.random.default_rng(3).integers(0, 256, (64, 64), dtype=np.uint8)
    second = base.copy()
    second[0, 0] = 255 - base[0, 0]
    version = store.teach("r", "c", [base, second])
    assert version == "v1"
    assert np.array_equal(store.image("r", "c", 1, 1), second)
    assert np.array_equal(store.image("r", "c", 1), base)
    with pytest.raises(NotFoundError, match=r"image index: expected 0\.\.1, got 2"):
        store.image("r", "c", 1, 2)


# --------------------------------------------------------------------------- the page


async def test_the_page_and_its_files_are_public(env: Any) -> None:
    client = env[0]
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    page = await resp.text()
    assert '<script src="/ui/app.js"' in page
    for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css")):
        resp = await client.get(f"/ui/{name}")
        assert resp.status == 200, name
        assert resp.content_type == kind
    resp = await client.get("/ui/api.html")
    assert "/ui/swagger/swagger-ui-bundle.js" in await resp.text()
    resp = await client.get("/ui/swagger/swagger-ui-bundle.js")
    assert resp.status == 200
    assert b"SwaggerUIBundle" in (await resp.read())[:2000]


@pytest.mark.parametrize(
    "path", ["/ui/nope.js", "/ui/.hidden", "/ui/..%2F__init__.py", "/ui/swagger/index.html"]
)
async def test_only_the_pages_own_files_are_served(env: Any, path: str) -> None:
    client = env[0]
    resp = await client.get(path)
    assert resp.status == 404
    assert "expected one of" in (await resp.json())["error"]


def test_the_page_sends_the_key_only_as_a_header() -> None:
    """The key lives in sessionStorage and travels as X-API-Key; no URL carries it."""
    from edged.http.ui import STATIC_DIR

    for name in ("app.js", "api.js"):
        js = (STATIC_DIR / name).read_text()
        assert "sessionStorage" in js
        assert '"X-API-Key"' in js
        assert "api_key=" not in js
        assert "localStorage" not in js


def test_the_wheel_ships_every_file_of_the_page() -> None:
    """pyproject's package-data for ``edged.http`` matches each static file."""
    import tomllib

    from edged.http.ui import STATIC_DIR

    root = Path(__file__).resolve().parents[1]
    doc = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = doc["tool"]["setuptools"]["package-data"]["edged.http"]
    shipped = {p.name for pattern in patterns for p in STATIC_DIR.parent.glob(pattern)}
    on_disk = {p.name for p in STATIC_DIR.iterdir() if p.is_file()}
    assert {"index.html", "app.js", "app.css", "api.html", "api.js"} <= on_disk
    assert on_disk <= shipped
