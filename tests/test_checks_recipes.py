"""The image checks inside recipes: options validated at config time, limits through
the Inspector, regions and heat maps in the Inspection, JSON-clean Results."""

from __future__ import annotations

import json
from typing import Any

import cv2
import jsonschema
import numpy as np
import pytest
from _checks_helpers import disk_scene

from edged.checks import CheckContext, registry
from edged.config import RecipeConfig
from edged.core.errors import ConfigError
from edged.core.result import FrameInfo, json_schema
from edged.recipes.inspection import Inspector, build_result
from edged.recipes.validate import validate_recipe

CTX = CheckContext(recipe="r", camera="cam")


def _inspect(checks: dict[str, Any], limits: list[str], image: np.ndarray) -> Any:
    recipe = RecipeConfig(checks=checks, limits=limits)
    return Inspector("r", recipe).inspect(image, context=CTX)


def _textured(seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(40, 216, (48, 64), dtype=np.uint8), (320, 240))
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)


def test_every_image_check_is_registered() -> None:
    names = set(registry())
    assert {"quality", "mask", "contours", "edges", "palette", "heatmap"} <= names


QUALITY_LIMITS = [
    'quality.encoding == "OK"',
    "quality.brightness.over_per <= 2",
    "quality.sharpness.val_norm >= 0.3",
]


def test_quality_limits_pass_on_a_good_image() -> None:
    out = _inspect({"quality": {}}, QUALITY_LIMITS, _textured())
    assert out.verdict == "pass", out.reasons
    assert out.figures["quality"]["sharpness"]["val_norm"] >= 0.3


def test_quality_limits_name_the_over_exposure() -> None:
    img = _textured()
    img[:24] = 255  # 10 % of the rows saturated
    out = _inspect({"quality": {}}, QUALITY_LIMITS, img)
    assert out.verdict == "fail"
    assert out.reasons == ("quality.brightness.over_per = 10, limit <= 2",)


def test_quality_limits_name_the_blur() -> None:
    out = _inspect({"quality": {}}, QUALITY_LIMITS, cv2.GaussianBlur(_textured(), (0, 0), 3))
    assert out.verdict == "fail"
    assert len(out.reasons) == 1
    assert out.reasons[0].startswith("quality.sharpness.val_norm = ")
    assert out.reasons[0].endswith("limit >= 0.3")


def test_quality_of_a_constant_image_fails_on_encoding() -> None:
    out = _inspect({"quality": {}}, QUALITY_LIMITS, np.full((50, 50), 10, np.uint8))
    assert out.verdict == "fail"
    assert out.reasons[0] == (
        'quality.encoding = "unusable: constant image (every pixel is 10)", limit == "OK"'
    )


def test_mask_area_limit_and_object_region() -> None:
    img, truth = disk_scene()
    area = int(truth.sum())
    checks = {"mask": {"algorithm": "OTSU_BIN_THRESHOLD"}}
    limits = [
        f"mask.area_px in [{area - 1500}, {area + 1500}]",
        "mask.components == 1",
        "mask.boundingBox.width in [238, 244]",
    ]
    ok = _inspect(checks, limits, img)
    assert ok.verdict == "pass", ok.reasons
    (region,) = ok.regions
    assert (region.label, region.check) == ("object", "mask")
    assert abs(region.x - 180) <= 2
    assert abs(region.width - 241) <= 3
    assert region.area_px == ok.figures["mask"]["area_px"]
    assert ok.figures["mask"]["mask"] is None  # no PNG unless asked
    small, _ = disk_scene(radius_px=60)
    bad = _inspect(checks, [f"mask.area_px in [{area - 1500}, {area + 1500}]"], small)
    assert bad.verdict == "fail"
    assert bad.reasons[0].startswith("mask.area_px = ")


def test_include_images_puts_the_png_in_the_figures() -> None:
    img, _ = disk_scene()
    out = _inspect({"mask": {"include_images": True}, "edges": {"include_images": True}}, [], img)
    assert isinstance(out.figures["mask"]["mask"], str)
    assert isinstance(out.figures["edges"]["edges"], str)


def test_contours_regions_and_count_limit() -> None:
    img = np.zeros((200, 300), np.uint8)
    cv2.rectangle(img, (20, 20), (79, 59), 255, -1)
    cv2.rectangle(img, (150, 100), (259, 179), 255, -1)
    limits = [
        "contours.count == 2",
        "contours.contours.0.area_px >= 8000",  # list items by index
        "contours.contours.1.boundingBox.width == 60",
    ]
    out = _inspect({"contours": {}}, limits, img)
    assert out.verdict == "pass", out.reasons
    boxes = [(r.x, r.y, r.width, r.height) for r in out.regions]
    assert boxes == [(150, 100, 110, 80), (20, 20, 60, 40)]  # largest first
    assert {r.label for r in out.regions} == {"contour"}


def test_heatmap_reaches_the_inspection() -> None:
    img = _textured()
    out = _inspect({"heatmap": {}, "palette": {"count": 3}}, ["palette.count == 3"], img)
    assert out.verdict == "pass", out.reasons
    assert out.heatmap is not None
    assert out.heatmap.shape == (240, 320)
    assert out.heatmap.dtype == np.float32
    assert out.figures["heatmap"]["heatmap"] is None


def test_result_with_every_check_is_valid_json_and_schema() -> None:
    img, _ = disk_scene()
    checks: dict[str, Any] = {
        name: {} for name in ("quality", "mask", "contours", "edges", "palette", "heatmap")
    }
    checks["quality"] = {"masks": True}
    out = _inspect(checks, ["edges.edge_fraction < 0.5"], img)
    assert out.verdict == "pass", out.reasons
    frame = FrameInfo(width=640, height=480, pixel_format="BGR8", seq=0, host_ts="x")
    result = build_result(out, node="n", camera="cam", seq=1, frame=frame)
    doc = json.loads(result.to_json())
    jsonschema.validate(doc, json_schema())
    assert set(doc["checks"]) == set(checks)
    assert isinstance(doc["checks"]["quality"]["brightness"]["over_mask"], str)
    assert set(doc["timings_ms"]) >= {f"check.{n}" for n in checks}


@pytest.mark.parametrize(
    ("checks", "shown"),
    [
        ({"mask": {"algorithm": "WATERSHED"}}, "mask.algorithm"),
        ({"mask": {"color_space": "G", "channel": 2}}, "channel for color_space G"),
        ({"edges": {"threshold_max": 600}}, "edges.threshold_max"),
        ({"edges": {"threshold_min": 300, "threshold_max": 200}}, "threshold_min <="),
        ({"quality": {"tolerance": 0.9}}, "quality.tolerance"),
        ({"palette": {"colours": 3}}, "palette.colours"),
        ({"heatmap": {"max_side_px": 8}}, "heatmap.max_side_px"),
        ({"contours": {"channel": "Q"}}, "channel for color_space HSV"),
    ],
)
def test_bad_options_are_config_errors(checks: dict[str, Any], shown: str) -> None:
    with pytest.raises(ConfigError, match=r"expected|Input should|Extra inputs") as err:
        validate_recipe("r", RecipeConfig(checks=checks))
    assert shown in str(err.value)


def test_options_are_case_tolerant_where_ltu_is() -> None:
    recipe = RecipeConfig(
        checks={"mask": {"algorithm": "sobel", "color_space": "hsv", "channel": "s"}}
    )
    insp = Inspector("r", recipe)
    img, _truth = disk_scene()
    out = insp.inspect(img, context=CTX)
    assert out.verdict == "pass"
    assert out.figures["mask"]["algorithm"] == "SOBEL"
    assert out.figures["mask"]["channel"] == "S"


@pytest.mark.parametrize(
    "shape", [(1, 1), (1, 5), (5, 1), (2, 2), (3, 3), (1, 1, 3), (2, 7, 3), (64, 1, 3)]
)
@pytest.mark.parametrize("fill", ["zeros", "noise"])
def test_degenerate_images_never_make_a_check_fail_to_run(
    shape: tuple[int, ...], fill: str
) -> None:
    image = (
        np.zeros(shape, np.uint8)
        if fill == "zeros"
        else np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    )
    checks: dict[str, Any] = {
        name: {"include_images": True} for name in ("mask", "edges", "heatmap")
    }
    checks |= {"quality": {"masks": True}, "contours": {}, "palette": {}}
    for algorithm in ("SOBEL", "BINNING", "OTSU_BIN_THRESHOLD"):
        checks["mask"]["algorithm"] = algorithm
        out = _inspect(checks, [], image)
        assert out.verdict == "pass", out.reasons
        assert set(out.figures) == set(checks)
