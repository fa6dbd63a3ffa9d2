"""Recognition check: a model version (classification, tagging or detection) on the image.

:func:`recognize` is the pure function: image and a loaded
:class:`~edged.models.Recognizer` in, :class:`RecognitionFigures` out. The recipe
spec resolves the recipe's ``model`` (a version id or a public model name) through
the context's model repository, so the model is loaded once and shared.

Figures (for limits)::

    recognition.label == "B"            the best predicted label ("" when none)
    recognition.score >= 0.9            its score (0 when none)
    recognition.count == 6              how many predictions passed their threshold
    recognition.labels.screw.count      per label of the spec: count and best score
    recognition.screw.count             the same, when the label name is a plain word

A recipe may name the check and give its type (``connector: {type: recognition,
model: 3}``); limits then address ``connector.label``, ``connector.present.score``.

Detections become regions (pixels of the image, labelled with the label name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from edged.checks._base import (
    ANY,
    ANY_KEY,
    CheckContext,
    CheckOptions,
    CheckOutcome,
    CheckSpec,
    Region,
)
from edged.core.errors import EdgedError
from edged.models import BBox, Prediction, Recognizer

_WORD = re.compile(r"^[A-Za-z0-9_]+$")
_RESERVED = frozenset({"model", "kind", "label", "score", "count", "labels", "predicted"})


@dataclass(frozen=True, slots=True)
class RecognitionFigures:
    """What a model found on one image."""

    model: str
    kind: str
    label_names: tuple[str, ...]
    predicted: tuple[Prediction, ...]
    image_wh: tuple[int, int]

    @property
    def top(self) -> Prediction | None:
        return self.predicted[0] if self.predicted else None

    def per_label(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {n: {"count": 0, "score": 0.0} for n in self.label_names}
        for p in self.predicted:
            entry = out[p.label_name]
            entry["count"] += 1
            entry["score"] = max(entry["score"], p.score)
        return out

    def to_dict(self) -> dict[str, Any]:
        top = self.top
        labels = self.per_label()
        figures: dict[str, Any] = {
            "model": self.model,
            "kind": self.kind,
            "label": top.label_name if top else "",
            "score": top.score if top else 0.0,
            "count": len(self.predicted),
            "labels": labels,
            "predicted": [p.to_dict() for p in self.predicted],
        }
        for name, entry in labels.items():
            if _WORD.match(name) and name not in _RESERVED:
                figures[name] = entry
        return figures

    def regions(self, check: str) -> tuple[Region, ...]:
        if self.kind != "detection":
            return ()
        w, h = self.image_wh
        out = []
        for p in self.predicted:
            x, y, bw, bh = p.bbox.to_pixels(w, h)
            out.append(Region(x, y, bw, bh, p.label_name, check, score=p.score))
        return tuple(out)


def recognize(
    image: np.ndarray,
    recognizer: Recognizer,
    *,
    model: str = "",
    roi_xywh: tuple[int, int, int, int] | None = None,
    max_predictions: int | None = None,
) -> RecognitionFigures:
    """Run ``recognizer`` on ``image`` (``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR).

    ``roi_xywh`` (pixels) restricts the model to a region; boxes stay in pixels of
    the whole image.
    """
    h, w = image.shape[:2]
    bbox = None
    if roi_xywh is not None:
        x, y, rw, rh = roi_xywh
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(w, x + rw), min(h, y + rh)
        if x1 <= x0 or y1 <= y0:
            msg = f"roi: expected a region inside the {w}x{h} image, got {list(roi_xywh)}"
            raise ValueError(msg)
        bbox = BBox(x0 / w, y0 / h, x1 / w, y1 / h)
    rec = recognizer.recognize(image, bbox=bbox, max_predictions=max_predictions)
    return RecognitionFigures(model, rec.kind, recognizer.label_names, rec.predicted, (w, h))


class RecognitionOptions(CheckOptions):
    """The recognition check's recipe options."""

    model: int | str = Field(description="a version id, or a public model name")
    roi: tuple[int, int, int, int] | None = Field(
        default=None, description="[x, y, width, height] in pixels; default: the whole image"
    )
    max_predictions: int = Field(default=100, ge=1, le=10_000)

    @field_validator("model")
    @classmethod
    def _model(cls, value: int | str) -> int | str:
        if isinstance(value, str) and not value.strip():
            msg = "expected a version id or a public model name, got an empty string"
            raise ValueError(msg)
        return value


def _run(image: np.ndarray, options: RecognitionOptions, context: CheckContext) -> CheckOutcome:
    if context.models is None:
        msg = "recognition: expected a model repository (models_dir), got none"
        raise EdgedError(msg)
    recognizer = context.models.resolve(options.model)
    try:
        figures = recognize(
            image,
            recognizer,
            model=str(options.model),
            roi_xywh=options.roi,
            max_predictions=options.max_predictions,
        )
    except ValueError as exc:
        raise EdgedError(str(exc)) from exc
    return CheckOutcome(figures=figures.to_dict(), regions=figures.regions("recognition"))


_PREDICTION = (
    "label_id",
    "label_name",
    "score",
    "threshold",
    "roi.region_id",
    "roi.bbox.xmin",
    "roi.bbox.ymin",
    "roi.bbox.xmax",
    "roi.bbox.ymax",
)

FIGURES: tuple[str, ...] = (
    "model",
    "kind",
    "label",
    "score",
    "count",
    f"labels.{ANY_KEY}.count",
    f"labels.{ANY_KEY}.score",
    f"{ANY_KEY}.count",
    f"{ANY_KEY}.score",
    "predicted",  # an empty list
    *(f"predicted.{ANY}.{p}" for p in _PREDICTION),
)
"""Figure paths; ``<name>`` is a label of the model's spec."""

SPEC = CheckSpec(
    "recognition",
    RecognitionOptions,
    _run,
    description="a recognition model (classification, tagging, detection) from the repository",
    figures=FIGURES,
)
