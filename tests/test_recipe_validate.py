"""Recipes checked against the registry where settings are loaded for use: check types,
options, named checks, limit paths (with the closest valid path), and missing figures
at run time as ``error``."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from _checks_helpers import shapes_scene

from edged.checks import CheckContext, registry
from edged.config import RecipeConfig
from edged.core.errors import ConfigError
from edged.recipes.entries import check_entries, reference_params
from edged.recipes.inspection import Inspector
from edged.recipes.validate import load_checked_settings, matches, recipe_problems

CTX = CheckContext(recipe="r", camera="cam")


def _problems(checks: dict[str, Any], limits: list[str] | None = None) -> list[str]:
    return recipe_problems("label", RecipeConfig(checks=checks, limits=limits or []))


def test_a_valid_recipe_has_no_problems() -> None:
    limits = [
        'quality.encoding == "OK"',
        "quality.brightness.over_per <= 2",
        "quality.brightness.l_hist.3 >= 0",
        "difference.regions.0.area_px < 100",
        "difference.registration.ok == true",
    ]
    assert _problems({"quality": {}, "difference": {}}, limits) == []


def test_a_misspelt_limit_names_recipe_limit_and_closest_path() -> None:
    problems = _problems({"quality": {}}, ["quality.brightness.overper <= 2"])
    assert problems == [
        "recipes.label.limits.0: limit 'quality.brightness.overper <= 2': no check of recipe "
        "'label' produces quality.brightness.overper (did you mean "
        "`quality.brightness.over_per`?)"
    ]


def test_a_limit_on_a_check_the_recipe_lacks() -> None:
    problems = _problems({"quality": {}}, ["mask.area_px > 10"])
    assert problems == [
        "recipes.label.limits.0: limit 'mask.area_px > 10': no check of recipe 'label' "
        "produces mask.area_px: expected a path starting with one of its checks ['quality']"
    ]


def test_list_paths_take_an_index_not_a_name() -> None:
    assert _problems({"difference": {}}, ["difference.regions.0.area_px < 5"]) == []
    (bad,) = _problems({"difference": {}}, ["difference.regions.first.area_px < 5"])
    assert "did you mean `difference.regions.0.area_px`?" in bad
    (whole,) = _problems({"difference": {}}, ["difference.registration > 0"])
    assert "no check of recipe 'label' produces difference.registration" in whole


def test_matches() -> None:
    assert matches(("regions", "12", "area_px"), ("regions", "*", "area_px"))
    assert not matches(("regions", "x", "area_px"), ("regions", "*", "area_px"))
    assert not matches(("regions",), ("regions", "*", "area_px"))


def test_named_checks_of_one_type() -> None:
    checks = {"coarse": {"type": "contours", "min_area_px": 3000}, "fine": {"type": "contours"}}
    assert _problems(checks, ["coarse.count == 2", "fine.count == 3"]) == []
    (bad,) = _problems(checks, ["contours.count == 3"])
    assert "produces contours.count (did you mean `coarse.count`?)" in bad
    # Each gets its own figures, regions and timings under its own name.
    recipe = RecipeConfig(checks=checks, limits=["coarse.count == 2", "fine.count == 3"])
    insp = Inspector("r", recipe)
    assert insp.check_names == ("coarse", "fine")
    out = insp.inspect(shapes_scene(), context=CTX)
    assert out.verdict == "pass", out.reasons
    assert out.figures["coarse"]["count"] == 2  # rectangle 6000 px, disk ~7850 px
    assert out.figures["fine"]["count"] == 3  # and the 400 px square
    assert sorted(r.check for r in out.regions) == ["coarse"] * 2 + ["fine"] * 3
    assert set(out.timings_ms) == {"coarse", "fine"}


def test_type_defaults_to_the_name() -> None:
    entries = check_entries({"quality": {}, "q2": {"type": "quality", "bins": 8}})
    assert [(e.name, e.type, dict(e.options)) for e in entries] == [
        ("quality", "quality", {}),
        ("q2", "quality", {"bins": 8}),
    ]


def test_bad_entries_name_their_key_path() -> None:
    assert _problems({"lot": {"type": "ocr"}}) == [
        "recipes.label.checks.lot.type: unknown check: expected one of ['anomaly', "
        "'contours', 'difference', 'edges', 'heatmap', 'mask', 'palette', 'quality', "
        "'recognition', 'text'], got 'ocr'"
    ]
    assert {"contours", "difference", "quality"} <= set(registry())
    assert _problems({"q": {"type": "quality", "bins": 999}}) == [
        "recipes.label.checks.q.bins: Input should be less than or equal to 256 (got 999)"
    ]
    (bad,) = _problems({"lot-code": {"type": "quality"}})
    assert bad.startswith("recipes.label.checks.lot-code: expected a check name of letters")


def test_limits_of_an_unknown_check_are_not_reported_twice() -> None:
    problems = _problems({"sharpnes": {}}, ["sharpnes.val > 1"])
    assert len(problems) == 1
    assert problems[0].startswith("recipes.label.checks: unknown check")


def test_difference_checks_share_one_prepared_reference() -> None:
    checks = {
        "coarse": {"type": "difference", "preset": 5, "behaviors": "L"},
        "colour": {"type": "difference", "behaviors": "H"},
    }
    assert _problems(checks, ["coarse.count == 0", "colour.count == 0"]) == []
    params = reference_params(RecipeConfig(checks=checks))
    assert params.behaviors == ("L", "H")
    assert params.resolution == 1024
    clash = {"a": {"type": "difference"}, "b": {"type": "difference", "resolution": 512}}
    assert _problems(clash) == [
        "recipes.label.checks: difference checks of one recipe share one prepared reference: "
        "expected one resolution for all of them, got ['1024', '512']"
    ]
    assert reference_params(RecipeConfig()).resolution == 1024


# --------------------------------------------------------------------------- run time


def test_a_missing_figure_is_an_error_never_a_fail() -> None:
    # An Inspector built in code skips load-time validation: a figure no check
    # produces is only found at run time.
    recipe = RecipeConfig(
        checks={"mask": {}}, limits=["mask.perimeter_px > 10", "mask.area_px > 1e9"]
    )
    out = Inspector("r", recipe).inspect(np.zeros((40, 40), np.uint8), context=CTX)
    assert out.verdict == "error"
    assert out.reasons == (
        "mask.perimeter_px was not computed (limit > 10)",
        "mask.area_px = 0, limit > 1e+09",
    )


def test_a_figure_computed_as_absent_is_a_fail() -> None:
    """No object: the mask check says its box is null; a limit on the box breaks."""
    recipe = RecipeConfig(checks={"mask": {}}, limits=["mask.boundingBox.width > 10"])
    assert recipe_problems("r", recipe) == []
    out = Inspector("r", recipe).inspect(np.zeros((40, 40), np.uint8), context=CTX)
    assert out.figures["mask"]["boundingBox"] is None
    assert out.verdict == "fail"
    assert out.reasons == ("mask.boundingBox.width = None is not a number (limit > 10)",)
    # No contours: the first one's area is absent too.
    recipe = RecipeConfig(checks={"contours": {}}, limits=["contours.contours.0.area_px > 10"])
    assert recipe_problems("r", recipe) == []
    out = Inspector("r", recipe).inspect(np.zeros((40, 40), np.uint8), context=CTX)
    assert out.figures["contours"]["count"] == 0
    assert out.verdict == "fail"


def test_a_broken_limit_alone_is_a_fail() -> None:
    recipe = RecipeConfig(checks={"mask": {}}, limits=["mask.area_px > 1e9"])
    out = Inspector("r", recipe).inspect(np.zeros((40, 40), np.uint8), context=CTX)
    assert out.verdict == "fail"


# --------------------------------------------------------------------------- load sites

DOC = """
cameras:
  c1: {recipe: label}
recipes:
  label:
    checks:
      quality: {}
    limits:
      - "quality.brightness.overper <= 2"
"""
EXPECTED = (
    "recipes.label.limits.0: limit 'quality.brightness.overper <= 2': no check of recipe "
    "'label' produces quality.brightness.overper (did you mean `quality.brightness.over_per`?)"
)


def test_load_checked_settings_refuses_a_misspelt_limit(tmp_path: Any) -> None:
    path = tmp_path / "edged.yaml"
    path.write_text(DOC)
    with pytest.raises(ConfigError) as info:
        load_checked_settings(path)
    assert str(info.value) == EXPECTED


def _edged(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edged", *args], capture_output=True, text=True, timeout=60
    )


def test_check_config_and_run_refuse_a_misspelt_limit(tmp_path: Any) -> None:
    path = tmp_path / "edged.yaml"
    path.write_text(DOC)
    p = _edged("check-config", "--config", str(path))
    assert p.returncode == 1
    assert p.stdout.splitlines() == [f"{path}: 1 error(s)", f"  {EXPECTED}"]
    p = _edged("run", "--config", str(path))
    assert p.returncode == 2
    assert p.stderr.strip() == f"edged: cannot start: invalid config {path}: {EXPECTED}"


def test_analyze_and_teach_refuse_a_misspelt_limit(tmp_path: Any) -> None:
    path = tmp_path / "edged.yaml"
    path.write_text(DOC)
    image = tmp_path / "part.png"
    image.write_bytes(b"not read: the config is refused first")
    p = _edged("analyze", "--config", str(path), str(image))
    assert p.returncode == 2
    assert p.stderr.strip() == f"edged: analyze: invalid config {path}: {EXPECTED}"
    p = _edged("teach", "--config", str(path), "--recipe", "label", "--camera", "c1", str(image))
    assert p.returncode == 2
    assert p.stderr.strip() == f"edged: teach: invalid config {path}: {EXPECTED}"
