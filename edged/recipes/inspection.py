"""The Inspector: one recipe's checks on one image, turned into a verdict. No I/O.

``Inspector.inspect(image, context=...)`` runs each check of the recipe in order,
times it, evaluates the recipe's limits over the figures and returns an
:class:`Inspection`. Figures, timings and regions are keyed by the check's name in
the recipe (``coarse``), which is its type (``difference``) unless it says
``type:``. A check the recipe writes no limit on contributes its spec's default
limits (``anomaly``: fail when the score is above the threshold). A check that
raises, or a limit whose figure was not computed, makes the verdict ``error``
(with the reason) instead of ``fail`` or a crash; :func:`build_result` wraps an
Inspection and frame metadata into the published :class:`~edged.core.result.Result`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from edged.checks import CheckContext, CheckOptions, CheckOutcome, CheckSpec, Region, registry
from edged.config import RecipeConfig
from edged.core.errors import EdgedError
from edged.core.limits import Limit, parse_limit
from edged.core.result import FrameInfo, RegionModel, Result, Verdict, iso_utc, new_result_id
from edged.recipes.entries import check_entries


@dataclass(frozen=True, slots=True)
class Inspection:
    """What one recipe found on one image.

    ``figures`` maps check name -> that check's JSON figures; ``timings_ms`` maps
    check name -> milliseconds; ``heatmap`` is the first heatmap a check produced.
    """

    recipe: str
    verdict: Verdict
    reasons: tuple[str, ...]
    figures: Mapping[str, Mapping[str, Any]]
    regions: tuple[Region, ...]
    timings_ms: Mapping[str, float]
    heatmap: np.ndarray | None = field(default=None, compare=False)


class Inspector:
    """Runs one recipe. Build it once per recipe (options are validated here)."""

    def __init__(
        self,
        name: str,
        recipe: RecipeConfig,
        *,
        specs: Mapping[str, CheckSpec] | None = None,
    ) -> None:
        known = registry() if specs is None else specs
        self.name = name
        self.recipe = recipe
        self._steps: list[tuple[str, CheckSpec, CheckOptions]] = []
        for entry in check_entries(recipe.checks):
            if entry.type not in known:
                msg = (
                    f"recipe {name!r}: unknown check: expected one of {sorted(known)}, "
                    f"got {entry.type!r}"
                )
                raise EdgedError(msg)
            spec = known[entry.type]
            self._steps.append((entry.name, spec, spec.options.model_validate(entry.options)))
        limits = [parse_limit(t) for t in recipe.limits]
        written = {lim.path[0] for lim in limits}
        for check, spec, _ in self._steps:
            if check not in written:
                limits.extend(parse_limit(t.format(check=check)) for t in spec.default_limits)
        self._limits: tuple[Limit, ...] = tuple(limits)

    @property
    def needs_reference(self) -> bool:
        return any(spec.needs_reference for _, spec, _ in self._steps)

    @property
    def check_names(self) -> tuple[str, ...]:
        """The recipe's check names, in order."""
        return tuple(name for name, _, _ in self._steps)

    def inspect(self, image: np.ndarray, *, context: CheckContext) -> Inspection:
        """Run the recipe on ``image``: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR."""
        figures: dict[str, Mapping[str, Any]] = {}
        regions: list[Region] = []
        timings: dict[str, float] = {}
        heatmap: np.ndarray | None = None
        errors: list[str] = []
        for name, spec, options in self._steps:
            t0 = time.perf_counter()
            step_context = replace(context, regions=tuple(regions))
            try:
                outcome: CheckOutcome = spec.run(image, options, step_context)
            except EdgedError as exc:
                errors.append(f"{name}: {exc}")
                continue
            except Exception as exc:  # a check bug must not take the line down
                errors.append(f"{name}: internal error: {type(exc).__name__}: {exc}")
                continue
            finally:
                timings[name] = round((time.perf_counter() - t0) * 1000.0, 3)
            figures[name] = outcome.figures
            regions.extend(
                r if r.check == name else replace(r, check=name) for r in outcome.regions
            )
            if heatmap is None and outcome.heatmap is not None:
                heatmap = outcome.heatmap
        if errors:
            return Inspection(
                self.name, "error", tuple(errors), figures, tuple(regions), timings, heatmap
            )
        broken = [b for lim in self._limits if (b := lim.evaluate(figures)) is not None]
        verdict: Verdict = "pass"
        if any(b.missing for b in broken):
            verdict = "error"  # a figure the limits need was not computed
        elif broken:
            verdict = "fail"
        reasons = tuple(b.reason for b in broken)
        return Inspection(self.name, verdict, reasons, figures, tuple(regions), timings, heatmap)


def build_result(
    inspection: Inspection,
    *,
    node: str,
    camera: str,
    seq: int,
    frame: FrameInfo,
    timings_ms: Mapping[str, float] | None = None,
    ground_truth: Mapping[str, Any] | None = None,
) -> Result:
    """Wrap an Inspection and frame metadata into a Result (schema edged.result.v1)."""
    all_timings = dict(timings_ms or {})
    all_timings.update({f"check.{k}": v for k, v in inspection.timings_ms.items()})
    return Result(
        id=new_result_id(),
        seq=seq,
        node=node,
        camera=camera,
        recipe=inspection.recipe,
        ts=iso_utc(time.time_ns()),
        frame=frame,
        verdict=inspection.verdict,
        reasons=list(inspection.reasons),
        checks={k: dict(v) for k, v in inspection.figures.items()},
        regions=[RegionModel(**r.to_dict()) for r in inspection.regions],
        timings_ms=all_timings,
        ground_truth=dict(ground_truth) if ground_truth is not None else None,
    )


def error_inspection(recipe: str, reason: str) -> Inspection:
    """An ``error`` Inspection for a frame that could not be inspected (e.g. undecodable)."""
    return Inspection(recipe, "error", (reason,), {}, (), {})
