"""A fixed-rate frame schedule, for the sources that set their own pace (synthetic
lines, video files and image folders, the benchmark's replay)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Pacer:
    """Books frames at ``fps`` and says how long to wait for each.

    ``max_lag_periods`` is how far the schedule may fall behind the clock. After a
    stall, the frames booked in the last ``max_lag_periods`` periods are still due
    (they come at once) and older ones are skipped: ``-1`` makes up none and books
    the frame after a late one a full period later; ``inf`` makes up every one (the
    average rate is exact).
    """

    max_lag_periods: float = -1.0
    _next_s: float | None = None

    def wait_s(self, now_s: float, fps: float) -> float:
        """Seconds to wait from ``now_s`` until the next frame is due (0 when it is
        due already); the frame after it is booked one period later."""
        period_s = 1.0 / fps
        if self._next_s is None:
            self._next_s = now_s
        wait = max(0.0, self._next_s - now_s)
        self._next_s = max(self._next_s + period_s, now_s + wait - self.max_lag_periods * period_s)
        return wait

    def reset(self) -> None:
        """The next frame is due at once (a restarted source)."""
        self._next_s = None
