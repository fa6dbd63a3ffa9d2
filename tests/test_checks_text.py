"""Reading printed labels: the OCR engine and the ``text`` check on labels rendered in
code, asserting the exact text read, where it was read, and the verdicts."""

from __future__ import annotations

import datetime as dt
import re
import threading
from typing import Any

import cv2
import numpy as np
import pydantic
import pytest
from _ocr_helpers import PAPER_BGR, label, text_box

from edged.checks import CheckContext, figure_paths, registry
from edged.checks._box import Box
from edged.checks._ocr_data import LanguageDataError, resolve_tessdata
from edged.checks.ocr import RecognitionTimeout, read_text
from edged.checks.text import TextCheckOptions, find_date, input_value, normalise
from edged.config import RecipeConfig, Settings
from edged.core.errors import ConfigError
from edged.recipes.inspection import Inspector
from edged.recipes.validate import validate_recipe, validate_settings

CTX = CheckContext(recipe="r", camera="cam")
LOT_XY = (60, 110)
LOT_REGION = {"x": 40, "y": 60, "width": 420, "height": 70}  # the first line only
OK = 'lot.status == "ok"'


def _inspect(options: dict[str, Any], image: np.ndarray, ctx: CheckContext = CTX) -> Any:
    """One text check named ``lot`` in a recipe that passes when it is ok."""
    recipe = RecipeConfig(checks={"lot": {"type": "text", **options}}, limits=[OK])
    validate_recipe("r", recipe)
    return Inspector("r", recipe).inspect(image, context=ctx)


def _dotted(text: str, *, pitch: int = 6) -> np.ndarray:
    """Dot-matrix print: each pixel of small Hershey text becomes a dot ``pitch`` apart."""
    small = np.zeros((30, 160), np.uint8)
    cv2.putText(small, text, (4, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 255, 1, cv2.LINE_8)
    img = np.full((30 * pitch, 160 * pitch, 3), PAPER_BGR, np.uint8)
    for y, x in zip(*np.nonzero(small), strict=True):
        centre = (int(x * pitch + pitch // 2), int(y * pitch + pitch // 2))
        cv2.circle(img, centre, int(pitch * 0.35), (30, 30, 30), -1, cv2.LINE_AA)
    return img


# --- the engine -------------------------------------------------------------------------


def test_reads_two_lines_with_boxes_on_the_printed_text() -> None:
    reading = read_text(label(["LOT 123456", "EXP 2027-03-14"]))
    assert reading.text == "LOT 123456\nEXP 2027-03-14"
    assert [w.text for w in reading.words] == ["LOT", "123456", "EXP", "2027-03-14"]
    assert reading.confidence > 0.8
    x, y, w, h = text_box("LOT 123456", LOT_XY)
    box = reading.lines[0].box
    assert abs(box.x - x) <= 4
    assert abs(box.y - y) <= 10
    assert abs(box.width - w) <= 8
    assert box.height <= h + 4
    assert reading.lines[0].words[1].box.x > reading.lines[0].words[0].box.x + 50


@pytest.mark.parametrize("angle_deg", [-5.0, -2.5, 3.0, 4.5])
def test_deskews_small_rotations(angle_deg: float) -> None:
    reading = read_text(label(["LOT 123456", "EXP 2027-03-14"], angle_deg=angle_deg))
    assert reading.text == "LOT 123456\nEXP 2027-03-14"
    assert reading.skew_deg == pytest.approx(-angle_deg, abs=0.5)


def test_region_crops_the_label_before_reading() -> None:
    image = label(["LOT 123456", "JUNK 999"])
    reading = read_text(image, region=Box(**LOT_REGION))
    assert reading.text == "LOT 123456"
    assert reading.region == Box(**LOT_REGION)
    box = reading.lines[0].box  # in pixels of the whole image, not of the crop
    x, y, _, _ = text_box("LOT 123456", LOT_XY)
    assert abs(box.x - x) <= 4
    assert abs(box.y - y) <= 10


def test_a_line_entering_the_region_from_its_side_is_not_read() -> None:
    """A label's edge turned into the region: a thin slanted line from the region's
    left side over 3/4 of its height, anti-aliased (its fringe, left in, was read as
    ``|`` and took the word's confidence to 0)."""
    image = label(["LOT 123456", "JUNK 999"])
    x0, y0 = LOT_REGION["x"], LOT_REGION["y"]
    cv2.line(image, (x0 + 1, y0 - 10), (x0 + 6, y0 + 52), (60, 40, 180), 3, cv2.LINE_AA)
    reading = read_text(image, region=Box(**LOT_REGION))
    assert reading.text == "LOT 123456"
    assert reading.confidence >= 0.8


def test_a_glyph_cut_by_the_region_side_stays() -> None:
    """Only lines longer than the glyphs go: a 1 at the region's left side is read."""
    image = label(["123456"])
    x, y, w, h = text_box("123456", LOT_XY)
    ink = np.nonzero((image[y : y + h, x : x + w].min(axis=2) < 100).any(axis=0))[0]
    left = x + int(ink[0])  # the first ink column of the 1
    reading = read_text(image, region=Box(left, y - 12, w + 20, h + 24))
    assert reading.text == "123456"


def test_light_print_on_dark_ground() -> None:
    image = 255 - label(["LOT 123456"], belt=False)
    assert read_text(image).text == "LOT 123456"
    assert read_text(image, polarity="light").text == "LOT 123456"


def test_dot_matrix_print_needs_closing() -> None:
    image = _dotted("LOT 654321")
    assert read_text(image, dot_matrix_px=5).text == "LOT 654321"
    assert read_text(image, timeout_ms=0).text != "LOT 654321"  # slow noise: no limit


def test_blank_region_reads_nothing() -> None:
    reading = read_text(label([]), region=Box(40, 40, 300, 100))
    assert reading.lines == ()
    assert reading.text == ""
    assert reading.confidence == 0.0


def test_region_outside_the_image_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"region: expected a box inside the 640x320 image"):
        read_text(label(["X"]), region=Box(600, 10, 100, 50))


def test_charset_limits_what_is_read() -> None:
    reading = read_text(label(["123456"]), charset="0123456789")
    assert reading.text == "123456"


def test_missing_language_data_names_the_file() -> None:
    with pytest.raises(LanguageDataError, match=r"xyz\.traineddata"):
        resolve_tessdata("eng+xyz")
    with pytest.raises(LanguageDataError, match="expected a name like"):
        resolve_tessdata("../etc")
    assert (resolve_tessdata("eng") / "eng.traineddata").is_file()


def test_engines_per_thread_read_the_same() -> None:
    image = label(["LOT 123456"])
    seen: list[str] = []

    def work() -> None:
        for _ in range(3):
            seen.append(read_text(image).text)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == ["LOT 123456"] * 9


# --- the check in a recipe --------------------------------------------------------------


def test_text_check_is_registered_with_its_ltu_service() -> None:
    spec = registry()["text"]
    assert spec.ltu is not None
    assert spec.ltu.name == "textDetection"


def test_declared_figures_are_the_figures_produced() -> None:
    spec = registry()["text"]
    today = dt.date.today().strftime("%d.%m.%Y")
    options = spec.options.model_validate({"date": {"format": "%d.%m.%Y"}})
    read = spec.run(label([f"BB {today}"]), options, CTX)
    assert read.figures["date"]["days"] == 0
    nothing = spec.run(label([]), spec.options.model_validate({}), CTX)
    assert nothing.figures["lines"] == []
    paths = figure_paths(read.figures) | (figure_paths(nothing.figures) - {"lines", "date"})
    assert paths == set(spec.figures)


def test_matching_label_passes_with_what_was_read_and_where() -> None:
    options = {"region": LOT_REGION, "pattern": r"^LOT \d{6}$"}
    out = _inspect(options, label(["LOT 123456", "JUNK 999"]))
    assert out.verdict == "pass", out.reasons
    fig = out.figures["lot"]
    assert fig["status"] == "ok"
    assert fig["text"] == "LOT 123456"
    assert fig["box"] == LOT_REGION
    assert fig["lines"][0]["words"][1]["text"] == "123456"
    (region,) = out.regions
    assert (region.x, region.y, region.width, region.height) == tuple(LOT_REGION.values())
    assert region.label == "ok"
    assert region.check == "lot"


def test_wrong_text_fails_saying_what_was_read() -> None:
    out = _inspect({"region": LOT_REGION, "expect": "LOT 123456"}, label(["LOT 123465"]))
    assert out.verdict == "fail"
    fig = out.figures["lot"]
    assert fig["status"] == "wrong_text"
    assert fig["reason"] == "expected 'LOT 123456', read 'LOT 123465'"
    assert fig["expected"] == "LOT 123456"
    assert out.reasons == ('lot.status = "wrong_text", limit == "ok"',)
    assert out.regions[0].label == "wrong_text"


def test_pattern_mismatch_fails() -> None:
    out = _inspect({"pattern": r"^LOT \d{6}$"}, label(["LOT 12345"]))
    assert out.figures["lot"]["status"] == "wrong_text"
    assert (
        out.figures["lot"]["reason"] == "expected text matching '^LOT \\\\d{6}$', read 'LOT 12345'"
    )


def test_unreadable_label_fails_as_nothing_found() -> None:
    image = label(["LOT 123456"])
    image[60:130, 40:460] = PAPER_BGR  # the print is missing
    out = _inspect({"region": LOT_REGION}, image)
    assert out.verdict == "fail"
    assert out.figures["lot"]["status"] == "nothing_found"
    assert out.figures["lot"]["text"] == ""
    assert out.figures["lot"]["box"] == LOT_REGION


def test_smudged_label_fails_on_confidence() -> None:
    image = label(["LOT 123456"])
    noisy = np.random.default_rng(3).normal(0, 1, image.shape) * 90
    blurred = cv2.GaussianBlur(np.clip(image + noisy, 0, 255).astype(np.uint8), (0, 0), 2.5)
    out = _inspect({"region": LOT_REGION, "min_confidence": 0.99}, blurred)
    assert out.figures["lot"]["status"] in {"low_confidence", "nothing_found"}
    assert out.verdict == "fail"


def test_expected_value_from_the_pekat_data_field() -> None:
    options = {"region": LOT_REGION, "expect_input": "data"}
    image = label(["LOT 123456"])
    good = CheckContext(recipe="r", camera="cam", inputs={"data": "LOT 123456"})
    bad = CheckContext(recipe="r", camera="cam", inputs={"data": "LOT 999999"})
    assert _inspect(options, image, good).verdict == "pass"
    out = _inspect(options, image, bad)
    assert out.figures["lot"]["reason"] == "expected 'LOT 999999', read 'LOT 123456'"
    missing = _inspect(options, image)
    assert missing.figures["lot"]["status"] == "no_expected_value"


def test_expected_value_from_a_json_data_key() -> None:
    options = {"expect_input": "data.lot"}
    ctx = CheckContext(recipe="r", camera="cam", inputs={"data": '{"lot": "LOT 123456"}'})
    assert _inspect(options, label(["LOT 123456"]), ctx).verdict == "pass"
    assert input_value({"data": "not json"}, "data.lot") is None


def test_best_before_date_window() -> None:
    today = dt.date.today()
    soon = (today + dt.timedelta(days=30)).strftime("%d.%m.%Y")
    past = (today - dt.timedelta(days=2)).strftime("%d.%m.%Y")
    rule = {"date": {"format": "%d.%m.%Y", "min_days": 7, "max_days": 400}}
    out = _inspect(rule, label([f"BB {soon}"], font_scale=1.1))
    assert out.verdict == "pass", out.figures["lot"]
    assert out.figures["lot"]["date"]["days"] == 30
    out = _inspect(rule, label([f"BB {past}"], font_scale=1.1))
    assert out.figures["lot"]["status"] == "bad_date"
    assert "is -2 days from today, expected 7..400" in out.figures["lot"]["reason"]


def test_lot_code_and_date_code_are_two_named_checks() -> None:
    today = dt.date.today()
    date_text = (today + dt.timedelta(days=100)).strftime("%d.%m.%Y")
    image = label(["LOT 123456", f"BB {date_text}"])
    recipe = RecipeConfig(
        checks={
            "lot_code": {"type": "text", "region": LOT_REGION, "pattern": r"^LOT \d{6}$"},
            "date_code": {
                "type": "text",
                "region": {"x": 40, "y": 130, "width": 500, "height": 70},
                "date": {"format": "%d.%m.%Y", "min_days": 30},
            },
        },
        limits=['lot_code.status == "ok"', 'date_code.status == "ok"', "date_code.date.days < 365"],
    )
    validate_recipe("r", recipe)
    out = Inspector("r", recipe).inspect(image, context=CTX)
    assert out.verdict == "pass", out.figures
    assert out.figures["lot_code"]["text"] == "LOT 123456"
    assert out.figures["date_code"]["text"] == f"BB {date_text}"
    assert out.figures["date_code"]["date"]["days"] == 100
    assert [r.check for r in out.regions] == ["lot_code", "date_code"]


def test_region_outside_the_image_is_a_check_error() -> None:
    out = _inspect({"region": {"x": 600, "y": 0, "width": 100, "height": 50}}, label(["X"]))
    assert out.verdict == "error"
    assert out.reasons == (
        "lot: region: expected a box inside the 640x320 image, got x=600 y=0 width=100 height=50",
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pattern": "^LOT (\\d{6}$"}, "pattern: expected a valid regular expression"),
        ({"language": "xyz"}, "xyz.traineddata"),
        ({"date": {"format": "dd.mm.yyyy"}}, "expected a strptime format"),
        ({"date": {"format": "%d", "min_days": 5, "max_days": 1}}, "min_days <= max_days"),
        ({"expect_input": "lot"}, "expected 'data' or 'data.KEY'"),
        ({"region": {"x": -1, "y": 0, "width": 5, "height": 5}}, "region.x: Input should be"),
        ({"region": LOT_REGION, "region_from": "mask"}, "expected region or region_from"),
    ],
)
def test_bad_options_are_config_errors(options: dict[str, Any], message: str) -> None:
    recipe = RecipeConfig(checks={"lot": {"type": "text", **options}})
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        validate_recipe("r", recipe)
    assert str(info.value).startswith("recipes.r.checks.lot")
    with pytest.raises(pydantic.ValidationError):
        TextCheckOptions.model_validate(options)


def test_limits_must_address_text_figures() -> None:
    recipe = RecipeConfig(checks={"lot": {"type": "text"}}, limits=['lot.stauts == "ok"'])
    with pytest.raises(ConfigError, match=re.escape("lot.status")):
        validate_recipe("r", recipe)


def test_helpers() -> None:
    assert normalise("  LOT   123 \n\tB  ") == "LOT 123\nB"
    found = find_date("BB 01.02.2027 X", "%d.%m.%Y", today=dt.date(2027, 1, 1))
    assert found is not None
    assert found.days == 31
    assert found.text == "01.02.2027"
    assert find_date("BB 1 Feb 2027", "%d %b %Y", today=dt.date(2027, 1, 1)) is not None
    assert find_date("nothing", "%d.%m.%Y", today=dt.date(2027, 1, 1)) is None


# --- reading where another check found the part -----------------------------------------


def _label_on_belt() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A small label somewhere on a wide belt, with light print on the belt beside it."""
    img = np.full((360, 900, 3), (70, 62, 58), np.uint8)
    x, y, w, h = 420, 110, 380, 130
    img[y : y + h, x : x + w] = PAPER_BGR
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, "LOT 246810", (x + 30, y + 80), font, 1.3, (30, 30, 30), 3, cv2.LINE_AA)
    cv2.putText(img, "BELT 77", (40, 200), font, 1.3, (190, 190, 190), 3, cv2.LINE_AA)
    return img, (x, y, w, h)


def test_reads_inside_the_region_another_check_found() -> None:
    image, (x, y, w, h) = _label_on_belt()
    assert "BELT 77" in read_text(image).text  # the whole frame has both
    recipe = RecipeConfig(
        checks={
            "label": {"type": "mask"},
            "lot": {
                "type": "text",
                "region_from": "label",
                "region_pad_px": -6,
                "pattern": r"^LOT \d{6}$",
            },
        },
        limits=[OK],
    )
    validate_recipe("r", recipe)
    out = Inspector("r", recipe).inspect(image, context=CTX)
    assert out.verdict == "pass", out.figures["lot"]
    assert out.figures["lot"]["text"] == "LOT 246810"
    assert out.figures["lot"]["box"] == {"x": x + 6, "y": y + 6, "width": w - 12, "height": h - 12}


def test_region_from_with_nothing_found_fails() -> None:
    recipe = RecipeConfig(
        checks={"mask": {}, "lot": {"type": "text", "region_from": "mask"}}, limits=[OK]
    )
    blank = np.full((120, 160, 3), 90, np.uint8)
    out = Inspector("r", recipe).inspect(blank, context=CTX)
    assert out.verdict == "fail"
    assert out.figures["lot"]["status"] == "nothing_found"
    assert out.figures["lot"]["reason"] == "no region from check 'mask' to read in"


def test_region_from_must_name_an_earlier_check() -> None:
    recipe = RecipeConfig(checks={"lot": {"type": "text", "region_from": "mask"}, "mask": {}})
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "recipes.r.checks.lot.region_from: expected a check listed before it, one of [], "
            "got 'mask'"
        ),
    ):
        validate_recipe("r", recipe)


def test_region_outside_a_cameras_frames_is_a_config_error() -> None:
    lot = {"x": 300, "y": 0, "width": 100, "height": 40}
    recipe = {"checks": {"lot": {"type": "text", "region": lot}}}
    camera = {"recipe": "r", "synthetic": {"width": 320, "height": 256}}
    with pytest.raises(ConfigError) as info:
        validate_settings(Settings(cameras={"cam": camera}, recipes={"r": recipe}))
    assert str(info.value) == (
        "recipes.r.checks.lot.region: expected a box inside camera 'cam''s 320x256 frames, "
        "got x=300 y=0 width=100 height=40"
    )
    features = {"Width": 640, "Height": 480}
    genicam = {"recipe": "r", "source": "genicam", "genicam": {"features": features}}
    validate_settings(Settings(cameras={"cam": genicam}, recipes={"r": recipe}))  # fits


def test_recognition_gives_up_after_its_timeout() -> None:
    noise = np.random.default_rng(5).integers(0, 256, (450, 600), dtype=np.uint8)
    with pytest.raises(RecognitionTimeout, match="expected to finish within 1 ms"):
        read_text(noise, timeout_ms=1, glyph_px=0, deskew=False)
