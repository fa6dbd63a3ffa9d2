"""The Inspector: checks run in order, limits give the verdict, errors never escape."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import jsonschema
import numpy as np
import pytest

from edged.checks import CheckContext, CheckOptions, CheckOutcome, CheckSpec, Region
from edged.config import RecipeConfig
from edged.core.errors import InputError
from edged.core.result import FrameInfo, Result, json_schema
from edged.recipes.inspection import Inspector, build_result


class DarkSpotOptions(CheckOptions):
    threshold: int = 60


def _dark_spots(image: np.ndarray, options: DarkSpotOptions, ctx: CheckContext) -> CheckOutcome:
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    n, _, stats, _ = cv2.connectedComponentsWithStats((grey < options.threshold).astype(np.uint8))
    regions = tuple(
        Region(int(x), int(y), int(w), int(h), "spot", "spots", area_px=int(a))
        for x, y, w, h, a in stats[1:]
    )
    return CheckOutcome({"count": n - 1, "mean": round(float(grey.mean()), 3)}, regions)


def _explode(image: np.ndarray, options: CheckOptions, ctx: CheckContext) -> CheckOutcome:
    raise InputError("needs a colour image, got grey")


SPECS = {
    "spots": CheckSpec("spots", DarkSpotOptions, _dark_spots),
    "explode": CheckSpec("explode", CheckOptions, _explode),
}
CTX = CheckContext(recipe="r", camera="c")


def Recipe(**kw: object) -> RecipeConfig:
    """A recipe naming the test-local checks (not in the global registry)."""
    return RecipeConfig.model_construct(**{"checks": {}, "limits": [], **kw})


def _image_with_spots(n: int) -> np.ndarray:
    img = np.full((100, 200), 200, np.uint8)
    for i in range(n):
        cv2.rectangle(img, (10 + 40 * i, 20), (19 + 40 * i, 29), 0, -1)
    return img


def test_pass_when_limits_hold() -> None:
    insp = Inspector("r", Recipe(checks={"spots": {}}, limits=["spots.count == 0"]), specs=SPECS)
    out = insp.inspect(_image_with_spots(0), context=CTX)
    assert out.verdict == "pass"
    assert out.reasons == ()
    assert out.figures["spots"]["count"] == 0
    assert "spots" in out.timings_ms


def test_fail_names_every_broken_limit_and_keeps_regions() -> None:
    recipe = Recipe(
        checks={"spots": {"threshold": 50}},
        limits=["spots.count == 0", "spots.mean >= 199", "spots.mean <= 250"],
    )
    out = Inspector("r", recipe, specs=SPECS).inspect(_image_with_spots(3), context=CTX)
    assert out.verdict == "fail"
    assert out.reasons[0] == "spots.count = 3, limit == 0"
    assert out.reasons[1].startswith("spots.mean = 1")  # 200 - 3*100*200/20000
    assert len(out.reasons) == 2
    assert [(r.x, r.y, r.width, r.height) for r in out.regions] == [
        (10, 20, 10, 10), (50, 20, 10, 10), (90, 20, 10, 10),
    ]  # fmt: skip


def test_check_error_gives_error_verdict_not_exception() -> None:
    recipe = Recipe(checks={"explode": {}, "spots": {}}, limits=["spots.count == 0"])
    out = Inspector("r", recipe, specs=SPECS).inspect(_image_with_spots(0), context=CTX)
    assert out.verdict == "error"
    assert out.reasons == ("explode: needs a colour image, got grey",)
    assert out.figures["spots"]["count"] == 0  # other checks still ran


def test_bad_options_are_rejected_when_building() -> None:
    with pytest.raises(Exception, match="threshold"):
        Inspector("r", Recipe(checks={"spots": {"threshold": "x"}}), specs=SPECS)


def test_result_validates_against_shipped_schema() -> None:
    recipe = Recipe(checks={"spots": {}}, limits=["spots.count == 0"])
    out = Inspector("r", recipe, specs=SPECS).inspect(_image_with_spots(2), context=CTX)
    info = FrameInfo(
        width=200, height=100, pixel_format="Mono8", seq=4, host_ts="2026-01-01T00:00:00.000Z"
    )
    result = build_result(out, node="n", camera="c", seq=9, frame=info, timings_ms={"decode": 0.1})
    doc = json.loads(result.to_json())
    shipped = Path(__file__).parent.parent / "edged" / "schemas" / "result.v1.json"
    schema = json.loads(shipped.read_text())
    jsonschema.validate(doc, schema)
    assert doc["schema"] == "edged.result.v1"
    assert doc["verdict"] == "fail"
    assert doc["timings_ms"]["check.spots"] >= 0
    assert len(doc["regions"]) == 2
    assert Result.model_validate(doc) == result
    assert result.compact() == {
        "id": result.id, "seq": 9, "camera": "c", "recipe": "r", "verdict": "fail", "ts": result.ts,
    }  # fmt: skip


def test_shipped_schema_is_generated_from_the_model() -> None:
    shipped = Path(__file__).parent.parent / "edged" / "schemas" / "result.v1.json"
    assert json.loads(shipped.read_text()) == json_schema(), (
        "regenerate: python -m edged.core.result > edged/schemas/result.v1.json"
    )


def test_result_ids_are_unique_and_time_ordered() -> None:
    from edged.core.result import new_result_id

    ids = [new_result_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 36 and i[14] == "7" for i in ids)
