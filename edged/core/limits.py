"""Limits: the expressions a recipe uses to turn figures into a verdict.

Grammar (one limit per string)::

    PATH OP VALUE          quality.brightness.over_per <= 2
    PATH in [LOW, HIGH]    mask.area_px in [1000, 50000]     (inclusive)
    PATH OP "TEXT"         quality.encoding == "OK"

``PATH`` is a dotted path into the Result's ``checks`` mapping; ``OP`` is one of
``<= < >= > == !=``; ``VALUE`` is a number, ``true``/``false`` or a quoted string.
A broken limit reads as one line a PLC operator can follow, e.g.
``quality.brightness.over_per = 7.5, limit <= 2``. A figure that was not computed
at all breaks its limit as :attr:`Broken.missing`: the verdict is ``error`` (the
line cannot tell good from bad), never ``fail``. A figure the check computed as
absent (a null box when there is no object, ``regions.0`` when there are no
regions) is a value: ``mask.boundingBox.width = None is not a number``, ``fail``.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_PATH = r"(?P<path>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)+)"
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_CMP_RE = re.compile(
    rf"^\s*{_PATH}\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<value>{_NUM}|true|false|\"[^\"]*\"|'[^']*')\s*$"
)
_IN_RE = re.compile(rf"^\s*{_PATH}\s+in\s*\[\s*(?P<low>{_NUM})\s*,\s*(?P<high>{_NUM})\s*\]\s*$")


@dataclass(frozen=True, slots=True)
class Broken:
    """Why a limit does not hold. ``missing``: its figure was not computed."""

    reason: str
    missing: bool = False


@dataclass(frozen=True, slots=True)
class Limit:
    """A parsed limit. ``value`` is a number, bool or str; ``high`` is set for ``in``."""

    text: str
    path: tuple[str, ...]
    op: str
    value: float | bool | str
    high: float | None = None

    @property
    def name(self) -> str:
        """The figure path, dotted."""
        return ".".join(self.path)

    def check(self, figures: Mapping[str, Any]) -> str | None:
        """None when the limit holds, else the reason it is broken."""
        broken = self.evaluate(figures)
        return None if broken is None else broken.reason

    def evaluate(self, figures: Mapping[str, Any]) -> Broken | None:
        """None when the limit holds, else why not (``missing`` when not computed)."""
        found = lookup(figures, self.path)
        if found is _MISSING:
            return Broken(f"{self.name} was not computed (limit {self.describe()})", missing=True)
        reason = self._compare(found)
        return None if reason is None else Broken(reason)

    def _compare(self, found: Any) -> str | None:
        name = self.name
        if self.op == "in":
            if not _is_number(found):
                return f"{name} = {found!r} is not a number (limit {self.describe()})"
            low, high = float(self.value), float(self.high or 0.0)
            if low <= float(found) <= high:
                return None
            return f"{name} = {_fmt(found)}, limit {self.describe()}"
        if isinstance(self.value, float) and not _is_number(found):
            return f"{name} = {found!r} is not a number (limit {self.describe()})"
        if _OPS[self.op](found, self.value):
            return None
        return f"{name} = {_fmt(found)}, limit {self.describe()}"

    def describe(self) -> str:
        if self.op == "in":
            return f"in [{_fmt(self.value)}, {_fmt(self.high)}]"
        return f"{self.op} {_fmt(self.value)}"


_MISSING = object()


def lookup(figures: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The figure at ``path``; None where the check says there is none (a null on
    the way, an index past the end of a list: a limit on it breaks, ``fail``);
    ``_MISSING`` where the check did not produce that figure at all (``error``)."""
    node: Any = figures
    for part in path:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif node is None or (isinstance(node, list) and part.isdigit()):
            if node is None or int(part) >= len(node):
                return None
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.6g}"
    if isinstance(x, str):
        return f'"{x}"'
    return str(x).lower() if isinstance(x, bool) else str(x)


def parse_limit(text: str) -> Limit:
    """Parse one limit; raises ValueError saying what was expected and what came."""
    if m := _IN_RE.match(text):
        low, high = float(m["low"]), float(m["high"])
        if low > high:
            msg = f"limit {text!r}: expected LOW <= HIGH in [LOW, HIGH], got [{low}, {high}]"
            raise ValueError(msg)
        return Limit(text, tuple(m["path"].split(".")), "in", low, high)
    if m := _CMP_RE.match(text):
        raw = m["value"]
        value: float | bool | str
        if raw in ("true", "false"):
            value = raw == "true"
        elif raw[0] in "\"'":
            value = raw[1:-1]
        else:
            value = float(raw)
        if isinstance(value, str | bool) and m["op"] not in ("==", "!="):
            msg = f"limit {text!r}: expected == or != with a text or true/false, got {m['op']}"
            raise ValueError(msg)
        return Limit(text, tuple(m["path"].split(".")), m["op"], value)
    msg = (
        f"limit {text!r}: expected 'check.figure OP value' (OP one of <= < >= > == !=) "
        "or 'check.figure in [low, high]'"
    )
    raise ValueError(msg)
