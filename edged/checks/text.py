"""text: read a printed code in one region and verify it.

A recipe names one ``text`` check per code it verifies::

    checks:
      lot_code:  {type: text, region: {x: 171, y: 241, width: 502, height: 104},
                  pattern: '^LOT \\d{5}$'}
      date_code: {type: text, region: {...}, date: {format: "%d.%m.%Y", min_days: 30}}

The region (a box in frame pixels; ``region_from: CHECK``: the largest region an
earlier check found, grown by ``region_pad_px``; neither: the whole image) is read
with :func:`edged.checks.ocr.read_text` and verified by :func:`verify_text`: a
minimum confidence, and what the part should carry — an exact string (``expect``),
a regular expression (``pattern``, searched; anchor it with ``^...$``), a value given
with the image at run time (``expect_input: data`` is the PEKAT ``data`` field or the
MQTT ``data`` of the camera's last trigger/recipe command; ``data.lot`` is the
``lot`` key when ``data`` is a JSON object), and a date (``date: {format:
"%d.%m.%Y", min_days: 30, max_days: 400}``: a best-before date that many days from
today).

Text is compared after collapsing runs of spaces; ``ignore_case`` compares
case-folded. Figures (``status`` is what a recipe limits, e.g.
``lot_code.status == "ok"``)::

    {"status": "ok" | "nothing_found" | "low_confidence" | "wrong_text"
               | "no_expected_value" | "bad_date",
     "reason": "", "text": "LOT 123456", "confidence": 0.96,
     "box": {x, y, width, height}, "expected": "LOT 123456" | null, "skew_deg": 0.5,
     "date": {"text": .., "iso": .., "days": ..} | null,
     "lines": [{text, confidence, box, words: [{text, confidence, box}]}]}

The Result gets the region read, labelled with the status. A region outside the
image is an error of the check (the verdict is ``error`` and says why).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from edged.checks._base import (
    CheckContext,
    CheckOptions,
    CheckOutcome,
    CheckSpec,
    LtuService,
    Region,
)
from edged.checks._box import Box
from edged.checks.ltu_text import TextDetectionOptions, detect_text
from edged.checks.ocr import ReadOptions, TextReading, read_text
from edged.core.errors import InputError

Status = Literal[
    "ok", "nothing_found", "low_confidence", "wrong_text", "no_expected_value", "bad_date"
]
_SPACES = re.compile(r"[ \t]+")


def normalise(text: str) -> str:
    """Runs of spaces/tabs become one space; each line is stripped."""
    return "\n".join(_SPACES.sub(" ", line).strip() for line in text.splitlines()).strip()


@dataclass(frozen=True, slots=True)
class FoundDate:
    """A date found in read text: the matching ``text``, the date, and days from today."""

    text: str
    date: dt.date
    days: int

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "iso": self.date.isoformat(), "days": self.days}


@dataclass(frozen=True, slots=True)
class TextVerdict:
    """How one reading fared against its rules."""

    status: Status
    reason: str
    expected: str | None
    date: FoundDate | None


def find_date(text: str, fmt: str, *, today: dt.date) -> FoundDate | None:
    """The first run of words of ``text`` that parses with strptime ``fmt``."""
    width = max(1, len(fmt.split()))
    tokens = text.split()
    for i in range(len(tokens) - width + 1):
        candidate = " ".join(tokens[i : i + width])
        try:
            when = dt.datetime.strptime(candidate, fmt).date()
        except ValueError:
            continue
        return FoundDate(candidate, when, (when - today).days)
    return None


def verify_text(
    reading: TextReading,
    *,
    min_confidence: float = 0.0,
    expect: str | None = None,
    pattern: str | None = None,
    date_format: str | None = None,
    min_days: int | None = None,
    max_days: int | None = None,
    ignore_case: bool = False,
    today: dt.date | None = None,
) -> TextVerdict:
    """Verify ``reading``: nothing found, then confidence, exact text, pattern, date.

    ``expect`` is compared whole (after :func:`normalise`); ``pattern`` is searched
    (``re.search``); ``date_format`` (strptime) must match a run of words whose date
    is ``min_days..max_days`` days from ``today`` (default: the local date).
    """
    text = normalise(reading.text)
    if not reading.words:
        return TextVerdict("nothing_found", "nothing read in the region", expect, None)
    if reading.confidence < min_confidence:
        msg = f"low confidence {reading.confidence:.2f} < {min_confidence:.2f} reading {text!r}"
        return TextVerdict("low_confidence", msg, expect, None)
    fold = str.casefold if ignore_case else str
    if expect is not None and fold(text) != fold(normalise(expect)):
        return TextVerdict("wrong_text", f"expected {expect!r}, read {text!r}", expect, None)
    if pattern is not None and not re.search(pattern, text, re.IGNORECASE if ignore_case else 0):
        msg = f"expected text matching {pattern!r}, read {text!r}"
        return TextVerdict("wrong_text", msg, expect, None)
    found: FoundDate | None = None
    if date_format is not None:
        found = find_date(text, date_format, today=today or dt.date.today())
        if found is None:
            msg = f"expected a date like {date_format!r}, read {text!r}"
            return TextVerdict("bad_date", msg, expect, None)
        low = min_days if min_days is not None else -(10**6)
        high = max_days if max_days is not None else 10**6
        if not low <= found.days <= high:
            msg = (
                f"date {found.date.isoformat()} is {found.days} days from today, "
                f"expected {_window(min_days, max_days)}"
            )
            return TextVerdict("bad_date", msg, expect, found)
    return TextVerdict("ok", "", expect, found)


def _window(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"{low}..{high}"
    return f">= {low}" if low is not None else f"<= {high}"


# --- recipe options -----------------------------------------------------------------


class DateRule(CheckOptions):
    """A date printed on the part, ``min_days..max_days`` from today (either open)."""

    format: str = Field(description="strptime format, e.g. '%d.%m.%Y' or '%d %b %Y'")
    min_days: int | None = None
    max_days: int | None = None

    @model_validator(mode="after")
    def _valid(self) -> DateRule:
        if "%" not in self.format:
            msg = f"format: expected a strptime format such as '%d.%m.%Y', got {self.format!r}"
            raise ValueError(msg)
        sample = dt.date(2027, 12, 31).strftime(self.format)
        try:
            dt.datetime.strptime(sample, self.format)
        except ValueError as exc:
            msg = f"format: {self.format!r} cannot read back the dates it prints: {exc}"
            raise ValueError(msg) from exc
        low, high = self.min_days, self.max_days
        if low is not None and high is not None and low > high:
            msg = f"expected min_days <= max_days, got {low} > {high}"
            raise ValueError(msg)
        return self


class RegionBox(CheckOptions):
    """A box in pixels of the inspected image."""

    x: int = Field(ge=0)
    y: int = Field(ge=0)
    width: int = Field(ge=1)
    height: int = Field(ge=1)

    def box(self) -> Box:
        return Box(self.x, self.y, self.width, self.height)


class TextCheckOptions(ReadOptions):
    """The ``text`` check: where to read, how to read, what the text must be (rules
    left unset do not apply)."""

    region: RegionBox | None = Field(default=None, description="none: the whole image")
    region_from: str | None = Field(
        default=None, description="read inside the largest region an earlier check found"
    )
    region_pad_px: int = Field(
        default=0, ge=-1000, le=1000, description="grow (or, negative, shrink) that region"
    )
    min_confidence: float = Field(default=0.5, ge=0.0, le=1.0)
    expect: str | None = Field(default=None, description="the exact text")
    pattern: str | None = Field(default=None, description="a regular expression, searched")
    expect_input: str | None = Field(
        default=None, description="run-time value to expect: 'data' or 'data.KEY'"
    )
    date: DateRule | None = None
    ignore_case: bool = False
    tessdata_dir: str | None = Field(default=None, description="where NAME.traineddata lives")

    def data_dir(self) -> str | None:
        return self.tessdata_dir

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                msg = f"expected a valid regular expression, got {value!r}: {exc}"
                raise ValueError(msg) from exc
        return value

    @field_validator("expect_input")
    @classmethod
    def _input_name(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^data(\.[^.\s]+)?$", value):
            msg = f"expected 'data' or 'data.KEY' (the PEKAT data field), got {value!r}"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _one_kind_of_region(self) -> TextCheckOptions:
        if self.region_from is not None and self.region is not None:
            msg = "expected region or region_from, got both"
            raise ValueError(msg)
        return self


def input_value(inputs: Mapping[str, str], name: str) -> str | None:
    """The run-time value ``name`` (``data`` or ``data.KEY``) from ``inputs``, or None."""
    root, _, key = name.partition(".")
    raw = inputs.get(root)
    if raw is None or raw == "":
        return None
    if not key:
        return raw
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    value = parsed.get(key) if isinstance(parsed, dict) else None
    return None if value is None else str(value)


def _verify(
    reading: TextReading, options: TextCheckOptions, inputs: Mapping[str, str]
) -> TextVerdict:
    expect = options.expect
    if options.expect_input is not None:
        given = input_value(inputs, options.expect_input)
        if given is None:
            msg = f"expected the text in run-time input {options.expect_input!r}, got none"
            return TextVerdict("no_expected_value", msg, None, None)
        expect = given
    date = options.date
    return verify_text(
        reading,
        min_confidence=options.min_confidence,
        expect=expect,
        pattern=options.pattern,
        date_format=date.format if date else None,
        min_days=date.min_days if date else None,
        max_days=date.max_days if date else None,
        ignore_case=options.ignore_case,
    )


def found_region(
    regions: tuple[Region, ...], check: str, *, pad_px: int, width: int, height: int
) -> Box | None:
    """The largest region ``check`` found, grown by ``pad_px`` and clipped to the image."""
    mine = [r for r in regions if r.check == check and r.width > 0 and r.height > 0]
    if not mine:
        return None
    r = max(mine, key=lambda r: r.width * r.height)
    x0, y0 = max(0, r.x - pad_px), max(0, r.y - pad_px)
    x1, y1 = min(width, r.x + r.width + pad_px), min(height, r.y + r.height + pad_px)
    if x1 <= x0 or y1 <= y0:
        return None
    return Box(x0, y0, x1 - x0, y1 - y0)


def _figures(verdict: TextVerdict, reading: TextReading | None, box: Box | None) -> dict[str, Any]:
    return {
        "status": verdict.status,
        "reason": verdict.reason,
        "text": normalise(reading.text) if reading else "",
        "confidence": round(reading.confidence, 4) if reading else 0.0,
        "box": box.to_dict() if box else None,
        "expected": verdict.expected,
        "skew_deg": round(reading.skew_deg, 3) if reading else 0.0,
        "date": verdict.date.to_dict() if verdict.date else None,
        "lines": [line.to_dict() for line in reading.lines] if reading else [],
    }


def _run(image: np.ndarray, options: TextCheckOptions, context: CheckContext) -> CheckOutcome:
    box = options.region.box() if options.region is not None else None
    if options.region_from is not None:
        h, w = image.shape[:2]
        box = found_region(
            context.regions, options.region_from, pad_px=options.region_pad_px, width=w, height=h
        )
        if box is None:
            msg = f"no region from check {options.region_from!r} to read in"
            return CheckOutcome(_figures(TextVerdict("nothing_found", msg, None, None), None, None))
    try:
        reading = read_text(image, region=box, **options.read_kwargs())
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    verdict = _verify(reading, options, context.inputs)
    r = reading.region
    region = Region(r.x, r.y, r.width, r.height, verdict.status, "text", score=reading.confidence)
    return CheckOutcome(_figures(verdict, reading, r), (region,))


_BOX = ("x", "y", "width", "height")
FIGURES: tuple[str, ...] = (
    "status",
    "reason",
    "text",
    "confidence",
    *(f"box.{k}" for k in _BOX),
    "expected",
    "skew_deg",
    *(f"date.{k}" for k in ("text", "iso", "days")),
    "lines.*.text",
    "lines.*.confidence",
    *(f"lines.*.box.{k}" for k in _BOX),
    "lines.*.words.*.text",
    "lines.*.words.*.confidence",
    *(f"lines.*.words.*.box.{k}" for k in _BOX),
)
"""Every figure path the text check produces (``*``: any list index)."""


SPEC = CheckSpec(
    "text",
    TextCheckOptions,
    _run,
    description="read a printed code in a region; verify exact text, pattern, value, date",
    figures=FIGURES,
    ltu=LtuService(
        "textDetection",
        TextDetectionOptions,
        detect_text,
        "Printed text read offline (Tesseract): lines and words with boxes",
    ),
)
