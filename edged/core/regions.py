"""Regions: where a check found something, in pixels of the inspected image.

A core type: checks produce regions and :mod:`edged.imaging.render` draws them,
and imaging imports nothing of edged but core. ``edged.checks.Region`` is the
same class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Region:
    """A region of interest found by a check, in pixels of the inspected image.

    ``x, y`` is the top-left corner; ``label`` says what it is (``"defect"``,
    ``"object"``, ``"spot"``); ``score`` is a confidence or strength in [0, 1]
    where the check has one.
    """

    x: int
    y: int
    width: int
    height: int
    label: str
    check: str
    score: float | None = None
    area_px: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "x": self.x,
            "y": self.y,
            "width": self.width,
            "height": self.height,
            "label": self.label,
            "check": self.check,
        }
        if self.score is not None:
            d["score"] = round(float(self.score), 4)
        if self.area_px is not None:
            d["area_px"] = self.area_px
        return d
