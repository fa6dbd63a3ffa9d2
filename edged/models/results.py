"""What a recognition returns, in the Deepomatic v0.7 shape.

Boxes are normalised to [0, 1] of the whole image given to the recogniser, origin
top-left. ``to_dict()`` gives the document's JSON: ``{label_id, label_name, score,
threshold, roi: {region_id, bbox: {xmin, ymin, xmax, ymax}}}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["classification", "tagging", "detection"]


@dataclass(frozen=True, slots=True)
class BBox:
    """A box normalised to [0, 1], origin top-left."""

    xmin: float
    ymin: float
    xmax: float
    ymax: float

    def to_dict(self) -> dict[str, float]:
        return {"xmin": self.xmin, "ymin": self.ymin, "xmax": self.xmax, "ymax": self.ymax}

    def to_pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """``(x, y, width, height)`` in pixels of a ``width`` x ``height`` image."""
        x0 = round(self.xmin * width)
        y0 = round(self.ymin * height)
        x1 = round(self.xmax * width)
        y1 = round(self.ymax * height)
        return x0, y0, max(0, x1 - x0), max(0, y1 - y0)


FULL_IMAGE = BBox(0.0, 0.0, 1.0, 1.0)


@dataclass(frozen=True, slots=True)
class Prediction:
    """One label (classification, tagging) or one object (detection)."""

    label_id: int
    label_name: str
    score: float
    threshold: float
    region_id: int
    bbox: BBox

    def to_dict(self) -> dict[str, Any]:
        return {
            "label_id": self.label_id,
            "label_name": self.label_name,
            "score": self.score,
            "threshold": self.threshold,
            "roi": {"region_id": self.region_id, "bbox": self.bbox.to_dict()},
        }


@dataclass(frozen=True, slots=True)
class Recognition:
    """Predicted (score >= threshold) and discarded labels, each sorted by score."""

    kind: Kind
    predicted: tuple[Prediction, ...]
    discarded: tuple[Prediction, ...]

    @property
    def top(self) -> Prediction | None:
        """The best predicted label, or None."""
        return self.predicted[0] if self.predicted else None

    def to_dict(self, *, show_discarded: bool = True) -> dict[str, Any]:
        """The document's ``{"outputs": [{"labels": {"predicted", "discarded"}}]}``."""
        labels = {
            "predicted": [p.to_dict() for p in self.predicted],
            "discarded": [p.to_dict() for p in self.discarded] if show_discarded else [],
        }
        return {"outputs": [{"labels": labels}]}
