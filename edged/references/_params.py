"""How a recipe wants its references prepared (shared by both reference providers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edged.checks.prepared import ReferenceParams


def recipe_params(recipes: Mapping[str, Any] | None, recipe: str) -> ReferenceParams:
    """The preparation parameters of ``recipe`` in ``recipes`` (name ->
    :class:`~edged.config.RecipeConfig`); the defaults when it is not there."""
    if recipes is None or recipe not in recipes:
        return ReferenceParams()
    from edged.recipes.entries import reference_params

    return reference_params(recipes[recipe])
