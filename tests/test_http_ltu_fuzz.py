"""Property: random LTU requests (services, options, images, body shapes) never get a 5xx.

Requests go over real HTTP to edged's real server; every answer, good or bad, must
be the LTU envelope with the status it carries in ``details.info.status``.
"""

from __future__ import annotations

import base64
import json
import string
import urllib.parse
import uuid
from collections.abc import Iterator

import cv2
import numpy as np
import pytest
import requests
from _checks_helpers import disk_scene
from _http_helpers import ServerThread, make_runtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edged.http.ltu import services

SERVICES = services()

URL = "/v2/services/image"
IMAGE, _ = disk_scene((160, 120), (80, 60), 30)
GOOD = {ext: cv2.imencode(ext, IMAGE)[1].tobytes() for ext in (".png", ".jpg", ".bmp", ".webp")}
OPTION_NAMES = sorted({f for s in SERVICES.values() for f in s.options.model_fields})
SAFE = string.ascii_letters + string.digits + "-._"

_values = st.one_of(
    st.sampled_from(
        ["", "0", "1", "-1", "2", "3", "16", "255", "500", "501", "1e9", "0.5", "true",
         "false", "auto", "S", "V", "q", "HSV", "G", "LAB", "sobel", "BINNING",
         "OTSU_BIN_THRESHOLD", "keypoints", "contrast", "dark", "bright", "nan", "None"]
    ),
    st.text(alphabet=SAFE, max_size=10),
)  # fmt: skip
_options = st.dictionaries(
    st.one_of(st.sampled_from(OPTION_NAMES), st.text(alphabet=SAFE, min_size=1, max_size=8)),
    _values,
    max_size=4,
)


def _mutate(data: bytes, draw: st.DrawFn) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(0, 5))):
        out[draw(st.integers(0, len(out) - 1))] = draw(st.integers(0, 255))
    return bytes(out[: draw(st.integers(0, len(out)))]) if draw(st.booleans()) else bytes(out)


@st.composite
def images(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["good", "good", "mutated", "random", "empty"]))
    if kind == "random":
        return draw(st.binary(max_size=2000))
    if kind == "empty":
        return b""
    data = GOOD[draw(st.sampled_from(sorted(GOOD)))]
    return data if kind == "good" else _mutate(data, draw)


def _multipart(image: bytes, fields: dict[str, str]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + image
        + b"\r\n"
    ]
    for k, v in fields.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'
        parts.append(head.encode() + v.encode() + b"\r\n")
    return b"".join(
        parts
    ) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerThread]:
    rt = make_runtime(max_pixels=1_000_000, max_body_bytes=256 * 1024, max_concurrent=8)
    with ServerThread(rt) as s:
        yield s
    # after every example: edged counted real analyses and bad input, never a 5xx
    statuses = {
        sample.labels["status"]
        for family in rt.metrics.registry.collect()
        for sample in family.samples
        if sample.name == "edged_http_requests_total"
    }
    assert {"200", "400"} <= statuses, statuses
    assert not any(s.startswith("5") for s in statuses), statuses


_OWN_TOP_LEVEL = {"textDetection": {"message", "content"}}
"""Services whose document shows keys of their own beside the envelope's."""


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    service=st.sampled_from(sorted(SERVICES)),
    image=images(),
    options=_options,
    shape=st.sampled_from(["multipart", "urlencoded", "raw", "json"]),
    in_query=st.booleans(),
)
def test_random_requests_get_the_envelope_never_5xx(
    srv: ServerThread, service: str, image: bytes, options: dict[str, str], shape: str,
    in_query: bool,
) -> None:  # fmt: skip
    query = "?" + urllib.parse.urlencode(options) if in_query and options else ""
    fields = {} if query else options
    headers: dict[str, str] = {}
    if shape == "multipart":
        body, headers["Content-Type"] = _multipart(image, fields)
    elif shape == "urlencoded":
        body = urllib.parse.urlencode({"image": base64.b64encode(image).decode(), **fields})
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif shape == "json":
        body = json.dumps({"image": base64.b64encode(image).decode(), **fields})
        headers["Content-Type"] = "application/json"
    else:
        body, headers["Content-Type"] = image, "image/png"
        query = "?" + urllib.parse.urlencode(options) if options else ""
    resp = requests.post(f"{srv.url}{URL}/{service}{query}", data=body, headers=headers, timeout=30)
    assert resp.status_code < 500, resp.text[:300]
    doc = resp.json()
    envelope = {"result", "details", "code", "errors", "version"}
    if resp.status_code == 200 and service in _OWN_TOP_LEVEL:
        # textDetection's document answers {message, code, content} at the top level
        assert set(doc) == envelope | _OWN_TOP_LEVEL[service]
        assert doc["code"] == doc["result"]["code"]
        return
    assert set(doc) == envelope
    if resp.status_code == 200:
        assert doc["details"]["name"] == {"imageQuality": "quality", "heatMap": "heatmap"}.get(
            service, service
        )
        assert isinstance(doc["details"]["message"], str)
        assert isinstance(doc["result"], dict)
        assert (doc["code"], doc["errors"]) == (0, [])
    else:
        assert doc["details"]["name"] == service
        assert doc["result"] is None
        assert doc["details"]["info"]["status"] == resp.status_code
        assert doc["details"]["message"]
        assert (doc["code"], doc["errors"]) == (resp.status_code, [doc["details"]["message"]])


def test_the_fuzz_reaches_real_analyses(srv: ServerThread) -> None:
    body, ctype = _multipart(GOOD[".png"], {"count": "2"})
    resp = requests.post(
        f"{srv.url}{URL}/colorPalette", data=body, headers={"Content-Type": ctype}, timeout=30
    )
    assert resp.status_code == 200
    assert np.isclose(sum(c[3] for c in resp.json()["result"]["colors"]), 100.0)
