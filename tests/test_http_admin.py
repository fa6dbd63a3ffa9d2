"""Admin API under /api/v1 against edged's real server.

The camera lines and the reference store belong to other modules (daemon,
references.py); here they are small in-memory implementations of the protocols
the admin API is written against (CameraControl, ReferenceAdmin).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np
import pytest
import requests
from _http_helpers import (
    MemoryStore,
    ServerThread,
    jpeg_bytes,
    make_runtime,
    part_image,
    png_bytes,
)

from edged.config import CameraConfig
from edged.core.errors import InputError
from edged.http.admin import ReferenceAdmin
from edged.sources.base import SourceState

API = "/api/v1"


class Line:
    """A camera line as the daemon exposes it (CameraControl)."""

    def __init__(self, camera: str, recipe: str, *, triggerable: bool = True) -> None:
        self.camera = camera
        self._recipe = recipe
        self.triggers = 0
        self.triggerable = triggerable
        self.image: np.ndarray | None = None
        self.taught: list[tuple[str, int]] = []

    @property
    def recipe(self) -> str:
        return self._recipe

    def source_state(self) -> SourceState:
        return SourceState(connected=True, frames=12, fps=5.0, device="synthetic:label")

    def source_details(self) -> dict[str, Any]:
        return {"pid": 4242, "frames_leased": 11, "frames_copied": 1}

    def last_image(self) -> np.ndarray | None:
        return self.image

    async def trigger(self) -> None:
        if not self.triggerable:
            msg = f"camera {self.camera!r}: expected a source with a software trigger, got none"
            raise InputError(msg)
        self.triggers += 1

    async def set_recipe(self, recipe: str) -> None:
        self._recipe = recipe

    async def teach(self, recipe: str, frames: int) -> list[str]:
        self.taught.append((recipe, frames))
        return [f"{recipe}/{self.camera}/v{len(self.taught)}"]


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[ServerThread, dict[str, Line], MemoryStore]]:
    store = MemoryStore()
    assert isinstance(store, ReferenceAdmin)
    rt = make_runtime(references=store, api_key="adm")
    rt.settings.cameras.update(
        {
            "cam1": CameraConfig(recipe="spots"),
            "cam2": CameraConfig(recipe="spots"),
            "cam3": CameraConfig(recipe="spots", enabled=False),
        }
    )
    lines = {"cam1": Line("cam1", "spots"), "cam2": Line("cam2", "spots_heat", triggerable=False)}
    rt.cameras.update(lines)
    with ServerThread(rt) as srv:
        yield srv, lines, store


def call(srv: ServerThread, method: str, path: str, **kw: Any) -> requests.Response:
    headers = kw.pop("headers", {"X-API-Key": "adm"})
    return requests.request(method, srv.url + API + path, headers=headers, timeout=10, **kw)


def test_key_required_except_openapi(env: tuple[ServerThread, Any, Any]) -> None:
    srv = env[0]
    for path in ("/cameras", "/recipes", "/results", "/references"):
        resp = call(srv, "GET", path, headers={})
        assert resp.status_code == 401
        assert resp.json()["status"] == 401
    assert call(srv, "GET", "/cameras", params={"api_key": "adm"}, headers={}).status_code == 200
    assert call(srv, "GET", "/openapi.json", headers={}).status_code == 200


def test_cameras_listed_with_state(env: tuple[ServerThread, Any, Any]) -> None:
    srv = env[0]
    cams = {c["id"]: c for c in call(srv, "GET", "/cameras").json()["cameras"]}
    assert sorted(cams) == ["cam1", "cam2", "cam3"]
    assert cams["cam1"]["running"] is True
    assert cams["cam1"]["state"]["fps"] == 5.0
    assert cams["cam1"]["state"]["connected"] is True
    assert cams["cam1"]["details"] == {"pid": 4242, "frames_leased": 11, "frames_copied": 1}
    assert cams["cam2"]["recipe"] == "spots_heat"
    none = {"pass": 0, "fail": 0, "error": 0}
    assert cams["cam3"] == {
        "id": "cam3", "running": False, "source": "synthetic", "recipe": "spots",
        "state": None, "details": None, "last_result": None,
        "verdicts": {
            "total": none,
            "last_minute": {**none, "per_min": 0.0, "fail_per": None},
            "last_hour": {**none, "per_min": 0.0, "fail_per": None},
        },
    }  # fmt: skip
    assert call(srv, "GET", "/cameras/cam1").json()["id"] == "cam1"
    resp = call(srv, "GET", "/cameras/nope")
    assert resp.status_code == 404
    assert "cam1" in resp.json()["error"]


def test_last_frame_as_jpeg(env: tuple[ServerThread, dict[str, Line], Any]) -> None:
    srv, lines, _ = env
    lines["cam1"].image = None
    assert call(srv, "GET", "/cameras/cam1/frame.jpg").status_code == 404
    lines["cam1"].image = np.full((30, 40, 3), (10, 200, 90), np.uint8)
    resp = call(srv, "GET", "/cameras/cam1/frame.jpg", params={"quality": "95"})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "image/jpeg"
    img = cv2.imdecode(np.frombuffer(resp.content, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (30, 40, 3)
    assert np.abs(img[15, 20].astype(int) - (10, 200, 90)).max() <= 3
    assert call(srv, "GET", "/cameras/cam1/frame.jpg", params={"quality": "0"}).status_code == 400
    assert call(srv, "GET", "/cameras/cam3/frame.jpg").status_code == 404  # not running


def test_trigger(env: tuple[ServerThread, dict[str, Line], Any]) -> None:
    srv, lines, _ = env
    before = lines["cam1"].triggers
    resp = call(srv, "POST", "/cameras/cam1/trigger")
    assert resp.status_code == 202
    assert resp.json() == {"camera": "cam1", "triggered": True}
    assert lines["cam1"].triggers == before + 1
    resp = call(srv, "POST", "/cameras/cam2/trigger")
    assert resp.status_code == 400
    assert "software trigger" in resp.json()["error"]


def test_recipe_switch(env: tuple[ServerThread, dict[str, Line], Any]) -> None:
    srv, lines, _ = env
    assert call(srv, "GET", "/cameras/cam1/recipe").json() == {"camera": "cam1", "recipe": "spots"}
    resp = call(srv, "PUT", "/cameras/cam1/recipe", json={"recipe": "spots_heat"})
    assert resp.json() == {"camera": "cam1", "recipe": "spots_heat", "previous": "spots"}
    assert lines["cam1"].recipe == "spots_heat"
    recipes = {r["name"]: r for r in call(srv, "GET", "/recipes").json()["recipes"]}
    assert recipes["spots_heat"]["cameras"] == ["cam1", "cam2"]
    assert call(srv, "PUT", "/cameras/cam1/recipe", json={"recipe": "spots"}).status_code == 200
    bad = call(srv, "PUT", "/cameras/cam1/recipe", json={"recipe": "nope"})
    assert bad.status_code == 404
    assert "'nope'" in bad.json()["error"]
    assert call(srv, "PUT", "/cameras/cam1/recipe", json={"recipe": 3}).status_code == 400
    assert call(srv, "PUT", "/cameras/cam1/recipe", data=b"{not json").status_code == 400
    assert call(srv, "PUT", "/cameras/cam1/recipe", json=["spots"]).status_code == 400


def test_recipes(env: tuple[ServerThread, Any, Any]) -> None:
    srv = env[0]
    doc = call(srv, "GET", "/recipes").json()
    assert doc["http_default"] == "spots"
    spots = call(srv, "GET", "/recipes/spots").json()
    assert spots["checks"] == ["dark_spots"]
    assert spots["limits"] == ["dark_spots.count <= 0"]
    assert spots["http_default"] is True
    assert spots["needs_reference"] is False
    assert call(srv, "GET", "/recipes/none").status_code == 404


def test_camera_teach(env: tuple[ServerThread, dict[str, Line], Any]) -> None:
    srv, lines, _ = env
    resp = call(srv, "POST", "/cameras/cam1/teach", json={"frames": 5})
    assert resp.status_code == 201
    assert resp.json()["frames"] == 5
    assert resp.json()["recipe"] == "spots"
    assert lines["cam1"].taught[-1] == ("spots", 5)
    for body in ({"frames": 0}, {"frames": "5"}, {"frames": True}, {"recipe": "x"}):
        assert call(srv, "POST", "/cameras/cam1/teach", json=body).status_code == 400


def test_results_latest_per_camera(env: tuple[ServerThread, Any, Any]) -> None:
    srv = env[0]
    png = png_bytes(part_image(defect=True))
    ctx = requests.post(srv.url + "/analyze_image?api_key=adm", data=png, timeout=10).json()
    latest = call(srv, "GET", "/results").json()["results"]
    assert latest["http"]["id"] == ctx["id"]
    assert latest["http"]["verdict"] == "fail"
    many = call(srv, "GET", "/results/http", params={"n": "2"}).json()["results"]
    assert many[-1]["id"] == ctx["id"]
    assert len(many) <= 2
    assert call(srv, "GET", "/results/cam1").json()["results"] == []
    assert call(srv, "GET", "/results/http", params={"n": "51"}).status_code == 400
    assert call(srv, "GET", "/results/ghost").status_code == 404


def test_references_teach_list_rollback_delete(
    env: tuple[ServerThread, Any, MemoryStore],
) -> None:
    srv, _, store = env
    png = png_bytes(part_image(defect=False))
    one = call(srv, "POST", "/references/spots/cam1", data=png)
    assert one.status_code == 201, one.text
    assert one.json() == {"recipe": "spots", "camera": "cam1", "version": "1", "images": 1}
    files = [
        ("images", ("a.png", png, "image/png")),
        ("images", ("b.jpg", jpeg_bytes(part_image(defect=False)), "image/jpeg")),
        ("note", (None, b"form field, not an image")),
    ]
    two = call(srv, "POST", "/references/spots/cam1", files=files)
    assert two.status_code == 201, two.text
    assert two.json()["images"] == 2
    assert two.json()["version"] == "2"
    stored = store.versions[("spots", "cam1")][1][1]
    assert stored[0].shape == (48, 64, 3)
    np.testing.assert_array_equal(stored[0], part_image(defect=False))

    entry = call(srv, "GET", "/references/spots/cam1").json()
    assert entry["active"] == "2"
    assert [v["images"] for v in entry["versions"]] == [1, 2]
    listed = call(srv, "GET", "/references", params={"camera": "cam1"}).json()["references"]
    assert [(e["recipe"], e["camera"]) for e in listed] == [("spots", "cam1")]
    assert call(srv, "GET", "/references", params={"camera": "cam2"}).json()["references"] == []

    back = call(srv, "POST", "/references/spots/cam1/rollback")
    assert back.json()["active"] == "1"
    fwd = call(srv, "POST", "/references/spots/cam1/rollback", json={"version": "2"})
    assert fwd.json()["active"] == "2"
    assert (
        call(srv, "POST", "/references/spots/cam1/rollback", json={"version": 2}).status_code == 400
    )
    assert (
        call(srv, "POST", "/references/spots/cam1/rollback", json={"version": "9"}).status_code
        == 404
    )

    assert call(srv, "DELETE", "/references/spots/cam1/1").json()["deleted"] == "1"
    assert [
        v["version"] for v in call(srv, "GET", "/references/spots/cam1").json()["versions"]
    ] == ["2"]
    assert call(srv, "DELETE", "/references/spots/cam1").json()["deleted"] == "all"
    assert call(srv, "GET", "/references/spots/cam1").status_code == 404


def test_reference_uploads_validated(env: tuple[ServerThread, Any, Any]) -> None:
    srv = env[0]
    assert call(srv, "POST", "/references/nope/cam1", data=b"x").status_code == 404
    assert call(srv, "POST", "/references/spots/camX", data=b"x").status_code == 404
    bad = call(srv, "POST", "/references/spots/cam1", data=b"not an image")
    assert bad.status_code == 415
    assert "image 1 of 1" in bad.json()["error"]
    empty = call(srv, "POST", "/references/spots/cam1", data=b"")
    assert empty.status_code == 400
    files = [
        ("images", ("a.png", png_bytes(part_image(defect=False)), "image/png")),
        ("images", ("b.png", b"\x89PNG\r\n\x1a\ntruncated", "image/png")),
    ]
    two = call(srv, "POST", "/references/spots/cam1", files=files)
    assert two.status_code == 400
    assert "image 2 of 2" in two.json()["error"]
    # http is a camera too: references for HTTP analyses
    assert (
        call(
            srv, "POST", "/references/spots/http", data=png_bytes(part_image(defect=False))
        ).status_code
        == 201
    )


def test_no_reference_store_is_503() -> None:
    with ServerThread(make_runtime()) as srv:
        for method, path in (
            ("GET", "/references"),
            ("GET", "/references/spots/http"),
            ("POST", "/references/spots/http"),
            ("POST", "/references/spots/http/rollback"),
            ("DELETE", "/references/spots/http"),
        ):
            resp = call(srv, method, path, data=b"")
            assert resp.status_code == 503, (method, path)
            assert resp.json()["error"] == "no reference store configured"


def test_openapi_lists_every_route(env: tuple[ServerThread, Any, Any]) -> None:
    srv = env[0]
    doc = call(srv, "GET", "/openapi.json", headers={}).json()
    assert doc["openapi"] == "3.1.0"
    assert srv.app is not None
    for route in srv.app.router.routes():
        if route.method == "HEAD":
            continue
        path = route.resource.canonical if route.resource else ""
        assert path in doc["paths"], path
        assert route.method.lower() in doc["paths"][path], (route.method, path)
    for service in (
        "imageQuality",
        "objectMaskDetection",
        "contours",
        "edges",
        "colorPalette",
        "heatMap",
        "distance",
        "differences",
        "alignmentMatrix",
    ):
        assert f"/v2/services/image/{service}" in doc["paths"]
    assert "/imgdiff" in doc["paths"]
    assert json.dumps(doc)  # plain JSON
