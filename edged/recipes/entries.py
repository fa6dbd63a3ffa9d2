"""A recipe's check entries: ``name: {type: T, ...options}``, type defaulting to name.

``checks: {quality: {}}`` is one check named and typed ``quality``;
``checks: {coarse: {type: difference, preset: 5}, fine: {type: difference}}`` runs
two difference checks, each with its own figures (``coarse.count``, ``fine.count``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edged.checks import CheckOptions, registry
from edged.checks.models import ModelParams
from edged.checks.prepared import ReferenceParams
from edged.config import RecipeConfig

# A check name is the first segment of a limit path.
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class CheckEntry:
    """One entry of a recipe's ``checks``: its name, type and raw options."""

    name: str
    type: str
    options: Mapping[str, Any]


def check_entries(checks: Mapping[str, Mapping[str, Any] | None]) -> tuple[CheckEntry, ...]:
    """The entries of a recipe's ``checks`` mapping, in order (nothing validated)."""
    out = []
    for name, raw in checks.items():
        options = dict(raw or {})
        kind = options.pop("type", name)
        out.append(CheckEntry(name, kind if isinstance(kind, str) else repr(kind), options))
    return tuple(out)


def reference_params(recipe: RecipeConfig | None) -> ModelParams:
    """How the reference model of ``recipe`` is prepared: from the options of its
    checks that need one (``difference``: a prepared reference; ``anomaly``: an
    anomaly model), the first registered such check's defaults when it has none.

    Raises ValueError when those checks cannot share one model (different types,
    or options that disagree); the recipe validation reports that at load time.
    """
    known = registry()
    by_type: dict[str, list[CheckOptions]] = {}
    for entry in check_entries(recipe.checks if recipe is not None else {}):
        spec = known.get(entry.type)
        if spec is not None and spec.reference_params is not None:
            by_type.setdefault(entry.type, []).append(spec.options.model_validate(entry.options))
    if len(by_type) > 1:
        msg = (
            f"checks of types {sorted(by_type)} each need their own reference model, and a "
            "recipe and camera keep one: expected checks of one of these types per recipe "
            "(split them into two recipes)"
        )
        raise ValueError(msg)
    for kind, options in by_type.items():
        params = known[kind].reference_params
        assert params is not None
        return params(options)
    for spec in known.values():
        if spec.reference_params is not None:
            return spec.reference_params(())
    return ReferenceParams()
