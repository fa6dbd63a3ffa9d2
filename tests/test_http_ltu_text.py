"""LTU textDetection over a real aiohttp server: the document's own example request
(multipart ``image`` file, ``authorization: Bearer``) answered in the document's shape."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest
from _ocr_helpers import label
from aiohttp.test_utils import TestClient

from edged.config import Settings
from edged.http.app import create_app
from edged.runtime.shared import Runtime

URL = "/v2/services/image/textDetection"
TOKEN = "s3cret-token"
ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
# The document's example label, in ASCII (Hershey fonts have no È).
LINES = ["MADE IN ITALY", "92200 NEUILLY", "LE ROUGE CRAYON", "DE COULEUR MAT"]


@pytest.fixture
async def client(aiohttp_client: ClientFactory) -> AsyncIterator[TestClient[Any, Any]]:
    rt = Runtime.build(Settings(http={"api_key": TOKEN}, recipes={"q": {"checks": {}}}))
    yield await aiohttp_client(create_app(rt))
    rt.pool.shutdown()


def _jpeg(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return buf.tobytes()


def _form(image: bytes, **fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("image", image, filename="chanel-crayon.jpg", content_type="image/jpeg")
    for k, v in fields.items():
        form.add_field(k, v)
    return form


def _bearer() -> dict[str, str]:
    return {"authorization": f"Bearer {TOKEN}"}


def _label() -> np.ndarray:
    return label(LINES, size_wh=(720, 380), origin_xy=(50, 90), line_step_px=70, font_scale=1.2)


async def test_the_documents_example_request(client: TestClient[Any, Any]) -> None:
    resp = await client.post(URL, data=_form(_jpeg(_label())), headers=_bearer())
    body = await resp.json()
    assert resp.status == 200, body
    assert {"result", "details", "version", "code", "errors"} <= set(body)
    assert body["details"]["name"] == "textDetection"
    doc = body["result"]
    # the document shows message, code and content at the top level: both are there
    assert {k: body[k] for k in ("message", "code", "content")} == {
        k: doc[k] for k in ("message", "code", "content")
    }
    assert doc["message"] == "ok"
    assert doc["code"] == "0"
    content = doc["content"]
    assert content["errors"] == []
    image = content["image"]
    uid = image["UUID"]
    assert re.fullmatch(r"[0-9a-f]{8}", uid)
    assert image["version"] == 0.1
    areas = image["areas"]
    top = areas[f"{uid}/0"]
    assert top["type"] == "input"
    assert top["boundingBox"] == {"x": 0, "y": 0, "width": 720, "height": 380}
    info = top["resultInfo"]["textDetection"]
    assert info["type"] == "summary"
    assert info["language"] == "en"
    assert info["text"] == "".join(f"{line}\n" for line in LINES)
    words = [w for line in LINES for w in line.split()]
    assert info["subarea"] == [f"{uid}/{i}" for i in range(1, len(words) + 1)]
    assert info["words"]["MADE"] == [f"{uid}/1"]
    assert info["words"]["IN"] == [f"{uid}/2"]
    assert len(info["lines"]) == 4
    first = areas[f"{uid}/1"]
    assert first["type"] == "output"
    assert first["resultInfo"]["textDetection"] == {
        "type": "words",
        "language": "en",
        "text": "MADE",
        "confidence": first["resultInfo"]["textDetection"]["confidence"],
        "line": 0,
    }
    box = first["boundingBox"]
    assert set(box) == {"x", "y", "width", "height"}
    assert all(isinstance(v, int) for v in box.values())
    assert 45 <= box["x"] <= 60
    assert 55 <= box["y"] <= 75  # the cap height above the baseline at y=90
    summary = content["summary"]
    assert summary["name"] == "textDetection"
    assert summary["status"] == 0
    assert summary["message"] == "OK"
    assert summary["resultInfos"]["textDetection"]["nbAreas"] == len(words) + 1
    assert summary["resultInfos"]["textDetection"]["engine"].startswith("tesseract 5.")


async def test_region_and_provider(client: TestClient[Any, Any]) -> None:
    form = _form(_jpeg(_label()), provider="Tesseract", region="30,40,500,70", layout="block")
    resp = await client.post(URL, data=form, headers=_bearer())
    body = await resp.json()
    assert resp.status == 200, body
    areas = body["result"]["content"]["image"]["areas"]
    uid = body["result"]["content"]["image"]["UUID"]
    assert areas[f"{uid}/0"]["boundingBox"] == {"x": 30, "y": 40, "width": 500, "height": 70}
    assert areas[f"{uid}/0"]["resultInfo"]["textDetection"]["text"] == "MADE IN ITALY\n"


async def test_blank_image_has_only_the_input_area(client: TestClient[Any, Any]) -> None:
    blank = np.full((100, 200, 3), 200, np.uint8)
    resp = await client.post(URL, data=_form(_jpeg(blank)), headers=_bearer())
    body = await resp.json()
    assert resp.status == 200, body
    content = body["result"]["content"]
    (only,) = content["image"]["areas"].values()
    assert only["resultInfo"]["textDetection"]["text"] == ""
    assert only["resultInfo"]["textDetection"]["words"] == {}
    assert content["summary"]["resultInfos"]["textDetection"]["nbAreas"] == 1


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        ({"provider": "Google"}, "expected 'Tesseract' (edged reads text offline), got 'Google'"),
        ({"language": "klingon"}, "klingon.traineddata"),
        ({"region": "1,2,3"}, "expected 'x,y,width,height'"),
        ({"region": "700,0,100,100"}, "region: expected a box inside the 720x380 image"),
        ({"dot_matrix_px": "99"}, "dot_matrix_px"),
    ],
)
async def test_bad_fields_are_400(
    client: TestClient[Any, Any], fields: dict[str, str], shown: str
) -> None:
    resp = await client.post(URL, data=_form(_jpeg(_label()), **fields), headers=_bearer())
    body = await resp.json()
    assert resp.status == 400, body
    assert body["result"] is None
    assert shown in body["details"]["message"]


async def test_without_the_token_is_401(client: TestClient[Any, Any]) -> None:
    resp = await client.post(URL, data=_form(_jpeg(_label())))
    assert resp.status == 401


# --------------------------------------------------------------------------- PEKAT data


LOT_RECIPE = {
    "checks": {
        "lot": {
            "type": "text",
            "region": {"x": 30, "y": 40, "width": 500, "height": 70},
            "expect_input": "data",
        }
    },
    "limits": ['lot.status == "ok"'],
}


@pytest.fixture
async def pekat(aiohttp_client: ClientFactory) -> AsyncIterator[TestClient[Any, Any]]:
    rt = Runtime.build(Settings(recipes={"lot": LOT_RECIPE}))
    yield await aiohttp_client(create_app(rt))
    rt.pool.shutdown()


@pytest.mark.parametrize(
    ("data", "verdict", "status"),
    [
        ("MADE IN ITALY", "pass", "ok"),
        ("MADE IN FRANCE", "fail", "wrong_text"),
        ("None", "fail", "no_expected_value"),  # what the PEKAT SDK sends for no data
    ],
)
async def test_pekat_data_carries_the_expected_text(
    pekat: TestClient[Any, Any], data: str, verdict: str, status: str
) -> None:
    resp = await pekat.post("/analyze_image", params={"data": data}, data=_jpeg(_label()))
    ctx = await resp.json()
    assert resp.status == 200, ctx
    assert ctx["verdict"] == verdict
    assert ctx["result"] is (verdict == "pass")
    lot = ctx["checks"]["lot"]
    assert lot["status"] == status
    assert lot["text"] == "MADE IN ITALY"
    assert ctx["data"] == data
    (rect,) = ctx["detectedRectangles"]
    assert (rect["x"], rect["y"], rect["width"], rect["height"]) == (30, 40, 500, 70)
    assert rect["classNames"] == [{"label": status}]
    assert rect["check"] == "lot"


async def test_recognition_timeout_is_503(client: TestClient[Any, Any]) -> None:
    noise = np.random.default_rng(5).integers(0, 256, (450, 600), dtype=np.uint8)
    ok, png = cv2.imencode(".png", noise)
    assert ok
    form = aiohttp.FormData()
    form.add_field("image", png.tobytes(), filename="noise.png", content_type="image/png")
    form.add_field("timeout_ms", "1")
    resp = await client.post(URL, data=form, headers=_bearer())
    body = await resp.json()
    assert resp.status == 503, body
    assert "expected to finish within 1 ms" in body["details"]["message"]
