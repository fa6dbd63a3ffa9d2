"""Verdict counts per camera: since start, and over the last minute and hour.

The web page's line overview and the console summary show them. Counts are kept in
one-second buckets for the last hour (at most 3 600 small entries per camera), so a
query sums at most that many; nothing here does I/O.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import Any

VERDICTS = ("pass", "fail", "error")
WINDOWS_S = {"last_minute": 60, "last_hour": 3600}


class _Camera:
    def __init__(self) -> None:
        self.total = dict.fromkeys(VERDICTS, 0)
        self.first_s: int | None = None
        self.buckets: collections.deque[tuple[int, dict[str, int]]] = collections.deque()


class VerdictRates:
    """Verdicts per camera. ``clock`` returns seconds (monotonic); tests pass their own."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._cameras: dict[str, _Camera] = {}

    def add(self, camera: str, verdict: str) -> None:
        """Count one result of ``camera`` with ``verdict`` (pass, fail or error)."""
        if verdict not in VERDICTS:
            msg = f"verdict: expected one of {VERDICTS}, got {verdict!r}"
            raise ValueError(msg)
        now = int(self._clock())
        with self._lock:
            cam = self._cameras.setdefault(camera, _Camera())
            cam.total[verdict] += 1
            if cam.first_s is None:
                cam.first_s = now
            if not cam.buckets or cam.buckets[-1][0] != now:
                cam.buckets.append((now, dict.fromkeys(VERDICTS, 0)))
            cam.buckets[-1][1][verdict] += 1
            horizon = now - max(WINDOWS_S.values())
            while cam.buckets and cam.buckets[0][0] <= horizon:
                cam.buckets.popleft()

    def snapshot(self, camera: str) -> dict[str, Any]:
        """``{"total": {...}, "last_minute": {...}, "last_hour": {...}}``; each window
        also has ``per_min`` (results per minute over the window, or over the time since
        the camera's first result when that is shorter) and ``fail_per``
        (failed parts in percent of its results; None without results)."""
        now = int(self._clock())
        with self._lock:
            cam = self._cameras.get(camera)
            total = dict(cam.total) if cam else dict.fromkeys(VERDICTS, 0)
            buckets = list(cam.buckets) if cam else []
            first_s = cam.first_s if cam and cam.first_s is not None else now
        out: dict[str, Any] = {"total": total}
        for name, span_s in WINDOWS_S.items():
            counts = dict.fromkeys(VERDICTS, 0)
            for second, bucket in buckets:
                if second > now - span_s:
                    for v in VERDICTS:
                        counts[v] += bucket[v]
            n = sum(counts.values())
            seen_s = min(span_s, now - first_s + 1)  # a young line: over the time it ran
            out[name] = {
                **counts,
                "per_min": round(n * 60.0 / seen_s, 2),
                "fail_per": round(100.0 * counts["fail"] / n, 2) if n else None,
            }
        return out
