"""What a recipe's reference model is and how it is prepared (shared by both providers).

A recipe and camera have one stored model, of the kind its checks need: the
``difference`` check's :class:`~edged.checks.prepared.PreparedReference` (a
single reference or a variation model) or the ``anomaly`` check's
:class:`~edged.checks.anomaly.AnomalyModel`. The store persists either through
:class:`~edged.checks.PreparedModel` and dispatches on the manifest's ``kind``
when it loads one (:func:`load_model`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edged.checks.anomaly import KIND as ANOMALY_KIND
from edged.checks.anomaly import AnomalyModel, AnomalyParams, train_anomaly
from edged.checks.models import PreparedModel
from edged.checks.prepared import PreparedReference, ReferenceParams, prepare_reference
from edged.core.errors import InputError

PrepareParams = ReferenceParams | AnomalyParams


def recipe_params(recipes: Mapping[str, Any] | None, recipe: str) -> PrepareParams:
    """How the model of ``recipe`` in ``recipes`` (name ->
    :class:`~edged.config.RecipeConfig`) is prepared: its ``anomaly`` check's
    training options when it has one, else its ``difference`` options; the
    defaults when the recipe is not there.

    Raises InputError when the recipe has both (they cannot share one model).
    """
    if recipes is None or recipe not in recipes:
        return ReferenceParams()
    from edged.checks._anomaly_spec import anomaly_params
    from edged.checks._difference_spec import reference_params

    cfg = recipes[recipe]
    anomaly = anomaly_params(cfg)
    if anomaly is None:
        return reference_params(cfg)
    if "difference" in (getattr(cfg, "checks", None) or {}):
        msg = (
            f"recipe {recipe!r}: expected either a difference or an anomaly check (a "
            "recipe and camera keep one reference model), got both: split them into two recipes"
        )
        raise InputError(msg)
    return anomaly


def prepare_model(
    images: Sequence[np.ndarray], *, params: PrepareParams, roi: np.ndarray | None
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


def prepared_as(meta: Mapping[str, Any], want: PrepareParams) -> bool:
    """Whether a stored model (its manifest's ``prepared`` entry) was prepared as
    ``want`` asks; when not, the store prepares it again from its stored images."""
    is_anomaly = meta.get("kind") == ANOMALY_KIND
    if isinstance(want, AnomalyParams):
        return is_anomaly and AnomalyParams.from_dict(meta["params"]) == want
    if is_anomaly:
        return False
    stored = ReferenceParams.from_dict(meta["params"])
    return stored.resolution == want.resolution and stored.behaviors == want.behaviors
