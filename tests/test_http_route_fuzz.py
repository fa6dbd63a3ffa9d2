"""Issue 20: a fuzz run over every HTTP route — compressed bodies (gzip, deflate, bombs,
garbage, unknown encodings) and degenerate image sizes — gives no 5xx.

Every POST route of the real app (taken from its router, so a new route is fuzzed
too) gets random combinations over real HTTP; ``edged_http_requests_total`` must
count no 5xx afterwards.
"""

from __future__ import annotations

import gzip
import http.client
import json
import zlib
from collections.abc import Iterator

import cv2
import numpy as np
import pytest
from _http_helpers import MemoryStore, ServerThread, make_runtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def _png(h: int, w: int, channels: int = 1) -> bytes:
    shape = (h, w) if channels == 1 else (h, w, channels)
    ok, buf = cv2.imencode(".png", np.full(shape, 128, np.uint8))
    assert ok
    return bytes(buf.tobytes())


SIZES = [(1, 1), (1, 64), (64, 1), (2, 2), (7, 7), (48, 64)]
IMAGES = [_png(h, w) for h, w in SIZES] + [_png(1, 1, 3), _png(48, 64, 3), b"", b"\x89PNG\r\n"]
BOMB = gzip.compress(b"\0" * (8 * 1024 * 1024))  # 8 MiB of zeros in ~8 KB


@st.composite
def encoded(draw: st.DrawFn) -> tuple[str | None, bytes]:
    """(Content-Encoding header or None, the bytes sent)."""
    kind = draw(
        st.sampled_from(["none", "gzip", "deflate", "bomb", "garbage", "br", "identity", "odd"])
    )
    data = draw(st.sampled_from(IMAGES))
    if kind == "none":
        return None, data
    if kind == "gzip":
        return "gzip", gzip.compress(data)
    if kind == "deflate":
        return "deflate", zlib.compress(data)
    if kind == "bomb":
        return "gzip", BOMB
    if kind == "garbage":
        return draw(st.sampled_from(["gzip", "deflate", "x-gzip"])), data + b"\x01\x02\x03"
    if kind == "br":
        return "br", data
    if kind == "identity":
        return "identity", data
    return draw(st.sampled_from(["gzip, identity", "zstd", "compress", "GZIP", " , "])), data


def _multipart(fields: dict[str, bytes]) -> tuple[str, bytes]:
    boundary = "fuzzboundary7"
    parts = []
    for name, data in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{name}.png"\r\nContent-Type: image/png\r\n\r\n'.encode()
            + data
            + b"\r\n"
        )
    return f"multipart/form-data; boundary={boundary}", b"".join(
        parts
    ) + f"--{boundary}--\r\n".encode()


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerThread]:
    rt = make_runtime(
        max_pixels=500_000, max_body_bytes=1024 * 1024, max_concurrent=8, references=MemoryStore()
    )
    with ServerThread(rt) as s:
        yield s
    counted = [
        (sample.labels, sample.value)
        for family in rt.metrics.registry.collect()
        for sample in family.samples
        if sample.name == "edged_http_requests_total"
    ]
    assert [c for c in counted if c[0]["status"].startswith("5")] == []
    statuses = {c[0]["status"] for c in counted}
    assert "415" in statuses, statuses
    assert any(s.startswith("2") for s in statuses), statuses


def _post_paths(srv: ServerThread) -> list[str]:
    assert srv.app is not None
    recipe = next(iter(srv.runtime.settings.recipes))
    paths = set()
    for route in srv.app.router.routes():
        if route.method != "POST":
            continue
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if path:
            paths.add(path.replace("{recipe}", recipe).replace("{camera}", "cam1"))
    return sorted(paths)


FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
    derandomize=True,
)


@FUZZ
@given(data=st.data())
def test_every_post_route_never_5xx(srv: ServerThread, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(_post_paths(srv)))
    encoding, body = data.draw(encoded())
    shape = data.draw(st.sampled_from(["raw", "multipart", "multipart2"]))
    headers = {"Content-Type": "image/png"}
    if shape != "raw":
        names = ["image"] if shape == "multipart" else ["image1", "image2"]
        if path == "/imgdiff":
            names = ["src", "target"]
        ctype, body = _multipart(dict.fromkeys(names, body))
        headers["Content-Type"] = ctype
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    query = "?width=8&height=8" if "raw_image" in path else ""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    try:
        conn.request("POST", path + query, body=body, headers=headers)
        resp = conn.getresponse()
        status, payload = resp.status, resp.read()
    finally:
        conn.close()
    assert status < 500, (path, encoding, status, payload[:300])
    tokens = [t.strip().lower() for t in (encoding or "").split(",") if t.strip()]
    if any(t != "identity" for t in tokens) and status != 401:
        # after the API key, any content coding is refused before the body is read
        assert status == 415, (path, encoding, status, payload[:200])
        assert b"Content-Encoding" in payload
    if status >= 400:
        json.loads(payload)  # every error is JSON, in its family's shape
