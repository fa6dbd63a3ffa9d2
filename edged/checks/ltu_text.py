"""LTU ``textDetection``: a :class:`~edged.checks.ocr.TextReading` in the LTU shape.

The document's response (kept field for field, nesting and types)::

    {"message": "ok", "code": "0",
     "content": {
       "image": {
         "areas": {
           "UUID/0": {"type": "input", "boundingBox": {x, y, width, height},
                      "resultInfo": {"textDetection": {
                          "type": "summary", "language": "en", "text": "LINE\\nLINE\\n",
                          "subarea": ["UUID/1", ...], "words": {"WORD": ["UUID/1"], ...}}}},
           "UUID/1": {"type": "output", "boundingBox": {...},
                      "resultInfo": {"textDetection": {
                          "type": "words", "language": "en", "text": "WORD"}}},
           ...},
         "UUID": "7cc2b040", "version": 0.1},
       "summary": {"name": "textDetection", "status": 0, "message": "OK",
                   "resultInfos": {"textDetection": {"nbAreas": N}}},
       "errors": []}}

``UUID/0`` is the input area: its box is the region read (the whole image unless
``region`` is given). Word areas follow in reading order. edged adds, without
changing any documented field: ``confidence`` (0..1) on every word and on the
summary (the weakest word); ``line`` (0-based line index) on words; ``lines`` on
the summary (``text``, ``confidence``, ``boundingBox``, ``subarea``); and
``engine``, ``skewDeg`` in ``summary.resultInfos.textDetection``.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field, field_validator

from edged.checks._base import LtuReply
from edged.checks._box import Box
from edged.checks.ocr import Layout, ReadOptions, TextReading, engine_version, read_text

VERSION = 0.1
"""``content.image.version`` as the document gives it."""

# Tesseract language names -> the ISO 639-1 codes LTU answers with.
_ISO_639_1 = {
    "eng": "en", "fra": "fr", "deu": "de", "ita": "it", "spa": "es", "por": "pt",
    "nld": "nl", "pol": "pl", "ces": "cs", "swe": "sv", "dan": "da", "fin": "fi",
    "nor": "no", "tur": "tr", "rus": "ru", "jpn": "ja", "chi_sim": "zh", "kor": "ko",
}  # fmt: skip
PROVIDERS = ("tesseract",)


def iso_language(language: str) -> str:
    """``eng`` -> ``en``; several (``eng+deu``) -> the first; unknown names unchanged."""
    first = language.split("+", 1)[0]
    return _ISO_639_1.get(first, first)


class TextDetectionOptions(ReadOptions):
    """textDetection's fields besides ``image`` (see :func:`edged.checks.ocr.read_text`):
    whole images by default (``layout: auto``), 5 s to read them."""

    provider: str | None = Field(
        default=None, description="the OCR engine; edged reads offline with Tesseract"
    )
    region: Box | None = Field(default=None, description="'x,y,width,height' to read only there")
    layout: Layout = "auto"
    timeout_ms: int = Field(default=5000, ge=0, le=600_000, description="0 = no limit")

    @field_validator("provider")
    @classmethod
    def _provider(cls, value: str | None) -> str | None:
        if value is not None and value.strip().lower() not in PROVIDERS:
            msg = f"expected 'Tesseract' (edged reads text offline), got {value!r}"
            raise ValueError(msg)
        return value

    @field_validator("region", mode="before")
    @classmethod
    def _box(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",")]
            if len(parts) != 4 or not all(p.isdigit() for p in parts):
                msg = f"expected 'x,y,width,height' in pixels, got {value!r}"
                raise ValueError(msg)
            x, y, w, h = (int(p) for p in parts)
            return Box(x, y, w, h)
        if isinstance(value, dict):
            try:
                return Box(**{k: int(value[k]) for k in ("x", "y", "width", "height")})
            except (KeyError, TypeError, ValueError) as exc:
                msg = f"expected {{x, y, width, height}} in pixels, got {value!r}"
                raise ValueError(msg) from exc
        return value

    def kwargs(self) -> dict[str, Any]:
        return {"region": self.region, **self.read_kwargs()}


def _bbox(box: Box) -> dict[str, int]:
    return box.to_dict()


def text_detection(reading: TextReading, *, area_uuid: str | None = None) -> dict[str, Any]:
    """The LTU textDetection answer for ``reading`` (see the module doc)."""
    uid = area_uuid or uuid.uuid4().hex[:8]
    lang = iso_language(reading.language)
    areas: dict[str, Any] = {}
    words_index: dict[str, list[str]] = {}
    lines: list[dict[str, Any]] = []
    subarea: list[str] = []
    n = 0
    for line_no, line in enumerate(reading.lines):
        line_ids: list[str] = []
        for word in line.words:
            n += 1
            area_id = f"{uid}/{n}"
            line_ids.append(area_id)
            words_index.setdefault(word.text, []).append(area_id)
            areas[area_id] = {
                "type": "output",
                "boundingBox": _bbox(word.box),
                "resultInfo": {
                    "textDetection": {
                        "type": "words",
                        "language": lang,
                        "text": word.text,
                        "confidence": round(word.confidence, 4),
                        "line": line_no,
                    }
                },
            }
        subarea.extend(line_ids)
        lines.append(
            {
                "text": line.text,
                "confidence": round(line.confidence, 4),
                "boundingBox": _bbox(line.box),
                "subarea": line_ids,
            }
        )
    text = "".join(f"{line.text}\n" for line in reading.lines)
    summary_area = {
        "type": "input",
        "boundingBox": _bbox(reading.region),
        "resultInfo": {
            "textDetection": {
                "type": "summary",
                "language": lang,
                "text": text,
                "subarea": subarea,
                "words": words_index,
                "confidence": round(reading.confidence, 4),
                "lines": lines,
            }
        },
    }
    all_areas = {f"{uid}/0": summary_area, **areas}
    return {
        "message": "ok",
        "code": "0",
        "content": {
            "image": {"areas": all_areas, "UUID": uid, "version": VERSION},
            "summary": {
                "name": "textDetection",
                "status": 0,
                "message": "OK",
                "resultInfos": {
                    "textDetection": {
                        "nbAreas": len(all_areas),
                        "engine": f"{reading.engine} {engine_version().split()[-1]}",
                        "skewDeg": round(reading.skew_deg, 3),
                    }
                },
            },
            "errors": [],
        },
    }


def detect_text(image: Any, options: TextDetectionOptions) -> LtuReply:
    """Read ``image`` with ``options`` and answer in the LTU shape (RecognitionTimeout,
    a 503, when recognition exceeds ``timeout_ms``): the document's answer is
    ``{message, code, content}`` at the top level, so it is both the envelope's
    ``result`` and top-level keys beside it."""
    doc = text_detection(read_text(image, **options.kwargs()))
    return LtuReply(doc, message=str(doc["message"]), extra=doc)
