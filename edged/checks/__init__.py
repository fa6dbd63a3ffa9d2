"""Checks: pure functions over images, and the specs that let recipes run them.

Images are ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR; points are ``(x, y)``.
"""

from edged.checks._base import CheckContext, CheckOptions, CheckOutcome, CheckSpec
from edged.checks._registry import get_spec, registry, validate_options
from edged.checks.models import PreparedModel
from edged.core.regions import Region

__all__ = [
    "CheckContext",
    "CheckOptions",
    "CheckOutcome",
    "CheckSpec",
    "PreparedModel",
    "Region",
    "get_spec",
    "registry",
    "validate_options",
]
