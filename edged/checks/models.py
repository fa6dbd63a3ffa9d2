"""Prepared models: what a check compares an image against, built once from stored data.

A reference store prepares a model when good images are taught (or when a
recipe's preparation parameters change) and hands it to the check through
:attr:`edged.checks.CheckContext.reference`. There are two kinds: the
:class:`~edged.checks.prepared.PreparedReference` of the ``difference`` check
(a single reference or a per-pixel variation model) and the
:class:`~edged.checks.anomaly.AnomalyModel` of the ``anomaly`` check; a
recognition model would become another class satisfying :class:`PreparedModel`,
persisted by the same store, and the check that uses it narrows the context's
reference with ``isinstance`` to its own class (mypy checks both sides).
:data:`ModelParams` is what a check's spec says a recipe's model is prepared
with; the store dispatches on its type (and on the manifest's ``kind`` when it
loads a stored model).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import numpy as np

if TYPE_CHECKING:
    from edged.checks.anomaly import AnomalyParams
    from edged.checks.prepared import ReferenceParams

ModelParams: TypeAlias = "ReferenceParams | AnomalyParams"


class PreparedModel(Protocol):
    """What every prepared model offers the store and the checks.

    ``kind`` names the model for people and the admin API (``"single"``,
    ``"variation"``, later e.g. ``"anomaly"``); ``n_images`` is how many good
    images it was prepared from. :meth:`meta` (JSON-able) and :meth:`arrays`
    (named NumPy arrays) are everything the store persists; the model's class
    rebuilds it from them.
    """

    @property
    def kind(self) -> str: ...

    @property
    def n_images(self) -> int: ...

    def meta(self) -> dict[str, Any]: ...

    def arrays(self) -> dict[str, np.ndarray]: ...
