"""What every check shares: the context, the outcome the Inspector consumes, the spec.

A *check function* is pure: ``fn(image, *, option=...) -> SomeResult`` where
``SomeResult`` is a frozen dataclass with ``to_dict()``. A *check spec* adapts one
function to recipes: it validates the recipe's options once (a pydantic model) and
turns the function's result into a :class:`CheckOutcome` (figures for limits,
regions for PLCs and PEKAT's ``detectedRectangles``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from edged.checks.models import ModelParams, PreparedModel
from edged.core.regions import Region as Region  # the checks' public name for it

if TYPE_CHECKING:
    from edged.models import RecognizerSource


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What a check may know besides the image: where it runs and its reference.

    ``reference`` is the model :mod:`edged.references` prepared for this recipe and
    camera (see :mod:`edged.checks.models`), or None; a check narrows it to the
    class it needs with ``isinstance``.
    ``models`` gives recognition checks their loaded models (None: no repository).
    ``inputs`` are values given with this image at run time (``data``: the PEKAT
    ``data`` query field or the MQTT ``data`` of the camera's last trigger/recipe
    command), e.g. the lot code the part should carry. ``regions`` are those the
    recipe's earlier checks found on this image (the Inspector fills it), so a check
    can work where another one found the part.
    """

    recipe: str
    camera: str
    reference: PreparedModel | None = None
    models: RecognizerSource | None = None
    inputs: Mapping[str, str] = field(default_factory=dict)
    regions: tuple[Region, ...] = ()


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
    """Base of every check's options: unknown keys are errors.

    ``kwargs()`` gives the check function's keyword arguments: every field except
    the recipe-only ``include_images`` (put the PNG blobs in the published figures).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    def kwargs(self) -> dict[str, Any]:
        """The check function's keyword arguments."""
        return self.model_dump(exclude={"include_images"})


# A figure path segment matching any list index (``regions.*.area_px``).
ANY = "*"
# A figure path segment matching any mapping key the check only knows when it runs,
# e.g. a model's label names (``labels.<name>.score``).
ANY_KEY = "<name>"


@dataclass(frozen=True, slots=True)
class LtuReply:
    """An LTU service's answer as its document shapes it.

    ``result`` is the envelope's ``result``; ``details`` its ``details`` besides the
    name: ``name`` (when the document names it differently from the service path,
    e.g. ``heatmap`` for ``heatMap``), ``score``, ``message`` (the document's
    sentence) and ``info``; ``extra`` holds top-level keys the document shows beside
    them (``{"content", "message", "code"}`` for textDetection-style answers).
    """

    result: Mapping[str, Any]
    message: str = ""
    score: float = 0
    info: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


Compute = Callable[[np.ndarray, Any], dict[str, Any] | LtuReply]


@dataclass(frozen=True, slots=True)
class LtuService:
    """A check served as ``POST /v2/services/image/{name}`` (LTU-compatible).

    ``options`` validates the request's option fields; ``compute(image, options)``
    returns the result JSON (PNGs included), or an :class:`LtuReply` with the
    document's details too; ``summary`` is the OpenAPI summary.
    """

    name: str
    options: type[CheckOptions]
    compute: Compute
    summary: str


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """How a recipe runs one check.

    ``name`` is the check type (a recipe's ``type:``, which defaults to the entry's
    name); ``options`` validates the recipe's option mapping; ``run(image, options,
    context)`` returns the outcome (regions labelled with ``check=name``; the
    Inspector relabels them with the recipe entry's name). ``figures`` declares every
    figure path ``run`` can produce, relative to the check (``brightness.over_per``;
    ``*`` stands for any list index, ``regions.*.area_px``; ``<name>`` for a key
    known only at run time, ``labels.<name>.score``): limits are validated
    against it at load time. ``needs_reference`` marks checks that compare against
    stored references; ``reference_params(options)`` then says, from the validated
    options of every check of this type in one recipe, how that recipe's references
    are prepared (a :data:`~edged.checks.models.ModelParams`; raises ValueError when
    they cannot share one). ``ltu`` serves the check as an LTU image service.
    ``default_limits`` are limits (``{check}`` standing for the check's name in the
    recipe) that apply when the recipe writes no limit on that check, e.g.
    ``"{check}.anomalous == false"``.
    """

    name: str
    options: type[CheckOptions]
    run: Callable[[np.ndarray, Any, CheckContext], CheckOutcome]
    needs_reference: bool = False
    description: str = ""
    figures: tuple[str, ...] = ()
    ltu: LtuService | None = None
    reference_params: Callable[[Sequence[Any]], ModelParams] | None = None
    default_limits: tuple[str, ...] = ()


class _Analysis(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=_Analysis)


def _no_regions(_: Any) -> tuple[Region, ...]:
    return ()


def _no_heatmap(_: Any) -> np.ndarray | None:
    return None


def function_spec(
    name: str,
    function: Callable[..., R],
    options: type[CheckOptions],
    *,
    figures: tuple[str, ...],
    to_figures: Callable[[R, Any], Mapping[str, Any]],
    regions: Callable[[R], tuple[Region, ...]] = _no_regions,
    heatmap: Callable[[R], np.ndarray | None] = _no_heatmap,
    ltu: tuple[str, type[CheckOptions], str] | None = None,
    to_ltu: Callable[[R, Any], LtuReply] | None = None,
    description: str = "",
) -> CheckSpec:
    """The spec of a check that is one pure function ``function(image, **kwargs)``.

    ``to_figures(result, options)`` gives the recipe figures, ``regions(result)`` and
    ``heatmap(result)`` the rest of the outcome; ``ltu = (service, options model,
    summary)`` serves ``function(image, **options.kwargs()).to_dict()`` over LTU, or
    ``to_ltu(result, options)`` (the document's shape) when given.
    """

    def run(image: np.ndarray, opts: Any, _: CheckContext) -> CheckOutcome:
        result = function(image, **opts.kwargs())
        return CheckOutcome(to_figures(result, opts), regions(result), heatmap(result))

    def compute(image: np.ndarray, opts: Any) -> dict[str, Any] | LtuReply:
        result = function(image, **opts.kwargs())
        return result.to_dict() if to_ltu is None else to_ltu(result, opts)

    service = None if ltu is None else LtuService(ltu[0], ltu[1], compute, ltu[2])
    return CheckSpec(name, options, run, description=description, figures=figures, ltu=service)


def figure_paths(figures: Mapping[str, Any]) -> set[str]:
    """The leaf paths of a figures mapping, list indices written ``*``.

    ``{"a": {"b": 1}, "r": [{"x": 1}]}`` -> ``{"a.b", "r.*.x"}``; an empty list or
    a null gives its own path (a leaf whose items are not known).
    """
    out: set[str] = set()

    def walk(node: Any, prefix: tuple[str, ...]) -> None:
        if isinstance(node, Mapping) and node:
            for key, value in node.items():
                walk(value, (*prefix, str(key)))
        elif isinstance(node, list | tuple) and node:
            for item in node:
                walk(item, (*prefix, ANY))
        else:
            out.add(".".join(prefix))

    walk(figures, ())
    return out
