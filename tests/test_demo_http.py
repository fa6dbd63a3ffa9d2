"""The demo works end to end over HTTP: ``analyze_image`` gives a real verdict.

A synthetic line with ``auto_teach`` also teaches camera ``http`` (HTTP analyze
requests) with its good parts, so the quick start's curl call is judged against the
line's references instead of answering ``error``. Failed parts are kept on disk and
listed by the admin API.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import cv2
import numpy as np
from _daemon_helpers import wait_for

from edged.config import load_settings
from edged.daemon import Daemon
from edged.imaging.png_write import encode_png
from edged.sources.synthetic import SyntheticLine


def _doc(tmp: Any, **http: Any) -> dict[str, Any]:
    return {
        "node_id": "demo",
        "state_dir": str(tmp / "state"),
        "references_dir": str(tmp / "refs"),
        "cameras": {
            "line1": {
                "recipe": "label",
                "fps": 20,
                "synthetic": {
                    "width": 320,
                    "height": 256,
                    "pixel_format": "BGR8",
                    "defect_rate": 0.5,
                    "seed": 5,
                    "auto_teach": 3,
                },
            }
        },
        "recipes": {
            "label": {
                "checks": {"quality": {}, "difference": {}},
                "limits": ['quality.encoding == "OK"', "difference.count == 0"],
            }
        },
        "mqtt": {"enabled": False},
        "http": {"host": "127.0.0.1", "port": 0, **http},
        "failures": {"keep_per_camera": 4},
        "logging": {"summary_interval_s": 0},
    }


async def test_analyze_image_on_the_demo_gives_a_real_verdict(write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(write_config(_doc(tmp_path)))
    daemon = Daemon(settings)
    await daemon.start()
    try:
        store = daemon.runtime.references
        http_ref = store.current("label", "http")
        assert http_ref is not None
        assert (http_ref.source, http_ref.n_images) == ("auto_teach", 3)
        assert settings.cameras["line1"].synthetic is not None
        line = SyntheticLine(settings.cameras["line1"].synthetic)
        url = f"http://127.0.0.1:{daemon.http_port}"
        async with aiohttp.ClientSession() as session:
            verdicts = {}
            for defect in (False, True):
                part = line.render(4242, defect=defect).image
                async with session.post(
                    f"{url}/analyze_image?response_type=context", data=encode_png(part)
                ) as resp:
                    assert resp.status == 200
                    ctx = await resp.json()
                verdicts[defect] = (ctx["verdict"], ctx["camera"])
            assert verdicts == {False: ("pass", "http"), True: ("fail", "http")}

            # The quick start: a live frame from the page's camera, analyzed.
            await wait_for(lambda: daemon.runtime.results.latest("line1"), timeout_s=20)
            async with session.get(f"{url}/api/v1/cameras/line1/frame.jpg") as resp:
                jpeg = await resp.read()
            frame = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            assert frame.shape == (256, 320, 3)
            async with session.post(
                f"{url}/analyze_image?response_type=context", data=jpeg
            ) as resp:
                assert (await resp.json())["verdict"] in ("pass", "fail")

            # Failed parts of the line are kept, at most 4.
            await wait_for(lambda: len(daemon.runtime.failures.parts("line1")) >= 4, 30)
            async with session.get(f"{url}/api/v1/failures?camera=line1") as resp:
                listed = (await resp.json())["failures"]
            assert 1 <= len(listed) <= 4
            newest = listed[0]
            async with session.get(f"{url}/api/v1/failures/line1/{newest['id']}") as resp:
                result = await resp.json()
            assert result["verdict"] == "fail"
            assert result["ground_truth"]["defect"] is True
            async with session.get(f"{url}/api/v1/failures/line1/{newest['id']}/image.jpg") as r:
                annotated = cv2.imdecode(np.frombuffer(await r.read(), np.uint8), cv2.IMREAD_COLOR)
            box = result["regions"][0]
            edge = annotated[box["y"], box["x"] : box["x"] + box["width"]].astype(int)
            red = (edge[:, 2] > edge[:, 1] + 60) & (edge[:, 2] > edge[:, 0] + 60)
            assert red.mean() > 0.6  # the defect's box is drawn in red
    finally:
        await daemon.stop()


async def test_a_stored_http_reference_is_never_replaced(write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from edged.references import ReferenceStore

    settings = load_settings(write_config(_doc(tmp_path)))
    assert settings.cameras["line1"].synthetic is not None
    line = SyntheticLine(settings.cameras["line1"].synthetic)
    ReferenceStore(settings.references_dir).teach(
        "label", "http", [line.render(7, defect=False).image]
    )
    daemon = Daemon(settings)
    await daemon.start()
    try:
        info = daemon.runtime.references.current("label", "http")
        assert (info.version, info.n_images) == (1, 1)
    finally:
        await daemon.stop()


async def test_a_failure_ring_that_cannot_write_does_not_stop_the_line(  # type: ignore[no-untyped-def]
    write_config, tmp_path, caplog
) -> None:
    import logging

    from _daemon_helpers import RecordingSink

    doc = _doc(tmp_path)
    doc["cameras"]["line1"]["synthetic"]["defect_rate"] = 1.0
    doc["http"] = {"enabled": False}
    (tmp_path / "state" / "failures").mkdir(parents=True)
    (tmp_path / "state" / "failures" / "line1").write_text("a file where a directory goes")
    caplog.set_level(logging.ERROR, logger="edged.line")
    sink = RecordingSink()
    daemon = Daemon(load_settings(write_config(doc)), sink=sink)
    await daemon.start()
    try:
        await wait_for(lambda: sum(r.verdict == "fail" for r in sink.results) >= 5, 30)
    finally:
        await daemon.stop()
    errors = {r.getMessage() for r in caplog.records if r.name == "edged.line"}
    assert errors  # said so ...
    assert all(m.startswith("camera line1: failed parts cannot be kept: ") for m in errors)
    assert len(errors) == 1  # ... in the same words each time (the log's repeat window)
