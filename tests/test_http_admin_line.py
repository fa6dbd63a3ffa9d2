"""Admin API against a real camera line: edged's CameraLine fed by the synthetic source."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import cv2
import numpy as np
import pytest
import requests
from _http_helpers import MemoryStore, ServerThread, make_runtime

from edged.config import CameraConfig, SyntheticConfig
from edged.runtime.line import CameraLine
from edged.sources.synthetic import SyntheticSource

API = "/api/v1"


def wait_for(cond: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[ServerThread, CameraLine, MemoryStore]]:
    store = MemoryStore()
    rt = make_runtime(references=store)
    cfg = CameraConfig(
        recipe="spots", fps=25, synthetic=SyntheticConfig(width=256, height=192, defect_rate=0.5)
    )
    rt.settings.cameras["cam1"] = cfg
    with ServerThread(rt) as srv:
        line = CameraLine("cam1", cfg, SyntheticSource("cam1", cfg), rt, sink=None)
        rt.cameras["cam1"] = line

        async def start() -> list[asyncio.Task[Any]]:
            return [
                asyncio.create_task(coro, name=f"{name}:cam1")
                for name, coro in (
                    ("acquire", line.acquire()),
                    ("inspect", line.inspect()),
                    ("emit", line.emit()),
                )
            ]

        tasks = srv.call(start())
        try:
            wait_for(lambda: len(rt.results.latest("cam1", 3)) == 3)
            yield srv, line, store
        finally:

            async def stop() -> None:
                line.intake_open = False
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

            srv.call(stop())


def get(srv: ServerThread, path: str, **kw: Any) -> requests.Response:
    return requests.get(srv.url + API + path, timeout=10, **kw)


def test_live_camera_state_and_frame(live: tuple[ServerThread, CameraLine, Any]) -> None:
    srv, _, _ = live
    (cam,) = get(srv, "/cameras").json()["cameras"]
    assert cam["id"] == "cam1"
    assert cam["running"] is True
    assert cam["source"] == "synthetic"
    assert cam["state"]["connected"] is True
    assert cam["state"]["frames"] >= 3
    assert cam["details"] == {}  # the synthetic source has nothing to add
    assert cam["last_result"]["camera"] == "cam1"
    assert cam["last_result"]["verdict"] in ("pass", "fail")
    resp = get(srv, "/cameras/cam1/frame.jpg")
    assert resp.status_code == 200
    img = cv2.imdecode(np.frombuffer(resp.content, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (192, 256, 3)
    assert img.std() > 5  # a rendered scene, not a blank frame


def test_live_results_in_order(live: tuple[ServerThread, CameraLine, Any]) -> None:
    srv, _, _ = live
    results = get(srv, "/results/cam1", params={"n": "3"}).json()["results"]
    assert len(results) == 3
    seqs = [r["seq"] for r in results]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 3
    assert all(r["frame"]["width"] == 256 for r in results)
    latest = get(srv, "/results").json()["results"]["cam1"]
    assert latest["seq"] >= seqs[-1]


def test_live_recipe_switch_reaches_the_line(live: tuple[ServerThread, CameraLine, Any]) -> None:
    srv, line, _ = live
    resp = requests.put(
        f"{srv.url}{API}/cameras/cam1/recipe", json={"recipe": "spots_heat"}, timeout=10
    )
    assert resp.json()["previous"] == "spots"
    assert line.recipe == "spots_heat"
    wait_for(lambda: srv.runtime.results.latest("cam1")[-1].recipe == "spots_heat")
    requests.put(f"{srv.url}{API}/cameras/cam1/recipe", json={"recipe": "spots"}, timeout=10)
    assert line.recipe == "spots"


def test_live_trigger_on_a_free_running_source_is_400(
    live: tuple[ServerThread, CameraLine, Any],
) -> None:
    srv, _, _ = live
    resp = requests.post(f"{srv.url}{API}/cameras/cam1/trigger", timeout=10)
    assert resp.status_code == 400
    assert "software trigger" in resp.json()["error"]


def test_live_teach_stores_the_next_frames(
    live: tuple[ServerThread, CameraLine, MemoryStore],
) -> None:
    srv, _, store = live
    resp = requests.post(f"{srv.url}{API}/cameras/cam1/teach", json={"frames": 2}, timeout=30)
    assert resp.status_code == 201, resp.text
    assert resp.json()["recipe"] == "spots"
    version = store.active[("spots", "cam1")]
    assert resp.json()["taught"] == [version]
    images = dict(store.versions[("spots", "cam1")])[version]
    assert len(images) == 2
    assert all(img.shape == (192, 256, 3) for img in images)
    listed = get(srv, "/references/spots/cam1").json()
    assert listed["active"] == version
