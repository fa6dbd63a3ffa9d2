"""What every check shares: the context, the outcome the Inspector consumes, the spec.

A *check function* is pure: ``fn(image, *, option=...) -> SomeResult`` where
``SomeResult`` is a frozen dataclass with ``to_dict()``. A *check spec* adapts one
function to recipes: it validates the recipe's options once (a pydantic model) and
turns the function's result into a :class:`CheckOutcome` (figures for limits,
regions for PLCs and PEKAT's ``detectedRectangles``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from edged.checks.models import PreparedModel
from edged.core.regions import Region as Region  # the checks' public name for it


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What a check may know besides the image: where it runs and its reference.

    ``reference`` is the model :mod:`edged.references` prepared for this recipe and
    camera (see :mod:`edged.checks.models`), or None; a check narrows it to the
    class it needs with ``isinstance``.
    """

    recipe: str
    camera: str
    reference: PreparedModel | None = None


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
    checks that compare against stored references. ``default_limits`` are limits
    (``{check}`` standing for the check's name in the recipe) that apply when the
    recipe writes no limit on the check, e.g. ``"{check}.anomalous == false"``.
    """

    name: str
    options: type[CheckOptions]
    run: Callable[[np.ndarray, Any, CheckContext], CheckOutcome]
    needs_reference: bool = False
    description: str = ""
    default_limits: tuple[str, ...] = ()
