"""A reference provider without a disk: the same good images for every camera."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edged.checks.models import ModelParams, PreparedModel
from edged.core.errors import InputError
from edged.references._params import prepare_model, recipe_params


class InMemoryReferences:
    """A reference provider without a disk (``edged analyze --reference``, tests): the
    same good images for every recipe and camera, prepared once per recipe's
    parameters (see ``ReferenceStore``'s ``recipes``): a reference, or an anomaly
    model for recipes with an ``anomaly`` check."""

    def __init__(
        self,
        images: Sequence[np.ndarray],
        *,
        roi: np.ndarray | None = None,
        recipes: Mapping[str, Any] | None = None,
    ) -> None:
        if not images:
            msg = "references: expected at least one good image, got none"
            raise InputError(msg)
        self._images = list(images)
        self._roi = roi
        self._recipes = dict(recipes) if recipes is not None else None
        self._lock = threading.Lock()
        self._by_params: dict[ModelParams, PreparedModel] = {}

    @classmethod
    def from_images(
        cls,
        images: Sequence[np.ndarray],
        *,
        roi: np.ndarray | None = None,
        recipes: Mapping[str, Any] | None = None,
    ) -> InMemoryReferences:
        return cls(images, roi=roi, recipes=recipes)

    def prepared(self, recipe: str, camera: str) -> PreparedModel | None:
        params = recipe_params(self._recipes, recipe)
        with self._lock:
            ref = self._by_params.get(params)
            if ref is None:
                ref = prepare_model(self._images, params=params, roi=self._roi)
                self._by_params[params] = ref
            return ref
