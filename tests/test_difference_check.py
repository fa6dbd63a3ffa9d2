"""The 'difference' recipe check through the Inspector: verdicts, regions, errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _refs_helpers import capture, paint_square, world

from edged.checks import CheckContext
from edged.config import ConfigError, RecipeConfig, Settings
from edged.recipes.entries import reference_params
from edged.recipes.inspection import Inspector
from edged.recipes.validate import load_checked_settings, validate_recipe
from edged.references import InMemoryReferences

SIZE = (320, 240)


@pytest.fixture(scope="module")
def wld() -> np.ndarray:
    return world(SIZE, seed=31)


@pytest.fixture(scope="module")
def ref(wld: np.ndarray) -> np.ndarray:
    return capture(wld, noise=1.0, seed=1)


def _inspector(options: dict[str, Any] | None = None) -> Inspector:
    recipe = RecipeConfig(checks={"difference": options or {}}, limits=["difference.count == 0"])
    return Inspector("parts", recipe)


def _context(ref: np.ndarray, options: dict[str, Any] | None = None) -> CheckContext:
    recipe = RecipeConfig(checks={"difference": options or {}})
    prepared = InMemoryReferences.from_images([ref], recipes={"parts": recipe}).prepared(
        "parts", "cam1"
    )
    return CheckContext(recipe="parts", camera="cam1", reference=prepared)


def test_good_part_passes_and_defect_fails_with_its_region(
    wld: np.ndarray, ref: np.ndarray
) -> None:
    insp = _inspector()
    ctx = _context(ref)
    good = capture(wld, dx=5.0, dy=-2.0, angle_deg=-1.2, gain=0.93, offset=6, noise=2.0, seed=2)
    ok = insp.inspect(good, context=ctx)
    assert ok.verdict == "pass", ok.reasons
    figures = ok.figures["difference"]
    assert figures["count"] == 0
    assert figures["score"] == 0.0
    assert figures["model"] == "single"
    reg = figures["registration"]
    assert reg["ok"] is True
    assert reg["dx"] == pytest.approx(5.0, abs=0.2)
    assert reg["angle_deg"] == pytest.approx(-1.2, abs=0.05)

    bad = insp.inspect(paint_square(good, 100, 150, 12, -80), context=ctx)
    assert bad.verdict == "fail"
    assert bad.reasons == ("difference.count = 1, limit == 0",)
    (region,) = bad.regions
    assert region.label == "defect"
    assert region.check == "difference"
    assert (region.x, region.y, region.width, region.height) == pytest.approx(
        (100, 150, 12, 12), abs=2
    )
    assert bad.figures["difference"]["regions"][0]["polarity"] == "dark"


def test_without_a_reference_the_verdict_is_error_saying_how_to_teach(ref: np.ndarray) -> None:
    out = _inspector().inspect(ref, context=CheckContext(recipe="parts", camera="cam1"))
    assert out.verdict == "error"
    (reason,) = out.reasons
    assert "recipe 'parts' camera 'cam1' has no reference" in reason
    assert "edged teach --config FILE --recipe parts --camera cam1" in reason


def test_unregistered_part_is_an_error_or_a_fail_as_configured(ref: np.ndarray) -> None:
    other = capture(world(SIZE, seed=404), noise=1.0)
    out = _inspector().inspect(other, context=_context(ref))
    assert out.verdict == "error"
    assert "does not register onto the reference" in out.reasons[0]
    failing = _inspector({"on_unregistered": "fail"})
    out = failing.inspect(other, context=_context(ref, {"on_unregistered": "fail"}))
    assert out.verdict == "fail"
    assert out.figures["difference"]["registration"]["ok"] is False
    assert [r.label for r in out.regions] == ["unregistered"]


def test_heatmap_marks_the_defect_in_image_geometry(wld: np.ndarray, ref: np.ndarray) -> None:
    insp = _inspector({"heatmap": True})
    q = paint_square(capture(wld, dx=3.0, noise=1.0, seed=3), 200, 40, 10, 90)
    out = insp.inspect(q, context=_context(ref, {"heatmap": True}))
    assert out.heatmap is not None
    assert out.heatmap.shape == (240, 320)
    y, x = np.unravel_index(int(np.argmax(out.heatmap)), out.heatmap.shape)
    assert 198 <= x <= 212
    assert 38 <= y <= 52
    assert float(out.heatmap[120, 40]) == 0.0


def test_reference_prepared_for_other_options_is_an_error(ref: np.ndarray) -> None:
    out = _inspector({"resolution": 160}).inspect(ref, context=_context(ref))
    assert out.verdict == "error"
    assert "prepared for resolution 1024" in out.reasons[0]


def test_options_are_validated_in_the_config(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match=r"difference\.preset"):
        validate_recipe("r", RecipeConfig(checks={"difference": {"preset": 9}}))
    with pytest.raises(ConfigError, match="behaviors: expected letters"):
        validate_recipe("r", RecipeConfig(checks={"difference": {"behaviors": "XYZ"}}))
    path = tmp_path / "edged.yaml"
    path.write_text("recipes:\n  r:\n    checks:\n      difference:\n        motion_model: warp\n")
    with pytest.raises(ConfigError, match="motion_model"):
        load_checked_settings(path)


def test_reference_params_follow_the_recipe() -> None:
    settings = Settings(
        recipes={"r": RecipeConfig(checks={"difference": {"resolution": 1024, "behaviors": "HL"}})}
    )
    params = reference_params(settings.recipes["r"])
    assert params.resolution == 1024
    assert params.behaviors == ("L", "H")
    assert reference_params(RecipeConfig()).resolution == 1024
