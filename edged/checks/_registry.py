"""The check registry: recipe key -> CheckSpec.

Each check module exposes ``SPEC`` (or several ``*_SPEC``); this module lists them.
Import is cheap and side-effect free: the registry is built on first use.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from edged.checks._base import CheckOptions, CheckSpec


@cache
def registry() -> dict[str, CheckSpec]:
    """All known checks, by recipe key."""
    from edged.checks import _specs

    return {spec.name: spec for spec in _specs.ALL}


def get_spec(name: str) -> CheckSpec:
    specs = registry()
    if name not in specs:
        msg = f"unknown check: expected one of {sorted(specs)}, got {name!r}"
        raise KeyError(msg)
    return specs[name]


def validate_options(name: str, options: dict[str, Any] | None) -> CheckOptions:
    """Validate one recipe check's options; raises KeyError / pydantic.ValidationError."""
    return get_spec(name).options.model_validate(options or {})
