"""Apply GenICam node-map features from the config, each one checked.

Runs in the acquisition child, on a stopped device. Every feature is looked up,
checked against what the device allows (access mode, integer range and
increment, float range, enumeration entries) and read back after writing; a
refusal names the feature and what was allowed, so an integrator can fix the
config without a vendor tool.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from genicam import genapi

Value = int | float | str | bool

# Features that change the ranges of others go first; offsets are zeroed before
# the ROI size is set and written after it (the usual GenICam ROI dance).
_FIRST = (
    "DeviceScanType",
    "PixelFormat",
    "BinningSelector",
    "BinningHorizontal",
    "BinningVertical",
    "DecimationHorizontal",
    "DecimationVertical",
    "Width",
    "Height",
    "OffsetX",
    "OffsetY",
    "TriggerSelector",
    "TriggerMode",
    "TriggerSource",
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A feature the device did not accept, with the reason and what it allows."""

    feature: str
    reason: str

    def __str__(self) -> str:
        return f"{self.feature}: {self.reason}"

    def to_dict(self) -> dict[str, str]:
        return {"feature": self.feature, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class FeatureReport:
    """What was applied (feature -> value read back) and what was refused."""

    applied: dict[str, Value]
    refused: tuple[Refusal, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"applied": dict(self.applied), "refused": [r.to_dict() for r in self.refused]}


def ordered(features: Mapping[str, Value]) -> list[tuple[str, Value]]:
    """Features in a safe write order: format/binning, ROI, trigger, then the rest."""
    rank = {name: i for i, name in enumerate(_FIRST)}
    items = list(features.items())
    return sorted(items, key=lambda kv: rank.get(kv[0], len(_FIRST)))


def apply_features(node_map: Any, features: Iterable[tuple[str, Value]]) -> FeatureReport:
    """Write each ``(name, value)`` to ``node_map``; collect what was refused."""
    items = list(features)
    names = {name for name, _ in items}
    applied: dict[str, Value] = {}
    refused: list[Refusal] = []
    # Zero the offsets first so a larger Width/Height fits.
    for offset in ("OffsetX", "OffsetY"):
        if offset in names:
            node = _node(node_map, offset)
            if node is not None and _writable(node):
                with contextlib.suppress(genapi.GenericException):
                    node.value = node.min
    for name, value in items:
        try:
            applied[name] = set_feature(node_map, name, value)
        except FeatureRefused as exc:
            refused.append(exc.refusal)
    return FeatureReport(applied, tuple(refused))


class FeatureRefused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal


def _node(node_map: Any, name: str) -> Any:
    try:
        return node_map.get_node(name)
    except (genapi.GenericException, AttributeError):
        return None


def _writable(node: Any) -> bool:
    mode = int(node.get_access_mode())
    return mode in (int(genapi.EAccessMode.WO), int(genapi.EAccessMode.RW))


def _access_text(node: Any) -> str:
    mode = int(node.get_access_mode())
    return {
        int(genapi.EAccessMode.NI): "not implemented on this device",
        int(genapi.EAccessMode.NA): "not available in the current device state",
        int(genapi.EAccessMode.RO): "read-only",
    }.get(mode, f"not writable (access mode {mode})")


def _short(exc: BaseException) -> str:
    """The first sentence of a GenApi exception, without file/line noise."""
    text = str(exc)
    return text.split(" : ")[0].split(". :")[0].strip() or type(exc).__name__


def set_feature(node_map: Any, name: str, value: Value) -> Value:
    """Check and write one feature; return the value read back.

    Raises FeatureRefused with the allowed range/values in its reason.
    """
    node = _node(node_map, name)
    if node is None:
        raise FeatureRefused(Refusal(name, "no such feature on this device"))
    if isinstance(node, genapi.ICommand):
        if value is not True:
            raise FeatureRefused(Refusal(name, f"a command: expected true, got {value!r}"))
        if not _writable(node):
            raise FeatureRefused(Refusal(name, _access_text(node)))
        try:
            node.execute()
        except genapi.GenericException as exc:
            raise FeatureRefused(Refusal(name, f"command failed: {_short(exc)}")) from exc
        return True
    if not _writable(node):
        raise FeatureRefused(Refusal(name, _access_text(node)))
    if isinstance(node, genapi.IInteger):
        return _set_int(node, name, value)
    if isinstance(node, genapi.IFloat):
        return _set_float(node, name, value)
    if isinstance(node, genapi.IEnumeration):
        return _set_enum(node, name, value)
    if isinstance(node, genapi.IBoolean):
        if not isinstance(value, bool):
            raise FeatureRefused(Refusal(name, f"expected true or false, got {value!r}"))
        _write(node, name, value)
        return bool(node.value)
    if isinstance(node, genapi.IString):
        _write(node, name, str(value))
        return str(node.value)
    raise FeatureRefused(Refusal(name, f"a {type(node).__name__} node cannot be set from config"))


def _write(node: Any, name: str, value: Value) -> None:
    try:
        node.value = value
    except genapi.GenericException as exc:
        raise FeatureRefused(Refusal(name, f"refused {value!r}: {_short(exc)}")) from exc


def _set_int(node: Any, name: str, value: Value) -> int:
    lo, hi = int(node.min), int(node.max)
    try:
        inc = int(node.inc)
    except genapi.GenericException:
        inc = 1
    allowed = f"an integer in [{lo}, {hi}]" + (f" in steps of {inc} from {lo}" if inc > 1 else "")
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise FeatureRefused(Refusal(name, f"expected {allowed}, got {value!r}"))
    v = int(value)
    if not lo <= v <= hi or (inc > 1 and (v - lo) % inc):
        raise FeatureRefused(Refusal(name, f"expected {allowed}, got {v}"))
    _write(node, name, v)
    got = int(node.value)
    if got != v:
        raise FeatureRefused(Refusal(name, f"wrote {v} but the device reads back {got}"))
    return got


def _set_float(node: Any, name: str, value: Value) -> float:
    lo, hi = float(node.min), float(node.max)
    try:
        unit = f" {node.unit}" if node.unit else ""
    except genapi.GenericException:
        unit = ""
    allowed = f"a number in [{lo:g}, {hi:g}]{unit}"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FeatureRefused(Refusal(name, f"expected {allowed}, got {value!r}"))
    v = float(value)
    if not lo <= v <= hi:
        raise FeatureRefused(Refusal(name, f"expected {allowed}, got {v:g}"))
    _write(node, name, v)
    # Devices round floats to what the hardware can do (line times, clock ticks):
    # the read-back value is what is in effect, reported as applied.
    return float(node.value)


def _set_enum(node: Any, name: str, value: Value) -> str:
    entries = [str(s) for s in node.symbolics]
    if not isinstance(value, str) or value not in entries:
        raise FeatureRefused(Refusal(name, f"expected one of {entries}, got {value!r}"))
    _write(node, name, value)
    got = str(node.value)
    if got != value:
        raise FeatureRefused(Refusal(name, f"wrote {value!r} but the device reads back {got!r}"))
    return got
