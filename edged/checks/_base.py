"""What every check shares: regions, the outcome the Inspector consumes, the spec.

A *check function* is pure: ``fn(image, *, option=...) -> SomeResult`` where
``SomeResult`` is a frozen dataclass with ``to_dict()``. A *check spec* adapts one
function to recipes: it validates the recipe's options once (a pydantic model) and
turns the function's result into a :class:`CheckOutcome` (figures for limits,
regions for PLCs and PEKAT's ``detectedRectangles``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from edged.models import RecognizerSource


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


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What a check may know besides the image: where it runs and its reference.

    ``reference`` is whatever :mod:`edged.references` prepared for this recipe and
    camera (images, precomputed registration data, variation model), or None.
    ``models`` gives recognition checks their loaded models (None: no repository).
    """

    recipe: str
    camera: str
    reference: Any = None
    models: RecognizerSource | None = None


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """A check's contribution to a Result.

    ``figures`` is the JSON shape of the check's result (nested dicts of numbers,
    strings, bools and lists); limits address it with dotted paths. ``heatmap`` is
    an optional ``(H, W)`` float32 array in [0, 1] for rendering.
    """

    figures: Mapping[str, Any]
    regions: tuple[Region, ...] = ()
    heatmap: np.ndarray | None = field(default=None, compare=False)


class CheckOptions(BaseModel):
    """Base of every check's options: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """How a recipe runs one check.

    ``name`` is the recipe key; ``options`` validates the recipe's option mapping;
    ``run(image, options, context)`` returns the outcome. ``needs_reference`` marks
    checks that compare against stored references.
    """

    name: str
    options: type[CheckOptions]
    run: Callable[[np.ndarray, Any, CheckContext], CheckOutcome]
    needs_reference: bool = False
    description: str = ""
