"""LTU image services over a real aiohttp server: input shapes, envelope, bad input."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import cv2
import jsonschema
import numpy as np
import pytest
from _checks_helpers import decode_png_b64, disk_scene, iou
from aiohttp import web
from aiohttp.test_utils import TestClient

from edged._version import __version__
from edged.config import Settings
from edged.http._envelope import LTU_GATE
from edged.http._keys import RUNTIME
from edged.http.app import create_app
from edged.http.ltu import route_table
from edged.http.openapi import openapi_document
from edged.runtime.shared import Runtime

URL = "/v2/services/image"
ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


def _png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


def _jpeg(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return buf.tobytes()


@pytest.fixture(scope="module")
def disk() -> tuple[np.ndarray, np.ndarray]:
    return disk_scene()


def _runtime(**http: Any) -> Runtime:
    return Runtime.build(
        Settings(http={"max_pixels": 4_000_000, **http}, recipes={"q": {"checks": {"quality": {}}}})
    )


@pytest.fixture
async def make_client(aiohttp_client: ClientFactory) -> AsyncIterator[ClientFactory]:
    runtimes: list[Runtime] = []

    async def make(**http: Any) -> TestClient[Any, Any]:
        rt = _runtime(**http)
        runtimes.append(rt)
        return await aiohttp_client(create_app(rt))

    yield make
    for rt in runtimes:
        rt.pool.shutdown()


@pytest.fixture
async def client(make_client: ClientFactory) -> TestClient[Any, Any]:
    return await make_client()


def _form(image: bytes, **fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("image", image, filename="part.png", content_type="image/png")
    for k, v in fields.items():
        form.add_field(k, v)
    return form


def _documented(body: dict[str, Any], status: int, path: str) -> None:
    """The body is what the OpenAPI document promises for ``status`` on ``path``."""
    doc = openapi_document()
    op = doc["paths"][path]["post"]
    schema = op["responses"][str(status)]["content"]["application/json"]["schema"]
    jsonschema.validate(body, {**schema, "components": doc["components"]})


# details.name as the LTU document gives it, where it differs from the path
DOC_NAMES = {"imageQuality": "quality", "heatMap": "heatmap"}


def _png_of(obj: dict[str, str]) -> np.ndarray:
    """An LTU image object's PNG, decoded."""
    assert obj["encoding"] == "base64"
    assert obj["format"] == "image/png"
    return decode_png_b64(obj["value"])


async def _ok(resp: aiohttp.ClientResponse, name: str) -> dict[str, Any]:
    body = await resp.json()
    assert resp.status == 200, body
    _documented(body, 200, f"{URL}/{name}")
    assert set(body) == {"result", "details", "code", "errors", "version"}
    assert body["code"] == 0
    assert body["errors"] == []
    assert body["version"] == __version__
    assert body["details"]["name"] == DOC_NAMES.get(name, name)
    assert isinstance(body["details"]["message"], str)
    assert isinstance(body["details"]["score"], int | float)
    assert body["details"]["info"]["elapsed_ms"] >= 0
    return dict(body["result"])


async def _bad(resp: aiohttp.ClientResponse, status: int, name: str, *shown: str) -> str:
    body = await resp.json()
    assert resp.status == status, body
    _documented(body, status, f"{URL}/{name}")
    assert body["result"] is None
    assert body["details"]["name"] == name
    assert body["code"] == status
    message = str(body["details"]["message"])
    assert body["errors"] == [message]
    for text in shown:
        assert text in message
    assert body["details"]["info"]["status"] == status
    return message


# --------------------------------------------------------------------------- services


async def test_image_quality_multipart(client: TestClient[Any, Any]) -> None:
    img = np.full((100, 200), 128, np.uint8)
    img[:10] = 255
    resp = await client.post(f"{URL}/imageQuality", data=_form(_png(img)))
    result = await _ok(resp, "imageQuality")
    assert result["encoding"] == "OK"
    assert result["brightness"]["over_per"] == pytest.approx(10.0)
    over = _png_of(result["brightness"]["over_mask"])  # masks by default, as documented
    assert np.array_equal(over > 0, img == 255)
    assert set(result["sharpness"]) == {"val", "sml", "val_norm", "sml_norm"}
    assert isinstance(result["noise"], str)
    assert result["noise"] == f"{result['noise_sigma']:.4f}"


async def test_image_quality_masks_when_asked_by_query(client: TestClient[Any, Any]) -> None:
    img = np.full((40, 50), 128, np.uint8)
    img[:4] = 255
    resp = await client.post(f"{URL}/imageQuality?masks=false&tolerance=0", data=_form(_png(img)))
    result = await _ok(resp, "imageQuality")
    assert result["brightness"]["over_mask"] is None
    assert result["brightness"]["over_per"] == pytest.approx(10.0)


async def test_object_mask_with_options_as_form_fields(
    client: TestClient[Any, Any], disk: tuple[np.ndarray, np.ndarray]
) -> None:
    img, truth = disk
    form = _form(_png(img), algorithm="SOBEL", color_space="HSV", channel="S")
    resp = await client.post(f"{URL}/objectMaskDetection", data=form)
    result = await _ok(resp, "objectMaskDetection")
    assert result["algorithm"] == "SOBEL"
    assert result["channel"] == "S"
    mask = _png_of(result["binary mask"]) > 0
    assert iou(mask, truth) >= 0.95
    assert result["area_px"] == int(mask.sum())
    assert abs(result["boundingBox"]["x"] - 180) <= 2


async def test_base64_in_urlencoded_field(
    client: TestClient[Any, Any], disk: tuple[np.ndarray, np.ndarray]
) -> None:
    img, truth = disk
    data = {"image": base64.b64encode(_png(img)).decode(), "algorithm": "BINNING"}
    resp = await client.post(f"{URL}/objectMaskDetection", data=data)
    result = await _ok(resp, "objectMaskDetection")
    assert iou(_png_of(result["binary mask"]) > 0, truth) >= 0.95


async def test_base64_with_unescaped_plus_and_data_url(
    client: TestClient[Any, Any],
) -> None:
    img = np.zeros((64, 64, 3), np.uint8)
    img[:, 32:] = (255, 255, 255)
    text = "data:image/png;base64," + base64.b64encode(_png(img)).decode()
    # A careless client sends "+" raw; form decoding turns it into a space.
    body = "image=" + text.replace("/", "%2F").replace("=", "%3D") + "&count=2"
    resp = await client.post(
        f"{URL}/colorPalette",
        data=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    result = await _ok(resp, "colorPalette")
    assert result["colors"] == [[0, 0, 0, 50.0], [255, 255, 255, 50.0]]


async def test_base64_in_multipart_text_field_and_json(client: TestClient[Any, Any]) -> None:
    img = np.zeros((60, 80), np.uint8)
    cv2.rectangle(img, (10, 10), (39, 29), 255, -1)
    b64 = base64.b64encode(_png(img)).decode()
    form = aiohttp.FormData()
    form.add_field("image", b64)
    resp = await client.post(f"{URL}/contours", data=form)
    result = await _ok(resp, "contours")
    assert result["count"] == 1
    assert result["contours"][0]["boundingBox"] == {"x": 10, "y": 10, "width": 30, "height": 20}
    resp = await client.post(f"{URL}/contours", json={"image": b64, "max_contours": 1})
    assert (await _ok(resp, "contours"))["count"] == 1


async def test_raw_image_body(client: TestClient[Any, Any]) -> None:
    img = np.zeros((100, 100), np.uint8)
    cv2.rectangle(img, (20, 30), (79, 59), 200, -1)
    resp = await client.post(
        f"{URL}/edges?threshold_min=50&threshold_max=150",
        data=_png(img),
        headers={"Content-Type": "image/png"},
    )
    result = await _ok(resp, "edges")
    assert result["edge_px"] == 176
    assert result["threshold_min"] == 50.0
    edges = _png_of(result["edges"])
    assert edges.shape == (100, 100)
    assert int((edges > 0).sum()) == 176


async def test_heat_map_and_jpeg_input(client: TestClient[Any, Any]) -> None:
    img = np.full((300, 400, 3), 120, np.uint8)
    img[50:150, 250:350] = np.random.default_rng(3).integers(0, 256, (100, 100, 3), np.uint8)
    resp = await client.post(f"{URL}/heatMap", data=_form(_jpeg(img)))
    result = await _ok(resp, "heatMap")
    heat = _png_of(result["heatmap"])
    assert heat.shape == (300, 400, 3)
    x, y = result["peak_xy"]
    assert 230 <= x <= 370
    assert 30 <= y <= 170


async def test_every_service_answers_with_the_envelope(
    client: TestClient[Any, Any], disk: tuple[np.ndarray, np.ndarray]
) -> None:
    names = ["imageQuality", "objectMaskDetection", "contours", "edges", "colorPalette", "heatMap"]
    for name in names:
        resp = await client.post(f"{URL}/{name}", data=_form(_png(disk[0])))
        await _ok(resp, name)


async def test_routes_work_without_the_runtime(aiohttp_client: ClientFactory) -> None:
    app = web.Application()
    app.add_routes(route_table())
    client = await aiohttp_client(app)
    resp = await client.post(f"{URL}/colorPalette", data=_form(_png(np.zeros((8, 8), np.uint8))))
    result = await _ok(resp, "colorPalette")
    assert result["colors"] == [[0, 0, 0, 100.0]]


# --------------------------------------------------------------------------- bad input


async def test_not_an_image_is_400(client: TestClient[Any, Any]) -> None:
    resp = await client.post(f"{URL}/imageQuality", data=_form(b"hello, this is not an image"))
    await _bad(resp, 400, "imageQuality", "expected a PNG, JPEG, GIF, BMP, TIFF or WebP image")


@pytest.mark.parametrize("encode", [_png, _jpeg])
async def test_truncated_image_is_400(
    client: TestClient[Any, Any], encode: Callable[[np.ndarray], bytes]
) -> None:
    img = np.random.default_rng(0).integers(0, 256, (120, 160, 3), np.uint8)
    data = encode(img)
    resp = await client.post(f"{URL}/edges", data=_form(data[: len(data) // 2]))
    await _bad(resp, 400, "edges", "truncated")


async def test_unknown_algorithm_is_400(client: TestClient[Any, Any]) -> None:
    img = _png(np.zeros((20, 20), np.uint8))
    resp = await client.post(f"{URL}/objectMaskDetection?algorithm=WATERSHED", data=_form(img))
    await _bad(
        resp, 400, "objectMaskDetection", "algorithm", "'SOBEL', 'BINNING' or 'OTSU_BIN_THRESHOLD'"
    )


async def test_out_of_range_threshold_is_400(client: TestClient[Any, Any]) -> None:
    img = _png(np.zeros((20, 20), np.uint8))
    resp = await client.post(f"{URL}/edges", data=_form(img, threshold_max="600"))
    await _bad(resp, 400, "edges", "threshold_max", "less than or equal to 500", "'600'")
    # thresholds the wrong way round are swapped, as OpenCV's Canny does (the LTU
    # document's own sample sends them so)
    resp = await client.post(
        f"{URL}/edges", data=_form(img, threshold_min="300", threshold_max="200")
    )
    result = await _ok(resp, "edges")
    assert (result["threshold_min"], result["threshold_max"]) == (200.0, 300.0)


async def test_bad_channel_and_unknown_option_are_400(client: TestClient[Any, Any]) -> None:
    img = _png(np.zeros((20, 20), np.uint8))
    resp = await client.post(
        f"{URL}/objectMaskDetection", data=_form(img, color_space="G", channel="2")
    )
    await _bad(resp, 400, "objectMaskDetection", "channel for color_space G", "got 2")
    resp = await client.post(f"{URL}/colorPalette", data=_form(img, colours="3"))
    await _bad(resp, 400, "colorPalette", "colours: unknown option")


async def test_missing_image_is_400(client: TestClient[Any, Any]) -> None:
    resp = await client.post(f"{URL}/imageQuality", data={"bins": "8"})
    await _bad(resp, 400, "imageQuality", "image: missing")
    resp = await client.post(f"{URL}/imageQuality")
    await _bad(resp, 400, "imageQuality", "image: missing")


async def test_invalid_base64_is_400(client: TestClient[Any, Any]) -> None:
    resp = await client.post(f"{URL}/imageQuality", data={"image": "!!!not base64!!!"})
    await _bad(resp, 400, "imageQuality", "expected base64 image text")


async def test_option_twice_and_unsupported_body_are_400(client: TestClient[Any, Any]) -> None:
    img = _png(np.zeros((20, 20), np.uint8))
    resp = await client.post(f"{URL}/colorPalette?count=2", data=_form(img, count="3"))
    await _bad(resp, 400, "colorPalette", "count: given twice")
    resp = await client.post(
        f"{URL}/colorPalette", data=b"<xml/>", headers={"Content-Type": "text/xml"}
    )
    await _bad(resp, 400, "colorPalette", "got content type 'text/xml'")
    resp = await client.post(
        f"{URL}/colorPalette", data=b"[1, 2]", headers={"Content-Type": "application/json"}
    )
    await _bad(resp, 400, "colorPalette", "expected a JSON object, got list")


@pytest.mark.parametrize(
    ("body", "ctype", "shown"),
    [
        (b"no boundary", "multipart/form-data", "boundary"),
        (
            b'--xyz\r\nContent-Disposition: form-data; name="image"\r\n\r\nabc',
            "multipart/form-data; boundary=xyz",
            "malformed multipart",
        ),
        (
            b"--xyz\r\nbroken headers\r\n\r\nabc\r\n--xyz--\r\n",
            "multipart/form-data; boundary=xyz",
            "Invalid HTTP header",
        ),
        (b"image=\xff\xfe", "application/x-www-form-urlencoded", "UTF-8"),
    ],
)
async def test_malformed_bodies_are_400(
    client: TestClient[Any, Any], body: bytes, ctype: str, shown: str
) -> None:
    resp = await client.post(f"{URL}/edges", data=body, headers={"Content-Type": ctype})
    await _bad(resp, 400, "edges", shown)


async def test_image_over_the_pixel_limit_is_413(client: TestClient[Any, Any]) -> None:
    # A real, valid 2500x2000 PNG (5 Mpx; a few KB) against max_pixels 4 000 000.
    resp = await client.post(
        f"{URL}/imageQuality", data=_form(_png(np.zeros((2000, 2500), np.uint8)))
    )
    await _bad(resp, 413, "imageQuality", "expected at most 4000000 pixels", "2500×2000")


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width x height`` (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


async def test_decompression_bomb_is_refused_before_decoding(client: TestClient[Any, Any]) -> None:
    resp = await client.post(f"{URL}/edges", data=_form(_png_claiming(100_000, 100_000)))
    await _bad(resp, 413, "edges", "100000×100000")


async def test_body_over_the_limit_is_413(make_client: ClientFactory) -> None:
    client = await make_client(max_body_bytes=2048)
    noisy = np.random.default_rng(1).integers(0, 256, (64, 64), np.uint8)
    resp = await client.post(f"{URL}/imageQuality", data=_form(_png(noisy)))
    await _bad(resp, 413, "imageQuality", "expected at most 2048 bytes")


async def test_pixel_work_runs_in_the_worker_pool(client: TestClient[Any, Any]) -> None:
    pool = client.app[RUNTIME].pool
    before = pool.last_done_monotonic
    resp = await client.post(f"{URL}/colorPalette", data=_form(_png(np.zeros((8, 8), np.uint8))))
    await _ok(resp, "colorPalette")
    assert pool.last_done_monotonic > before  # decode and check ran as pool jobs
    assert pool.busy == 0


# --------------------------------------------------------------------------- URLs


async def test_url_input_is_refused_unless_the_host_is_listed(client: TestClient[Any, Any]) -> None:
    resp = await client.post(f"{URL}/imageQuality", data={"image": "http://127.0.0.1:9/a.png"})
    await _bad(resp, 400, "imageQuality", "http.url_fetch_hosts", "'127.0.0.1'")


async def test_url_input_from_a_listed_host_is_fetched(
    make_client: ClientFactory, aiohttp_server: Callable[..., Awaitable[Any]]
) -> None:
    img = np.zeros((40, 40), np.uint8)
    img[:, 20:] = 255

    async def serve(request: web.Request) -> web.Response:
        if request.path == "/part.png":
            return web.Response(body=_png(img), content_type="image/png")
        raise web.HTTPNotFound()

    images = web.Application()
    images.router.add_get("/{name}", serve)
    server = await aiohttp_server(images)
    client = await make_client(url_fetch_hosts=["127.0.0.1"])
    url = f"http://127.0.0.1:{server.port}/part.png"
    resp = await client.post(f"{URL}/colorPalette", data={"image": url})
    result = await _ok(resp, "colorPalette")
    assert result["colors"] == [[0, 0, 0, 50.0], [255, 255, 255, 50.0]]
    resp = await client.post(f"{URL}/colorPalette", json={"image": url.replace("part", "gone")})
    await _bad(resp, 400, "colorPalette", "expected HTTP 200, got 404")


def test_envelope_is_json_clean() -> None:
    from edged.http._envelope import envelope

    doc = envelope("distance", {"value": 1.5}, score=0.9, info={"k": 1})
    assert json.loads(json.dumps(doc)) == {
        "result": {"value": 1.5},
        "details": {"name": "distance", "score": 0.9, "message": "", "info": {"k": 1}},
        "code": 0,
        "errors": [],
        "version": __version__,
    }


# --------------------------------------------------------------------------- key, gate


async def test_api_key_is_required_when_configured(make_client: ClientFactory) -> None:
    client = await make_client(api_key="s3cret")
    img = _png(np.zeros((8, 8), np.uint8))
    resp = await client.post(f"{URL}/colorPalette", data=_form(img))
    await _bad(resp, 401, "colorPalette", "api key")
    resp = await client.post(f"{URL}/colorPalette?api_key=wrong", data=_form(img))
    await _bad(resp, 401, "colorPalette", "got a different one")
    resp = await client.post(f"{URL}/colorPalette?api_key=s3cret", data=_form(img))
    assert (await _ok(resp, "colorPalette"))["count"] == 1  # api_key is not an option
    resp = await client.post(
        f"{URL}/colorPalette", data=_form(img), headers={"X-API-Key": "s3cret"}
    )
    await _ok(resp, "colorPalette")


async def test_requests_wait_in_line_and_get_429_beyond_the_queue(
    make_client: ClientFactory,
) -> None:
    """Every slot busy: the next request waits in line (http.queue_depth 1) and gets
    the slot when it frees; one more is refused with 429 and Retry-After — LTU, PEKAT
    and PixLab alike (the slot is held here by real work through the app's gate)."""
    client = await make_client(max_concurrent=1, queue_depth=1)
    img = _png(np.zeros((8, 8), np.uint8))
    gate = client.app[LTU_GATE]
    release = asyncio.Event()

    async def nothing() -> None:
        return None

    async def busy(_: None) -> None:
        await release.wait()

    held = asyncio.ensure_future(gate.run(nothing, busy))
    await _until(lambda: gate.active == 1)
    second = asyncio.ensure_future(client.post(f"{URL}/colorPalette", data=_form(img)))
    await _until(lambda: gate.waiting == 1)  # in line, not refused
    resp = await client.post(f"{URL}/colorPalette", data=_form(img))
    await _bad(resp, 429, "colorPalette", "http.queue_depth")
    assert resp.headers["Retry-After"] == "1"
    # The PEKAT analyze endpoints share the same slots and the same line ...
    raw = await client.post("/analyze_raw_image?width=8&height=8", data=bytes(64))
    assert raw.status == 429
    assert "http.max_concurrent" in (await raw.json())["error"]
    # ... and so does PixLab's imgdiff, answering in its own shape.
    pair = aiohttp.FormData()
    for name in ("src", "target"):
        pair.add_field(name, img, filename=f"{name}.png", content_type="image/png")
    diff = await client.post("/imgdiff", data=pair)
    assert diff.status == 429
    body = await diff.json()
    assert body["status"] == 429
    assert "http.queue_depth" in body["error"]
    release.set()
    await held
    await _ok(await second, "colorPalette")
    assert (gate.active, gate.waiting) == (0, 0)


async def test_without_a_queue_a_busy_gate_refuses_at_once(make_client: ClientFactory) -> None:
    client = await make_client(max_concurrent=1, queue_depth=0)
    img = _png(np.zeros((8, 8), np.uint8))
    gate = client.app[LTU_GATE]
    release = asyncio.Event()

    async def nothing() -> None:
        return None

    async def busy(_: None) -> None:
        await release.wait()

    held = asyncio.ensure_future(gate.run(nothing, busy))
    await _until(lambda: gate.active == 1)
    resp = await client.post(f"{URL}/colorPalette", data=_form(img))
    await _bad(resp, 429, "colorPalette", "http.max_concurrent")
    release.set()
    await held
    assert gate.active == 0


async def _until(cond: Callable[[], bool]) -> None:
    for _ in range(500):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in 5 s")


async def test_a_slow_body_holds_no_analysis_slot(make_client: ClientFactory) -> None:
    """Issue 20: clients trickling their bodies held every slot (100 % 429 for the
    others). A body is received before a slot is taken; it only reserves its size in
    the body budget."""
    client = await make_client(max_concurrent=1)
    img = _png(np.zeros((8, 8), np.uint8))
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield img[:10]
        await release.wait()
        yield img[10:]

    first = asyncio.ensure_future(
        client.post(f"{URL}/colorPalette", data=slow_body(), headers={"Content-Type": "image/png"})
    )
    gate = client.app[LTU_GATE]
    for _ in range(200):
        if gate.body_bytes > 0:
            break
        await asyncio.sleep(0.01)
    assert gate.body_bytes > 0  # chunked: the whole body limit is reserved
    assert gate.active == 0
    await _ok(await client.post(f"{URL}/colorPalette", data=_form(img)), "colorPalette")
    raw = await client.post("/analyze_raw_image?width=8&height=8", data=bytes(64))
    assert raw.status == 200
    release.set()
    await _ok(await first, "colorPalette")
    assert (gate.active, gate.body_bytes) == (0, 0)


async def test_body_budget_refuses_bodies_beyond_it(make_client: ClientFactory) -> None:
    client = await make_client(max_body_bytes=1024 * 1024, body_budget_bytes=1024 * 1024)
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b"x"
        await release.wait()

    first = asyncio.ensure_future(
        client.post(f"{URL}/colorPalette", data=slow_body(), headers={"Content-Type": "image/png"})
    )
    gate = client.app[LTU_GATE]
    for _ in range(200):
        if gate.body_bytes > 0:
            break
        await asyncio.sleep(0.01)
    img = _png(np.zeros((8, 8), np.uint8))
    resp = await client.post(f"{URL}/colorPalette", data=_form(img))
    message = await _bad(resp, 429, "colorPalette", "http.body_budget_bytes")
    assert "this one declares" in message
    release.set()
    resp1 = await first
    assert 400 <= resp1.status < 500  # the trickled body was no PNG


@pytest.mark.parametrize(("h", "w"), [(1, 1), (1, 64), (64, 1)])
@pytest.mark.parametrize("service", ["alignmentMatrix", "differences", "distance"])
async def test_degenerate_sizes_in_two_image_services_are_400(
    client: TestClient[Any, Any], service: str, h: int, w: int
) -> None:
    """Issue 20: alignmentMatrix with a 1×1 or 1-pixel-wide image was a 500 (an
    OpenCV assertion). Every two-image service answers 4xx with the reason."""
    tiny = _png(np.full((h, w), 120, np.uint8))
    good = _png(disk_scene()[0])
    for first, second in ((tiny, good), (good, tiny)):
        form = aiohttp.FormData()
        form.add_field("image1", first, filename="a.png", content_type="image/png")
        form.add_field("image2", second, filename="b.png", content_type="image/png")
        resp = await client.post(f"{URL}/{service}", data=form)
        body = await resp.json()
        assert 400 <= resp.status < 500, (service, h, w, resp.status, body)
    if service == "alignmentMatrix":
        form = aiohttp.FormData()
        form.add_field("image1", tiny, filename="a.png", content_type="image/png")
        form.add_field("image2", good, filename="b.png", content_type="image/png")
        resp = await client.post(f"{URL}/{service}", data=form)
        await _bad(
            resp, 400, service, f"image1: expected at least 8×8 pixels to align, got {w}×{h}"
        )
