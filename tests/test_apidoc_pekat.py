"""The PEKAT VISION REST API documents (../shared/api-docs/pekat-rest-api.txt and
pekat-rest-api-short.txt) as a contract.

Every URL the two editions print is sent with ``requests`` as a client written from
them would (``application/octet-stream`` bodies, the query as printed, the bare
``&bayer`` flag), and the documented answers are checked: the context JSON with
``data``, PNG image responses carrying the context in ``ContextBase64utf`` (base64
UTF-8 JSON, the full edition) and in ``context`` (the short edition's name).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np
import pytest
import requests
from _http_helpers import SPOT_XYWH, ServerThread, make_runtime, part_image, png_bytes

KEY = "553d7790-827c-11ec-978b-6da1176c0b00"
OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(make_runtime(api_key=KEY)) as srv:
        yield srv


def _assert_spot(ctx: dict[str, Any], shape_hw: tuple[int, int]) -> None:
    assert ctx["result"] is False  # a defect: not OK
    rects = ctx["detectedRectangles"]
    assert len(rects) == 1
    x, y, w, h = SPOT_XYWH
    assert (rects[0]["x"], rects[0]["y"], rects[0]["width"], rects[0]["height"]) == (x, y, w, h)
    assert ctx["imageShape"] == {"height": shape_hw[0], "width": shape_hw[1]}


def test_analyze_image_with_api_key(server: ServerThread) -> None:
    img = part_image(defect=True)
    # 'http://127.0.0.1:8000/analyze_image?api_key=553d7790-827c-11ec-978b-6da1176c0b00'
    url = f"{server.url}/analyze_image?api_key={KEY}"
    resp = requests.post(url, data=png_bytes(img), headers=OCTET, timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    _assert_spot(resp.json(), img.shape[:2])
    # without the key, when the project runs with one
    resp = requests.post(
        f"{server.url}/analyze_image", data=png_bytes(img), headers=OCTET, timeout=30
    )
    assert resp.status_code == 401


def test_data_goes_into_the_context(server: ServerThread) -> None:
    img = part_image(defect=False)
    # the full edition: '.../analyze_image?data=SomeInfo' (with the key of this project)
    url = f"{server.url}/analyze_image?data=SomeInfo&api_key={KEY}"
    ctx = requests.post(url, data=png_bytes(img), headers=OCTET, timeout=30).json()
    assert ctx["data"] == "SomeInfo"
    assert ctx["result"] is True
    # the short edition: '.../analyze_image?width=1920&height=1024&data=SomeInfo'
    url = f"{server.url}/analyze_image?width=1920&height=1024&data=SomeInfo&api_key={KEY}"
    resp = requests.post(url, data=png_bytes(img), headers=OCTET, timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"] == "SomeInfo"


def test_analyze_raw_image_1920x1024(server: ServerThread) -> None:
    # 'http://127.0.0.1:8000/analyze_raw_image?width=1920&height=1024'; a NumPy array's bytes
    img = cv2.resize(part_image(defect=False), (1920, 1024), interpolation=cv2.INTER_NEAREST)
    img[100:140, 200:240] = 20  # a dark spot
    url = f"{server.url}/analyze_raw_image?width=1920&height=1024&api_key={KEY}"
    resp = requests.post(url, data=img.tobytes(), headers=OCTET, timeout=60)
    assert resp.status_code == 200, resp.text
    ctx = resp.json()
    assert ctx["imageShape"] == {"height": 1024, "width": 1920}
    (rect,) = ctx["detectedRectangles"]
    assert (rect["x"], rect["y"], rect["width"], rect["height"]) == (200, 100, 40, 40)


def test_analyze_raw_image_bayer_flag(server: ServerThread) -> None:
    # '...analyze_raw_image?width=1920&height=1024&bayer': a bare flag, no value
    w, h = 64, 48
    bgr = part_image(defect=True, size_wh=(w, h))
    mosaic = np.empty((h, w), np.uint8)  # RGGB
    mosaic[0::2, 0::2] = bgr[0::2, 0::2, 2]
    mosaic[0::2, 1::2] = bgr[0::2, 1::2, 1]
    mosaic[1::2, 0::2] = bgr[1::2, 0::2, 1]
    mosaic[1::2, 1::2] = bgr[1::2, 1::2, 0]
    url = f"{server.url}/analyze_raw_image?width={w}&height={h}&bayer&api_key={KEY}"
    resp = requests.post(url, data=mosaic.tobytes(), headers=OCTET, timeout=30)
    assert resp.status_code == 200, resp.text
    ctx = resp.json()
    assert ctx["imageShape"] == {"height": h, "width": w}
    assert ctx["result"] is False


@pytest.mark.parametrize("response_type", ["image", "annotated_image", "heatmap"])
def test_image_responses_carry_the_context_in_both_headers(
    server: ServerThread, response_type: str
) -> None:
    img = part_image(defect=True)
    url = f"{server.url}/analyze_image?response_type={response_type}&api_key={KEY}"
    resp = requests.post(url, data=png_bytes(img), headers=OCTET, timeout=30)
    assert resp.status_code == 200, resp.text
    png = cv2.imdecode(np.frombuffer(resp.content, np.uint8), cv2.IMREAD_UNCHANGED)
    assert png is not None
    assert png.shape[:2] == img.shape[:2]
    # the full edition: base64 of UTF-8 JSON in ContextBase64utf
    full = json.loads(base64.b64decode(resp.headers["ContextBase64utf"]).decode("utf-8"))
    _assert_spot(full, img.shape[:2])
    # the short edition: the header is named context
    short = json.loads(resp.headers["context"])
    assert short == full


def test_context_is_the_default_response_type(server: ServerThread) -> None:
    img = part_image(defect=True)
    url = f"{server.url}/analyze_image?response_type=context&api_key={KEY}"
    ctx = requests.post(url, data=png_bytes(img), headers=OCTET, timeout=30).json()
    _assert_spot(ctx, img.shape[:2])
