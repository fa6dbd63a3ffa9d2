from __future__ import annotations

import pytest

from edged.core.limits import Broken, parse_limit

FIGURES = {
    "quality": {"brightness": {"over_per": 7.5}, "encoding": "OK", "ok": True},
    "mask": {"area_px": 1200, "boxes": [{"x": 3}]},
}


@pytest.mark.parametrize(
    ("text", "broken"),
    [
        ("quality.brightness.over_per <= 2", "quality.brightness.over_per = 7.5, limit <= 2"),
        ("quality.brightness.over_per < 7.5", "quality.brightness.over_per = 7.5, limit < 7.5"),
        ("quality.brightness.over_per <= 7.5", None),
        ("quality.brightness.over_per >= 1e1", "quality.brightness.over_per = 7.5, limit >= 10"),
        ("mask.area_px in [1000, 50000]", None),
        ("mask.area_px in [1300, 50000]", "mask.area_px = 1200, limit in [1300, 50000]"),
        ('quality.encoding == "OK"', None),
        ("quality.encoding != 'OK'", 'quality.encoding = "OK", limit != "OK"'),
        ("quality.ok == true", None),
        ("mask.boxes.0.x == 3", None),
        ("mask.perimeter_px > 0", "mask.perimeter_px was not computed (limit > 0)"),
        ("quality.encoding > 3", "quality.encoding = 'OK' is not a number (limit > 3)"),
    ],
)
def test_limit_check(text: str, broken: str | None) -> None:
    assert parse_limit(text).check(FIGURES) == broken


@pytest.mark.parametrize(
    "text",
    ["area > 3", "quality.x >> 3", "quality.x in [5, 1]", "quality.x <= 'a'", "", "mask.a in [1,]"],
)
def test_bad_limits_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="limit"):
        parse_limit(text)


def test_a_missing_figure_is_marked_missing() -> None:
    missing = parse_limit("mask.perimeter_px > 0").evaluate(FIGURES)
    assert missing is not None
    assert missing.missing
    assert missing.reason == "mask.perimeter_px was not computed (limit > 0)"
    broken = parse_limit("mask.area_px > 5000").evaluate(FIGURES)
    assert broken is not None
    assert not broken.missing
    assert broken.reason == "mask.area_px = 1200, limit > 5000"
    assert parse_limit("mask.boxes.0.x == 3").evaluate(FIGURES) is None
    # Past the end of a list, or below a null: computed as absent, a plain break.
    past_the_end = parse_limit("mask.boxes.1.x == 3").evaluate(FIGURES)
    assert past_the_end == Broken("mask.boxes.1.x = None is not a number (limit == 3)")
    below_null = parse_limit("mask.box.x in [0, 9]").evaluate({"mask": {"box": None}})
    assert below_null == Broken("mask.box.x = None is not a number (limit in [0, 9])")
