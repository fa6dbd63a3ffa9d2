"""Property: random query strings and bodies never make the analyze endpoints answer 5xx.

Requests go over real HTTP (``http.client``, the query string sent verbatim) to
edged's real server. Every 4xx must carry the JSON ``{"error", "status"}`` body.
"""

from __future__ import annotations

import http.client
import json
import string
from collections.abc import Iterator

import pytest
from _http_helpers import ServerThread, jpeg_bytes, make_runtime, part_image, png_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

KEYS = [
    "width", "height", "bayer", "response_type", "context_in_body", "data",
    "recipe", "api_key", "name",
]  # fmt: skip
SAFE = string.ascii_letters + string.digits + "-._~!$'()*+,;:@/"
GOOD_PNG = png_bytes(part_image(defect=True))
GOOD_JPEG = jpeg_bytes(part_image(defect=True))
RAW_BGR = part_image(defect=True).tobytes()

_values = st.one_of(
    st.sampled_from(
        ["", "64", "48", "0", "-1", "1e3", "9999999", "99999999999", "image", "heatmap",
         "annotated_image", "context", "spots", "spots_heat", "true", "false", "RG", "None"]
    ),
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.text(alphabet=SAFE, max_size=20),
    st.binary(max_size=6).map(lambda b: "".join(f"%{x:02X}" for x in b)),
)  # fmt: skip
_pair = st.tuples(st.one_of(st.sampled_from(KEYS), st.text(alphabet=SAFE, max_size=8)), _values)


@st.composite
def _random_query(draw: st.DrawFn) -> str:
    parts = []
    for key, value in draw(st.lists(_pair, max_size=8)):
        parts.append(key if draw(st.booleans()) and not value else f"{key}={value}")
    sep = draw(st.sampled_from(["&", "&", "&", "&&", ";"]))
    if draw(st.booleans()):  # half the time around a valid size, so analyses run too
        parts.insert(draw(st.integers(0, len(parts))), "width=64&height=48")
    return sep.join(parts)


@st.composite
def _plausible_query(draw: st.DrawFn) -> str:
    """Mostly valid parameters with the odd bad value: reaches decode, inspect and render."""
    parts = ["width=64&height=48"] if draw(st.integers(0, 9)) else []
    for key, choices in (
        ("response_type", [None, "context", "image", "annotated_image", "heatmap", "bogus"]),
        ("context_in_body", [None, "", "1", "false", "maybe"]),
        ("recipe", [None, None, "spots", "spots_heat", "nope"]),
        ("bayer", [None, None, None, "", "GB", "x"]),
    ):
        value = draw(st.sampled_from(choices))
        if value is not None:
            parts.append(f"{key}={value}" if value else key)
    parts.append(f"data={draw(st.text(alphabet=SAFE, max_size=12))}")
    return "&".join(draw(st.permutations(parts)))


def query_strings() -> st.SearchStrategy[str]:
    return st.one_of(_random_query(), _plausible_query())


def _mutate(data: bytes, draw: st.DrawFn) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(0, 6))):
        i = draw(st.integers(0, len(out) - 1))
        out[i] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(out)))
    return bytes(out[:cut]) if draw(st.booleans()) else bytes(out)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["random", "png", "jpeg", "raw", "empty", "good"]))
    if kind == "random":
        return draw(st.binary(max_size=3000))
    if kind == "empty":
        return b""
    if kind == "good":
        return draw(st.sampled_from([GOOD_PNG, GOOD_JPEG]))
    base = {"png": GOOD_PNG, "jpeg": GOOD_JPEG, "raw": RAW_BGR}[kind]
    return _mutate(base, draw)


def raw_bodies() -> st.SearchStrategy[bytes]:
    """Mostly right-sized raw pixels (some grey), so the raw endpoint runs real analyses."""
    grey = part_image(defect=True, grey=True).tobytes()
    return st.one_of(bodies(), st.sampled_from([RAW_BGR, grey]), st.just(RAW_BGR[:100]))


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerThread]:
    rt = make_runtime(max_pixels=500_000, max_body_bytes=1024 * 1024, max_concurrent=8)
    with ServerThread(rt) as s:
        yield s
    # after every example: edged itself counted no 5xx answer
    counted = [
        (sample.labels, sample.value)
        for family in rt.metrics.registry.collect()
        for sample in family.samples
        if sample.name == "edged_http_requests_total"
    ]
    statuses = {c[0]["status"] for c in counted}
    assert {"200", "400"} <= statuses, statuses  # the fuzz reached real analyses too
    assert [c for c in counted if c[0]["status"].startswith("5")] == []


def _exchange(port: int, path: str, body: bytes) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/octet-stream"})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type", ""), resp.read()
    finally:
        conn.close()


def _check(status: int, ctype: str, payload: bytes) -> None:
    assert status < 500, payload[:300]
    if status >= 400:
        assert ctype.startswith("application/json"), (status, payload[:200])
        doc = json.loads(payload)
        assert doc["status"] == status
        assert doc["error"]
    else:
        assert status == 200
        if ctype.startswith("application/json"):
            assert "detectedRectangles" in json.loads(payload)
        else:
            assert ctype in ("image/png", "application/octet-stream")
            assert payload.startswith(b"\x89PNG")


FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
    derandomize=True,  # the same examples every run: CI stays reproducible
)


@FUZZ
@given(query=query_strings(), body=bodies())
def test_analyze_image_never_5xx(srv: ServerThread, query: str, body: bytes) -> None:
    _check(*_exchange(srv.port, f"/analyze_image?{query}", body))


@FUZZ
@given(query=query_strings(), body=raw_bodies())
def test_analyze_raw_image_never_5xx(srv: ServerThread, query: str, body: bytes) -> None:
    _check(*_exchange(srv.port, f"/analyze_raw_image?{query}", body))


@settings(
    max_examples=30,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(query=query_strings())
def test_analyze_shared_memory_never_5xx(srv: ServerThread, query: str) -> None:
    _check(*_exchange(srv.port, f"/analyze_image_shared_memory?{query}", b""))
