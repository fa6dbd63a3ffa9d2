"""The default recipe (quality, mask, difference against a stored reference), built
from whatever checks this checkout registers, and the reference store behind it."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edged.checks import registry
from edged.config import RecipeConfig

DEFAULT_CHECKS: tuple[str, ...] = ("quality", "mask", "difference")
RECIPE = "bench"


def default_recipe() -> tuple[RecipeConfig, list[str]]:
    """The default recipe's registered checks (default options, no limits: verdict logic
    costs microseconds) and the names of the checks this checkout lacks."""
    known = registry()
    present = [c for c in DEFAULT_CHECKS if c in known]
    missing = [c for c in DEFAULT_CHECKS if c not in known]
    return RecipeConfig(checks={c: {} for c in present}), missing


def reference_store(root: Path, recipe: RecipeConfig | None = None) -> Any | None:
    """edged's reference store on ``root`` (preparing references for ``recipe`` as the
    daemon does), or None when this checkout has none."""
    try:
        references = importlib.import_module("edged.references")
    except ImportError:
        return None
    recipes = {RECIPE: recipe if recipe is not None else default_recipe()[0]}
    return references.ReferenceStore(root, recipes=recipes)


def teach(store: Any, cameras: Sequence[str], images: Sequence[np.ndarray]) -> None:
    """Store ``images`` as the bench recipe's references for each camera."""
    for camera in cameras:
        store.teach(RECIPE, camera, list(images))
