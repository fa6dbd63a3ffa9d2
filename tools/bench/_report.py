"""What a section reports, how targets are judged, and the one markdown table.

Every figure is a :class:`Metric` (a number with its unit, the frame size it was
measured at, the text shown in the table and any secondary numbers). A section
that cannot run (its component is not in this checkout) says so in ``note`` with
``available=False`` instead of failing the suite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["PASS", "MISS", "n/a"]
Extra = Mapping[str, float | int | str | bool | None]


@dataclass(frozen=True, slots=True)
class Metric:
    """One measured figure. ``size`` is the frame size label (e.g. ``"2448x2048"``)."""

    name: str
    value: float
    unit: str
    size: str
    text: str
    extra: Extra = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "value": round(self.value, 4),
            "unit": self.unit,
            "text": self.text,
            **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.extra.items()},
        }


@dataclass(frozen=True, slots=True)
class Target:
    """A target from issue 9, judged on one metric (``metric`` at ``size``)."""

    name: str
    goal: str
    status: Status
    value: float | None
    unit: str
    metric: str
    size: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "goal": self.goal,
            "status": self.status,
            "value": None if self.value is None else round(self.value, 4),
            "unit": self.unit,
            "metric": self.metric,
            "size": self.size,
            "note": self.note,
        }


def judge(
    name: str,
    goal: str,
    value: float | None,
    unit: str,
    *,
    ok: bool | None,
    metric: str,
    size: str,
    note: str = "",
) -> Target:
    """A Target: PASS when ``ok``, MISS when not, n/a when it could not be measured."""
    status: Status = "n/a" if ok is None or value is None else ("PASS" if ok else "MISS")
    return Target(name, goal, status, value, unit, metric, size, note)


@dataclass
class SectionReport:
    """What one section measured (or why it could not)."""

    name: str
    title: str
    available: bool = True
    note: str = ""
    metrics: list[Metric] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    profiles: dict[str, list[str]] = field(default_factory=dict)
    duration_s: float = 0.0
    loadavg_1m: tuple[float, float] = (0.0, 0.0)
    """The machine's 1-minute load average when the section started and ended."""

    def add(
        self,
        name: str,
        value: float,
        unit: str,
        size: str,
        text: str | None = None,
        **extra: float | int | str | bool | None,
    ) -> Metric:
        m = Metric(name, float(value), unit, size, text or fmt_value(value, unit), extra)
        self.metrics.append(m)
        return m

    def skip(self, name: str, reason: str) -> None:
        self.skipped.append((name, reason))

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "available": self.available,
            "note": self.note,
            "duration_s": round(self.duration_s, 2),
            "loadavg_1m": [round(x, 2) for x in self.loadavg_1m],
            "metrics": [m.to_dict() for m in self.metrics],
            "skipped": [{"name": n, "reason": r} for n, r in self.skipped],
            "targets": [t.to_dict() for t in self.targets],
            "profiles": self.profiles,
        }


def not_available(name: str, title: str, reason: str) -> SectionReport:
    return SectionReport(name, title, available=False, note=f"not available: {reason}")


def fmt_value(value: float, unit: str) -> str:
    """``12.3 ms``, ``0.842 ms``, ``1234 req/s``: three significant digits, unit kept."""
    if value == 0:
        num = "0"
    elif abs(value) >= 100:
        num = f"{value:.0f}"
    elif abs(value) >= 10:
        num = f"{value:.1f}"
    elif abs(value) >= 1:
        num = f"{value:.2f}"
    else:
        num = f"{value:.3f}"
    return f"{num}×" if unit == "x" else f"{num} {unit}"


def fmt_spread(median: float, low: float, high: float, unit: str) -> str:
    """``12.3 ms [11.0–15.2]``: a median with the spread of the values it summarises."""
    num = fmt_value(median, unit)
    lo, hi = (fmt_value(v, unit).removesuffix(f" {unit}").removesuffix("×") for v in (low, high))
    return f"{num} [{lo}–{hi}]"


def markdown_table(sections: Sequence[SectionReport], sizes: Sequence[str]) -> str:
    """One table: a row per (section, measurement), a column per frame size, a target column."""
    head = ["section", "measurement", *[s.replace("x", "×") for s in sizes], "target"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for sec in sections:
        if not sec.available:
            lines.append(_row([sec.name, sec.note, *["—"] * len(sizes), ""]))
            continue
        about = [sec.note] if sec.note else []
        if sec.loadavg_1m != (0.0, 0.0):
            about.append(f"load {sec.loadavg_1m[0]:.1f}→{sec.loadavg_1m[1]:.1f}")
        if about:
            lines.append(_row([sec.name, f"({'; '.join(about)})", *[""] * len(sizes), ""]))
        rows: dict[str, dict[str, str]] = {}
        for m in sec.metrics:
            rows.setdefault(m.name, {})[m.size] = m.text
        goals: dict[str, list[str]] = {}
        for t in sec.targets:
            cell = f"{t.goal}: **{t.status}**" + (f" ({t.note})" if t.note else "")
            if t.metric in rows:
                goals.setdefault(t.metric, []).append(cell)
            else:
                rows[t.name] = {t.size: "—"}
                goals.setdefault(t.name, []).append(cell)
        for name, cells in rows.items():
            goal = "; ".join(goals.get(name, []))
            lines.append(_row([sec.name, name, *[cells.get(s, "") for s in sizes], goal]))
        for name, reason in sec.skipped:
            lines.append(_row([sec.name, name, *["—"] * len(sizes), f"skipped: {reason}"]))
    return "\n".join(lines)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def targets_of(sections: Sequence[SectionReport]) -> list[Target]:
    return [t for s in sections for t in s.targets]
