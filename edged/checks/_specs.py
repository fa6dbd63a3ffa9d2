"""The list of check specs known to recipes. Add a module's SPEC here."""

from __future__ import annotations

from edged.checks._base import CheckSpec
from edged.checks._difference_spec import SPEC as DIFFERENCE_SPEC

ALL: tuple[CheckSpec, ...] = (DIFFERENCE_SPEC,)
