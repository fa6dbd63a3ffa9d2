"""LTU differences/alignmentMatrix/distance and PixLab imgdiff over a real aiohttp server."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest
from _http_helpers import make_runtime
from _refs_helpers import capture, paint_square, world

from edged.http import create_app

SIZE = (320, 240)


@pytest.fixture(scope="module")
def wld() -> np.ndarray:
    return world(SIZE, seed=41, colour=True)


@pytest.fixture(scope="module")
def ref(wld: np.ndarray) -> np.ndarray:
    return capture(wld, noise=1.0, seed=1)


@pytest.fixture
async def client(aiohttp_client: Any) -> AsyncIterator[Any]:
    """The daemon's app: errors take their API's shape through its error middleware."""
    runtime = make_runtime()
    yield await aiohttp_client(create_app(runtime))
    runtime.pool.shutdown()


def _png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def _form(**parts: Any) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for name, value in parts.items():
        if isinstance(value, np.ndarray):
            form.add_field(name, _png(value), filename=f"{name}.png", content_type="image/png")
        else:
            form.add_field(name, str(value))
    return form


async def test_differences_finds_the_defect_on_both_images(
    client: Any, wld: np.ndarray, ref: np.ndarray
) -> None:
    q = paint_square(
        capture(wld, dx=4.0, dy=3.0, angle_deg=-1.0, noise=2.0, seed=2), 210, 150, 12, -80
    )
    resp = await client.post(
        "/v2/services/image/differences",
        data=_form(image1=ref, image2=q, transform="true", mask_type="binary"),
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert set(body) == {"result", "details", "code", "errors", "version"}
    assert body["details"]["name"] == "differences"
    assert body["details"]["info"]["count"] == 1
    assert 0 < body["details"]["score"] < 1.0  # the distance: a match
    assert body["details"]["info"]["area_per"] > 0
    (on2,) = body["result"]["diffOnImage2"]
    box = on2["boundingBox"]
    assert (box["x"], box["y"], box["width"], box["height"]) == pytest.approx(
        (210, 150, 12, 12), abs=2
    )
    center = on2["enclosingCircle"]["center"]
    assert (center["x"], center["y"]) == pytest.approx((215.5, 155.5), abs=1.5)
    assert all(0 <= x <= 1 and 0 <= y <= 1 for x, y in on2["vertices_frac"])
    assert all(
        0 <= v["x"] < box["width"] and 0 <= v["y"] < box["height"] for v in on2["relativeVertices"]
    )
    assert on2["mask"]["format"] == "image/png"
    mask = cv2.imdecode(
        np.frombuffer(base64.b64decode(on2["mask"]["value"]), np.uint8), cv2.IMREAD_UNCHANGED
    )
    assert mask.shape == (box["height"], box["width"])
    assert mask.mean() > 150  # a filled square
    (on1,) = body["result"]["diffOnImage1"]
    # image1 coordinates: the spot moved back by the part's motion (~ -4, -3)
    assert on1["boundingBox"]["x"] == pytest.approx(210 - 4 - 1, abs=3)
    m1 = np.array(body["result"]["matOn1"]).reshape(3, 3)  # flat lists of 9
    m2 = np.array(body["result"]["matOn2"]).reshape(3, 3)
    np.testing.assert_allclose(m1 @ m2, np.eye(3), atol=1e-6)
    assert m1[0, 2] == pytest.approx(4.0 + 0.0, abs=4.0)  # image1 -> image2


async def test_identical_images_have_no_differences(client: Any, ref: np.ndarray) -> None:
    b64 = base64.b64encode(_png(ref)).decode()
    resp = await client.post(
        "/v2/services/image/differences",
        data={"image1": b64, "image2": "data:image/png;base64," + b64, "preset": "2"},
    )
    assert resp.status == 200
    body = await resp.json()
    assert body["result"]["diffOnImage1"] == []
    assert body["result"]["diffOnImage2"] == []
    assert body["result"]["matOn1"] is None
    assert body["details"]["score"] == 0.0
    assert body["details"]["info"]["count"] == 0


async def test_differences_options_and_roi(client: Any, wld: np.ndarray, ref: np.ndarray) -> None:
    q = paint_square(ref, 60, 60, 14, 90)
    roi = np.full(ref.shape[:2], 255, np.uint8)
    roi[40:100, 40:100] = 0
    fic = json.dumps(
        {"threshold_grey": 30, "smooth": 1, "margin": 2, "resolution": 300, "behaviors": "V"}
    )
    resp = await client.post(
        "/v2/services/image/differences",
        data=_form(
            image1=ref,
            image2=q,
            image1_roi=roi,
            fic_settings=fic,
            mask_type="contours",
            mask_color="#FF0000",
            vertices="false",
        ),
    )
    body = await resp.json()
    assert resp.status == 200, body
    assert body["details"]["info"]["count"] == 0  # excluded by the ROI
    assert body["details"]["info"]["resolution"] == 300
    resp = await client.post(
        "/v2/services/image/differences",
        data=_form(
            image1=ref,
            image2=q,
            fic_settings=fic,
            mask_type="contours",
            mask_color="#FF0000",
            vertices="false",
            mask_thickness="1",
        ),
    )
    body = await resp.json()
    (region,) = body["result"]["diffOnImage1"]
    assert region["relativeVertices"] == []
    outline = cv2.imdecode(
        np.frombuffer(base64.b64decode(region["mask"]["value"]), np.uint8), cv2.IMREAD_COLOR
    )
    assert outline.ndim == 3
    reds = outline[..., 2] == 255
    assert reds.any()
    assert not outline[..., 0].any()  # only red drawn (BGR)
    assert not reds[outline.shape[0] // 2, outline.shape[1] // 2]  # an outline, not filled


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"preset": "9"}, "preset: expected an integer in [1, 5], got 9"),
        ({"fic_settings": "{not json"}, "fic_settings: expected a JSON object, got invalid JSON"),
        ({"fic_settings": '{"speed": 1}'}, "got unknown ['speed']"),
        ({"fic_settings": '{"resolution": 2000}'}, "fic_settings.resolution: expected 64..900"),
        ({"fic_settings": '{"threshold": 0}'}, "threshold: expected a number in (0, 100]"),
        ({"mask_type": "polygon"}, "mask_type: expected one of"),
        ({"mask_color": "red"}, "mask_color: expected '#RRGGBB', 'R,G,B' or 'R,G,B,A', got 'red'"),
        ({"vertices": "maybe"}, "vertices: expected true or false, got 'maybe'"),
        ({"motion_model": "warp"}, "motion_model: expected one of"),
    ],
)
async def test_differences_bad_options_are_400(
    client: Any, ref: np.ndarray, fields: dict[str, str], message: str
) -> None:
    resp = await client.post(
        "/v2/services/image/differences", data=_form(image1=ref, image2=ref, **fields)
    )
    assert resp.status == 400
    body = await resp.json()
    assert body["result"] is None
    assert message in body["details"]["message"]


async def test_bad_images_are_400_never_500(client: Any, ref: np.ndarray) -> None:
    cases = [
        (_form(image1=ref), "image2: missing"),
        ({"image1": "!!!notbase64", "image2": "x"}, "image1: expected base64 image text"),
        (
            {"image1": base64.b64encode(b"hello world, not an image").decode(), "image2": "x"},
            "image1: expected a PNG, JPEG",
        ),
        (
            {"image1": "https://example.com/a.png", "image2": "x"},
            "fetching images from URLs is allowed only from http.url_fetch_hosts",
        ),
    ]
    for data, message in cases:
        resp = await client.post("/v2/services/image/differences", data=data)
        assert resp.status == 400, (message, await resp.text())
        assert message in (await resp.json())["details"]["message"]
    truncated = _png(ref)[:500]
    data = {"image1": base64.b64encode(truncated).decode(), "image2": "x"}
    resp = await client.post("/v2/services/image/differences", data=data)
    assert resp.status == 400
    resp = await client.post(
        "/v2/services/image/differences", data="just text", headers={"Content-Type": "text/plain"}
    )
    assert resp.status == 400
    roi = np.zeros((10, 10), np.uint8)
    resp = await client.post(
        "/v2/services/image/differences", data=_form(image1=ref, image2=ref, image1_roi=roi)
    )
    assert resp.status == 400
    assert (
        "image1_roi: expected a mask of image1's size 320x240, got 10x10"
        in (await resp.json())["details"]["message"]
    )


async def test_decompression_bomb_is_refused_before_decoding(client: Any) -> None:
    bomb = cv2.imencode(".png", np.zeros((8000, 8000), np.uint8))[1].tobytes()  # 64 Mpx, ~60 kB
    data = {"image1": base64.b64encode(bomb).decode(), "image2": "x"}
    resp = await client.post("/v2/services/image/differences", data=data)
    assert resp.status == 413
    assert "expected at most 50000000 pixels" in (await resp.json())["details"]["message"]


async def test_unregistered_pair_is_422_with_the_reason(client: Any, ref: np.ndarray) -> None:
    noise = cv2.GaussianBlur(
        np.random.default_rng(0).integers(0, 256, ref.shape, dtype=np.uint8), (0, 0), 3
    )
    resp = await client.post("/v2/services/image/differences", data=_form(image1=ref, image2=noise))
    assert resp.status == 422
    assert "does not register" in (await resp.json())["details"]["message"]
    resp = await client.post(
        "/v2/services/image/alignmentMatrix", data=_form(image1=ref, image2=noise)
    )
    assert resp.status == 422


async def test_alignment_matrix(client: Any, wld: np.ndarray, ref: np.ndarray) -> None:
    q = capture(wld, dx=-5.0, dy=2.5, angle_deg=1.5, noise=1.0, seed=4)
    resp = await client.post(
        "/v2/services/image/alignmentMatrix",
        data=_form(image1=ref, image2=q, return_image="true", resolution="320"),
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    m1 = np.array(body["result"]["matrix1"])
    m2 = np.array(body["result"]["matrix2"])
    assert m1.shape == m2.shape == (9,)  # flat, as the LTU document shows them
    m1, m2 = m1.reshape(3, 3), m2.reshape(3, 3)
    np.testing.assert_allclose(m1 @ m2, np.eye(3), atol=1e-6)
    motion = body["details"]["info"]["motion"]
    assert motion["dx"] == pytest.approx(-5.0, abs=0.2)
    assert motion["angle_deg"] == pytest.approx(1.5, abs=0.05)
    aligned = cv2.imdecode(
        np.frombuffer(base64.b64decode(body["result"]["image"]["value"]), np.uint8),
        cv2.IMREAD_COLOR,
    )
    assert aligned.shape == ref.shape
    inner = (slice(20, 220), slice(20, 300))
    err = np.abs(aligned[inner].astype(int) - ref[inner].astype(int)).mean()
    assert err < 4.0  # image2 now sits on image1
    resp = await client.post(
        "/v2/services/image/alignmentMatrix", data=_form(image1=ref, image2=q, resolution="5000")
    )
    assert resp.status == 400


async def test_distance(client: Any, wld: np.ndarray, ref: np.ndarray) -> None:
    q = capture(wld, dx=3.0, noise=2.0, seed=5)
    resp = await client.post("/v2/services/image/distance", data=_form(refImage=ref, queryImage=q))
    body = await resp.json()
    assert resp.status == 200, body
    assert body["result"]["decision"] == "match"
    assert body["details"]["info"]["distance"] == body["result"]["distance"] < 1.0
    assert body["details"]["info"]["decision"] == "Match"
    resp = await client.post("/v2/services/image/distance", data=_form(image1=ref, image2=ref))
    assert (await resp.json())["result"]["decision"] == "clone"
    resp = await client.post("/v2/services/image/distance", data=_form(refImage=ref))
    assert resp.status == 400
    assert "queryImage: missing" in (await resp.json())["details"]["message"]


async def test_imgdiff_mse_and_blob(client: Any) -> None:
    a = np.zeros((2, 2), np.uint8)
    b = a.copy()
    b[1, 1] = 2
    resp = await client.post("/imgdiff", data=_form(src=a, target=b))
    body = await resp.json()
    assert resp.status == 200
    assert body["status"] == 200
    assert body["diff"] == 1.0
    assert body["id"]
    resp = await client.post("/imgdiff", data=_form(src=a, target=b, blob="true"))
    assert resp.status == 200
    assert resp.content_type == "image/png"
    assert resp.headers["X-Imgdiff-Mse"] == "1.0"
    diff = cv2.imdecode(np.frombuffer(await resp.read(), np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(diff, b)


async def test_imgdiff_bad_input(client: Any) -> None:
    resp = await client.post(
        "/imgdiff", data=_form(src=np.zeros((3, 4), np.uint8), target=np.zeros((4, 3), np.uint8))
    )
    assert resp.status == 400
    body = await resp.json()
    assert body == {"status": 400, "error": body["error"]}
    assert "same size, got src 4x3 and target 3x4" in body["error"]
    resp = await client.post("/imgdiff", data=_form(src=np.zeros((3, 4), np.uint8)))
    assert resp.status == 400
    assert "target: missing" in (await resp.json())["error"]
    resp = await client.post("/imgdiff", json={"src": "AAAA", "target": "AAAA"})
    assert resp.status == 400


def test_served_by_the_daemon_app_behind_the_api_key(ref: np.ndarray) -> None:
    import requests
    from _http_helpers import ServerThread

    q = paint_square(ref, 100, 100, 12, 80)
    files = {"image1": ("a.png", _png(ref), "image/png"), "image2": ("b.png", _png(q), "image/png")}
    with ServerThread(make_runtime(api_key="k")) as srv:
        url = srv.url + "/v2/services/image/differences"
        assert requests.post(url, files=files, timeout=30).status_code == 401
        resp = requests.post(url, files=files, headers={"X-API-Key": "k"}, timeout=30)
        assert resp.status_code == 200, resp.text
        assert resp.json()["details"]["info"]["count"] == 1
        src = {"src": ("a.png", _png(ref), "image/png"), "target": ("b.png", _png(q), "image/png")}
        assert requests.post(srv.url + "/imgdiff", files=src, timeout=30).status_code == 401
        resp = requests.post(srv.url + "/imgdiff", files=src, params={"api_key": "k"}, timeout=30)
        assert resp.status_code == 200, resp.text
        expected = float(np.mean((q.astype(float) - ref.astype(float)) ** 2))
        assert resp.json()["diff"] == pytest.approx(expected)
