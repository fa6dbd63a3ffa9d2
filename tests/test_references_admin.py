"""The real reference store behind the HTTP admin API (/api/v1/references)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import requests
from _http_helpers import ServerThread, make_runtime
from _refs_helpers import capture, world

from edged.http.admin import ReferenceAdmin
from edged.references import ReferenceStore

API = "/api/v1/references"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, ReferenceStore]]:
    store = ReferenceStore(tmp_path_factory.mktemp("refs"))
    assert isinstance(store, ReferenceAdmin)
    with ServerThread(make_runtime(references=store)) as srv:
        yield srv, store


def _png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def call(srv: ServerThread, method: str, path: str, **kw: Any) -> requests.Response:
    return requests.request(method, srv.url + API + path, timeout=60, **kw)


def test_teach_list_rollback_delete_over_http(env: tuple[ServerThread, ReferenceStore]) -> None:
    srv, store = env
    wld = world((320, 240), seed=61)
    goods = [capture(wld, dx=0.3 * i, noise=1.0, seed=i) for i in range(3)]
    files = [("images", (f"{i}.png", _png(g), "image/png")) for i, g in enumerate(goods)]
    resp = call(srv, "POST", "/spots/http", files=files[:1])
    assert resp.status_code == 201, resp.text
    assert resp.json() == {"recipe": "spots", "camera": "http", "version": "v1", "images": 1}
    resp = call(srv, "POST", "/spots/http", files=files)
    assert resp.json()["version"] == "v2"
    prepared = store.prepared("spots", "http")
    assert prepared is not None
    assert prepared.n_images == 3

    (entry,) = call(srv, "GET", "").json()["references"]
    assert (entry["recipe"], entry["camera"], entry["active"]) == ("spots", "http", "v2")
    assert [(v["version"], v["images"], v["kind"]) for v in entry["versions"]] == [
        ("v1", 1, "single"),
        ("v2", 3, "variation"),
    ]
    assert call(srv, "GET", "/spots/http").json()["active"] == "v2"

    resp = call(srv, "POST", "/spots/http/rollback", json={})
    assert resp.json()["active"] == "v1"
    back = store.prepared("spots", "http")
    assert back is not None
    assert back.n_images == 1
    assert (
        call(srv, "POST", "/spots/http/rollback", json={"version": "v2"}).json()["active"] == "v2"
    )
    resp = call(srv, "POST", "/spots/http/rollback", json={"version": "v9"})
    assert resp.status_code == 404
    assert "expected a version in [1, 2], got 9" in resp.json()["error"]

    resp = call(srv, "DELETE", "/spots/http/v2")
    assert resp.status_code == 400
    assert "v2 is current" in resp.json()["error"]
    assert call(srv, "DELETE", "/spots/http/v1").status_code == 200
    assert [v["version"] for v in store.entries()[0]["versions"]] == ["v2"]
    assert call(srv, "DELETE", "/spots/http").status_code == 200
    assert store.entries() == []
    assert store.prepared("spots", "http") is None


def test_unusable_uploads_are_refused_with_the_reason(
    env: tuple[ServerThread, ReferenceStore], tmp_path: Path
) -> None:
    srv, store = env
    a = capture(world((320, 240), seed=62), noise=1.0)
    b = capture(world((320, 240), seed=63), noise=1.0)  # another part: does not register
    files = [
        ("images", ("a.png", _png(a), "image/png")),
        ("images", ("b.png", _png(b), "image/png")),
    ]
    resp = call(srv, "POST", "/spots/http", files=files)
    assert resp.status_code == 400
    assert "reference image 1 does not register onto image 0" in resp.json()["error"]
    assert store.current("spots", "http") is None
