"""The check registry: check type -> CheckSpec, from the one list below.

Each check module exposes ``SPEC``; add a new check's module to ``_MODULES``.
Import is cheap and side-effect free: the modules are imported on first use.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from edged.checks._base import CheckOptions, CheckSpec

# The one list of checks: module paths whose ``SPEC`` recipes and LTU may use.
_MODULES: tuple[str, ...] = (
    "edged.checks.quality",
    "edged.checks.mask",
    "edged.checks.contours",
    "edged.checks.edges",
    "edged.checks.palette",
    "edged.checks.heatmap",
    "edged.checks._difference_spec",
    "edged.checks.recognition",
    "edged.checks.text",
    "edged.checks._anomaly_spec",
)


def specs() -> tuple[CheckSpec, ...]:
    """Every check spec, in registry order."""
    out = tuple(importlib.import_module(m).SPEC for m in _MODULES)
    for module, spec in zip(_MODULES, out, strict=True):
        if not isinstance(spec, CheckSpec):
            msg = f"check registry: {module}.SPEC is a {type(spec).__name__}, not a CheckSpec"
            raise TypeError(msg)
    return out


@cache
def registry() -> dict[str, CheckSpec]:
    """All known checks, by type."""
    out: dict[str, CheckSpec] = {}
    for spec in specs():
        if spec.name in out:
            msg = f"check registry: two specs named {spec.name!r}"
            raise RuntimeError(msg)
        out[spec.name] = spec
    return out


def get_spec(name: str) -> CheckSpec:
    known = registry()
    if name not in known:
        msg = f"unknown check: expected one of {sorted(known)}, got {name!r}"
        raise KeyError(msg)
    return known[name]


def validate_options(name: str, options: dict[str, Any] | None) -> CheckOptions:
    """Validate one check type's options; raises KeyError / pydantic.ValidationError."""
    return get_spec(name).options.model_validate(options or {})
