"""The official PEKAT client (pekat-vision-sdk 2.3.3), unchanged, against edged's real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from _http_helpers import (
    SPOT_XYWH,
    ServerThread,
    jpeg_bytes,
    make_runtime,
    part_image,
    png_bytes,
)
from packaging.version import Version
from PekatVisionSDK import Instance

from edged._version import __version__

RESPONSE_TYPES = ("context", "image", "annotated_image", "heatmap")
KEY = "s3cret-key"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(make_runtime()) as srv:
        yield srv


def _instance(port: int, **kwargs: object) -> Instance:
    return Instance(host="127.0.0.1", port=port, already_running=True, **kwargs)


def _cleanup(inst: Instance) -> None:
    # The SDK never unlinks its shared-memory block; do it so tests leave /dev/shm clean.
    inst._shm.close()
    inst._shm.unlink()


@pytest.fixture
def sdk(server: ServerThread) -> Iterator[Instance]:
    inst = _instance(server.port)
    yield inst
    _cleanup(inst)


def _requests_on(srv: ServerThread, route: str, status: str = "200") -> float:
    value = srv.runtime.metrics.registry.get_sample_value(
        "edged_http_requests_total", {"route": route, "status": status}
    )
    return value or 0.0


def _assert_spot(ctx: dict, *, tolerance_px: int = 0) -> None:
    assert ctx["result"] is False
    assert ctx["verdict"] == "fail"
    assert ctx["reasons"] == ["dark_spots.count = 1, limit <= 0"]
    (rect,) = ctx["detectedRectangles"]
    for key, want in zip(("x", "y", "width", "height"), SPOT_XYWH, strict=True):
        assert abs(rect[key] - want) <= tolerance_px, (key, rect)
    assert rect["classNames"] == [{"label": "spot"}]
    assert 0.7 < rect["confidence"] <= 1.0
    (region,) = ctx["regions"]
    assert (region["x"], region["y"]) == (rect["x"], rect["y"])


def test_version_lets_the_sdk_use_shared_memory(sdk: Instance) -> None:
    assert sdk.ping().status_code == 200
    assert sdk.server_version >= Version("3.18.0")
    assert sdk.server_version.local == f"edged.{__version__}"


def test_file_path_with_a_defect(sdk: Instance, tmp_path: Path) -> None:
    path = tmp_path / "part.png"
    path.write_bytes(png_bytes(part_image(defect=True)))
    res = sdk.analyze(path, data="lot-42")
    assert res.image_bytes is None
    ctx = res.context
    _assert_spot(ctx)
    assert ctx["data"] == "lot-42"
    assert ctx["camera"] == "http"
    assert ctx["recipe"] == "spots"
    assert ctx["frame"]["width"] == 64
    assert ctx["frame"]["height"] == 48
    assert ctx["frame"]["pixel_format"] == "PNG"
    assert ctx["imageShape"] == {"height": 48, "width": 64}
    assert 0 < ctx["completeTime"] < 5
    assert ctx["schema"] == "edged.result.v1"
    stages = ctx["timings_ms"]
    assert {"receive", "queue", "decode", "inspect", "check.dark_spots"} <= set(stages)
    assert 0 <= stages["check.dark_spots"] <= stages["inspect"] <= ctx["completeTime"] * 1000


def test_good_part_passes(sdk: Instance) -> None:
    ctx = sdk.analyze(png_bytes(part_image(defect=False))).context
    assert ctx["result"] is True
    assert ctx["verdict"] == "pass"
    assert ctx["detectedRectangles"] == []
    assert ctx["checks"]["dark_spots"] == {"count": 0, "area_px": 0}


def test_jpeg_bytes(sdk: Instance) -> None:
    ctx = sdk.analyze(jpeg_bytes(part_image(defect=True)), data="j").context
    _assert_spot(ctx, tolerance_px=1)
    assert ctx["frame"]["pixel_format"] == "JPEG"


def test_numpy_through_shared_memory(sdk: Instance, server: ServerThread) -> None:
    before = _requests_on(server, "/analyze_image_shared_memory")
    ctx = sdk.analyze(part_image(defect=True), data="shm").context
    _assert_spot(ctx)
    assert ctx["frame"]["pixel_format"] == "BGR8"
    assert _requests_on(server, "/analyze_image_shared_memory") == before + 1
    # A grey image of another shape makes the SDK create a new block; edged reads it as Mono8.
    grey = part_image(defect=True, grey=True, size_wh=(80, 40))
    ctx = sdk.analyze(grey).context
    assert ctx["frame"]["pixel_format"] == "Mono8"
    assert ctx["imageShape"] == {"height": 40, "width": 80}
    _assert_spot(ctx)


def test_numpy_as_raw_body_when_shared_memory_is_off() -> None:
    with ServerThread(make_runtime(shared_memory=False)) as srv:
        inst = _instance(srv.port)
        try:
            assert inst.server_version < Version("3.18.0")
            ctx = inst.analyze(part_image(defect=True), data="raw").context
            _assert_spot(ctx)
            assert ctx["data"] == "raw"
            assert _requests_on(srv, "/analyze_raw_image") == 1
            assert _requests_on(srv, "/analyze_image_shared_memory") == 0
        finally:
            _cleanup(inst)


def _jet(level: int) -> np.ndarray:
    return cv2.applyColorMap(np.array([[level]], np.uint8), cv2.COLORMAP_JET)[0, 0]


@pytest.mark.parametrize("in_body", [True, False], ids=["context_in_body", "context_in_header"])
@pytest.mark.parametrize("response_type", RESPONSE_TYPES)
def test_every_response_type(server: ServerThread, response_type: str, in_body: bool) -> None:
    inst = _instance(server.port, context_in_body=in_body)
    try:
        image = part_image(defect=True)
        res = inst.analyze(
            png_bytes(image), response_type=response_type, data=f"rt-{response_type}"
        )
    finally:
        _cleanup(inst)
    _assert_spot(res.context)
    assert res.context["data"] == f"rt-{response_type}"
    if response_type == "context":
        assert res.image_bytes is None
        return
    out = res.get_decoded_image()
    assert out.shape == image.shape
    x, y, w, h = SPOT_XYWH
    if response_type == "image":
        np.testing.assert_array_equal(out, image)  # lossless: the image as inspected
    elif response_type == "annotated_image":
        assert tuple(out[y, x + w // 2]) == (0, 0, 255)  # top edge of the red box
        assert tuple(out[y + h - 1, x + 1]) == (0, 0, 255)  # bottom edge
        np.testing.assert_array_equal(out[40:, 50:], image[40:, 50:])  # untouched elsewhere
    else:  # heatmap painted from the region: its score inside the box, 0 outside
        score = res.context["detectedRectangles"][0]["confidence"]
        np.testing.assert_array_equal(out[y + 3, x + 3], _jet(round(score * 255)))
        np.testing.assert_array_equal(out[2, 2], _jet(0))


def test_heatmap_from_a_check(server: ServerThread) -> None:
    inst = _instance(server.port)
    inst.session.params = {"recipe": "spots_heat"}  # plain requests API: pick the recipe
    try:
        res = inst.analyze(png_bytes(part_image(defect=True)), response_type="heatmap")
        ann = inst.analyze(png_bytes(part_image(defect=True)), response_type="annotated_image")
    finally:
        _cleanup(inst)
    assert res.context["recipe"] == "spots_heat"
    out = res.get_decoded_image()
    x, y, _, _ = SPOT_XYWH
    # heat = (threshold 110 - grey 20) / 110 at the spot; 0 on the light background
    np.testing.assert_array_equal(out[y + 3, x + 3], _jet(round(90 / 110 * 255)))
    np.testing.assert_array_equal(out[2, 2], _jet(0))
    # the annotated image blends that heat in: the spot's inside turns reddish, background stays
    a = ann.get_decoded_image()
    assert a[y + 3, x + 3, 2] > 100
    assert a[y + 3, x + 3, 0] < 60
    np.testing.assert_array_equal(a[40:, 50:], part_image(defect=True)[40:, 50:])


def test_api_key_required_and_accepted() -> None:
    with ServerThread(make_runtime(api_key=KEY)) as srv:
        inst = _instance(srv.port)
        try:
            assert inst.ping().status_code == 200  # ping and version stay open
            denied = inst.analyze(png_bytes(part_image(defect=True)))
            assert denied.context["status"] == 401
            assert "api key" in denied.context["error"]
            denied_img = inst.analyze(part_image(defect=True), response_type="annotated_image")
            assert denied_img.image_bytes is None
            assert denied_img.context["status"] == 401

            inst.session.params = {"api_key": KEY}  # how SDK 2.x users send PEKAT's api_key
            _assert_spot(inst.analyze(png_bytes(part_image(defect=True))).context)
            _assert_spot(inst.analyze(part_image(defect=True)).context)  # shared memory
            res = inst.analyze(part_image(defect=True), response_type="image")
            assert res.get_decoded_image().shape == (48, 64, 3)

            inst.session.params = {"api_key": KEY + "x"}
            assert inst.analyze(part_image(defect=False)).context["status"] == 401
        finally:
            _cleanup(inst)


def test_results_are_recorded(server: ServerThread, sdk: Instance) -> None:
    ctx = sdk.analyze(png_bytes(part_image(defect=True)), data="rec").context
    latest = server.runtime.results.latest("http")[-1]
    assert latest.id == ctx["id"]
    assert latest.seq == ctx["seq"]
    assert latest.verdict == "fail"
    ctx2 = sdk.analyze(png_bytes(part_image(defect=False))).context
    assert ctx2["seq"] == ctx["seq"] + 1
    assert ctx2["id"] != ctx["id"]
