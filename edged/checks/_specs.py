"""The list of check specs known to recipes. Add a module's SPEC here."""

from __future__ import annotations

from edged.checks._base import CheckSpec

ALL: tuple[CheckSpec, ...] = ()
