"""What a recipe's reference model is and how it is prepared (shared by both providers).

A recipe and camera keep one stored model, of the type its checks need (each
check spec's ``reference_params``): the ``difference`` check's
:class:`~edged.checks.prepared.PreparedReference` (a single reference or a
variation model) or the ``anomaly`` check's
:class:`~edged.checks.anomaly.AnomalyModel`. The store persists either through
:class:`~edged.checks.PreparedModel`; it prepares by the parameters' type
(:func:`prepare_model`) and loads by the manifest's ``kind`` (:func:`load_model`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edged.checks.anomaly import FORMAT_VERSION as ANOMALY_FORMAT
from edged.checks.anomaly import KIND as ANOMALY_KIND
from edged.checks.anomaly import AnomalyModel, AnomalyParams, train_anomaly
from edged.checks.models import ModelParams, PreparedModel
from edged.checks.prepared import PreparedReference, ReferenceParams, prepare_reference
from edged.core.errors import InputError


def recipe_params(recipes: Mapping[str, Any] | None, recipe: str) -> ModelParams:
    """How the model of ``recipe`` in ``recipes`` (name ->
    :class:`~edged.config.RecipeConfig`) is prepared; the defaults when it is not
    there. Raises InputError when its checks cannot share one model."""
    if recipes is None or recipe not in recipes:
        return ReferenceParams()
    from edged.recipes.entries import reference_params

    try:
        return reference_params(recipes[recipe])
    except ValueError as exc:
        msg = f"recipe {recipe!r}: {exc}"
        raise InputError(msg) from exc


def prepare_model(
    images: Sequence[np.ndarray], *, params: ModelParams, roi: np.ndarray | None
) -> PreparedModel:
    """The model ``params`` asks for, prepared from good ``images``."""
    if isinstance(params, AnomalyParams):
        return train_anomaly(images, params=params, roi=roi)
    return prepare_reference(images, params=params, roi=roi)


def load_model(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> PreparedModel:
    """A stored model rebuilt from its manifest's ``prepared`` entry and arrays, by
    its ``kind`` (InputError when they are inconsistent)."""
    if meta.get("kind") == ANOMALY_KIND:
        return AnomalyModel.from_arrays(meta, arrays)
    return PreparedReference.from_arrays(meta, arrays)


def prepared_as(meta: Mapping[str, Any], want: ModelParams) -> bool:
    """Whether a stored model (its manifest's ``prepared`` entry) was prepared as
    ``want`` asks; when not, the store prepares it again from its stored images."""
    is_anomaly = meta.get("kind") == ANOMALY_KIND
    if isinstance(want, AnomalyParams):
        fmt = meta.get("format")
        if is_anomaly and isinstance(fmt, int) and fmt < ANOMALY_FORMAT:
            return False  # an older format (1: no position classes) is trained again
        return is_anomaly and AnomalyParams.from_dict(meta["params"]) == want
    if is_anomaly:
        return False
    stored = ReferenceParams.from_dict(meta["params"])
    return stored == want  # resolution, channels, colour, lighting, motion: else prepare again
