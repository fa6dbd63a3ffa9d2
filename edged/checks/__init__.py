"""Checks: pure functions over images, and the specs that let recipes run them.

Images are ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR; points are ``(x, y)``.
Each check module exports ``SPEC`` (:class:`CheckSpec`); :func:`registry` collects
them from the one list in :mod:`edged.checks._registry`.

Adding a check: write ``edged/checks/NAME.py`` with the pure function, its frozen
result (``to_dict()``), its options model and ``SPEC`` (:func:`function_spec` for a
one-function check; declare every figure path, ``*`` for list indices, and an LTU
service name if it has one, with ``to_ltu`` giving the LTU document's shape); add
the module to ``_MODULES`` in ``_registry.py``; add its tests. Recipes
(``type: NAME``), limit validation, the LTU routes and their OpenAPI paths follow
from the registry.
"""

from edged.checks._base import (
    ANY,
    ANY_KEY,
    CheckContext,
    CheckOptions,
    CheckOutcome,
    CheckSpec,
    LtuReply,
    LtuService,
    figure_paths,
    function_spec,
)
from edged.checks._png import image_object
from edged.checks._registry import get_spec, registry, specs, validate_options
from edged.checks.models import PreparedModel
from edged.core.regions import Region

__all__ = [
    "ANY",
    "ANY_KEY",
    "CheckContext",
    "CheckOptions",
    "CheckOutcome",
    "CheckSpec",
    "LtuReply",
    "LtuService",
    "PreparedModel",
    "Region",
    "figure_paths",
    "function_spec",
    "get_spec",
    "image_object",
    "registry",
    "specs",
    "validate_options",
]
