"""The systemd watchdog heartbeat: ``WATCHDOG=1`` only while the pipeline makes progress.

systemd restarts a ``WatchdogSec=`` service whose keep-alives stop. A keep-alive
from a timer alone would prove only that the process exists; edged's heartbeat
proves two more things before it beats:

1. **The event loop is responsive.** The heartbeat is a task on the loop, so a
   blocked loop (pixel work or a blocking call on it by mistake) stops it.
2. **The pipeline progresses.** Every *lane* (a camera line; the worker pool is
   one more lane, watched automatically) that holds pending work must have made
   progress within ``stall_s``. A lane with nothing pending is healthy however
   long it is idle: a triggered line that sees no trigger for an hour is fine,
   a worker wedged on a frame while frames queue behind it is not.

What the daemon calls (all cheap, thread-safe, never blocking)::

    progress = Progress()
    progress.watch("line1", line.pending)   # polled at each check: frames not yet emitted
    progress.pending("line1", n)            # or push the level whenever it changes
    progress.tick("line1", "emit")          # a frame's result was handed on
    progress.forget("line1")                # the line was removed

``pending`` sets a level (it is not a counter) and ``watch`` polls one, so a
missed call cannot leak into a false stall; ``tick`` records progress. Then run
the heartbeat as a named, supervised task::

    heartbeat = Heartbeat(notifier, StallDetector(progress, stall_s=30, pool=pool),
                          metrics=metrics, status=summary)
    await heartbeat.run()

Without ``$WATCHDOG_USEC`` the heartbeat still runs (every ``idle_interval_s``)
to keep ``edged_watchdog_*`` metrics and the ``STATUS=`` line current.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from edged.runtime.metrics import Metrics
from edged.runtime.sdnotify import Notifier, watchdog_interval_s

log = logging.getLogger("edged.watchdog")

POOL_LANE = "workers"

Clock = Callable[[], float]


class BusyPool(Protocol):
    """What the detector reads from the worker pool (:class:`edged.runtime.workers.WorkerPool`)."""

    @property
    def busy(self) -> int: ...

    @property
    def last_done_monotonic(self) -> float: ...


@dataclass
class _Lane:
    pending: int = 0
    pending_since: float = 0.0
    last_progress: float = 0.0


class Progress:
    """Pending work and progress per lane; fed by the pipeline, read by the watchdog."""

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._lanes: dict[str, _Lane] = {}
        self._counts: dict[str, int] = {}
        self._watched: dict[str, Callable[[], int]] = {}

    def watch(self, lane: str, pending: Callable[[], int]) -> None:
        """Poll ``pending()`` (cheap, on the event loop) at every check for ``lane``."""
        self._watched[lane] = pending
        self.pending(lane, 0)

    def pending(self, lane: str, n: int) -> None:
        """``lane`` now holds ``n`` items of unfinished work (queued or in flight)."""
        now = self._clock()
        with self._lock:
            state = self._lanes.setdefault(lane, _Lane(last_progress=now))
            if n > 0 and state.pending <= 0:
                state.pending_since = now
            state.pending = max(0, n)

    def tick(self, lane: str, stage: str = "inspect") -> None:
        """``lane`` finished a step (``stage``: inspect, publish, ...)."""
        now = self._clock()
        with self._lock:
            state = self._lanes.setdefault(lane, _Lane())
            state.last_progress = now
            self._counts[stage] = self._counts.get(stage, 0) + 1

    def forget(self, lane: str) -> None:
        """Stop watching ``lane`` (its camera was removed or stopped on purpose)."""
        self._watched.pop(lane, None)
        with self._lock:
            self._lanes.pop(lane, None)

    def counts(self) -> Mapping[str, int]:
        """Ticks per stage since start (for status lines and tests)."""
        with self._lock:
            return dict(self._counts)

    def snapshot(self) -> dict[str, tuple[int, float, float]]:
        """``lane -> (pending, pending_since, last_progress)``, monotonic seconds."""
        for lane, fn in list(self._watched.items()):
            self.pending(lane, fn())
        with self._lock:
            return {
                name: (s.pending, s.pending_since, s.last_progress)
                for name, s in self._lanes.items()
            }


@dataclass(frozen=True, slots=True)
class WatchdogState:
    """One evaluation: healthy, and if not, which lane stalled and for how long."""

    healthy: bool
    pending: int
    stalled_s: float
    lane: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "pending": self.pending,
            "stalled_s": round(self.stalled_s, 3),
            "lane": self.lane,
            "reason": self.reason,
        }


class StallDetector:
    """Decides whether the pipeline is healthy: no lane with pending work is stuck.

    A lane is stalled for ``now - max(last progress, when its work became
    pending)``; the pipeline is unhealthy once any lane has been stalled for
    ``stall_s`` or more. The worker pool is the lane ``workers``: jobs running
    (``busy``) is its pending work and a finished job is its progress.
    """

    def __init__(
        self,
        progress: Progress,
        *,
        stall_s: float,
        pool: BusyPool | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        if stall_s <= 0:
            msg = f"stall_s: expected > 0, got {stall_s}"
            raise ValueError(msg)
        self.progress = progress
        self.stall_s = stall_s
        self._pool = pool
        self._clock = clock
        self._pool_busy_since: float | None = None

    def check(self) -> WatchdogState:
        now = self._clock()
        lanes = self.progress.snapshot()
        if self._pool is not None:
            busy = self._pool.busy
            if busy > 0:
                # The pool does not say when it became busy: the first check that
                # sees it busy starts the clock (detection errs late, never early).
                if self._pool_busy_since is None:
                    self._pool_busy_since = now
                lanes[POOL_LANE] = (busy, self._pool_busy_since, self._pool.last_done_monotonic)
            else:
                self._pool_busy_since = None
        total = 0
        worst_s = 0.0
        worst_lane: str | None = None
        for name, (pending, since, last) in lanes.items():
            if pending <= 0:
                continue
            total += pending
            stalled = now - max(since, last)
            if stalled > worst_s:
                worst_s, worst_lane = stalled, name
        if worst_lane is not None and worst_s >= self.stall_s:
            pending = lanes[worst_lane][0]
            reason = (
                f"{worst_lane}: no progress for {worst_s:.1f} s "
                f"with {pending} item{'s' if pending != 1 else ''} pending"
            )
            return WatchdogState(False, total, worst_s, worst_lane, reason)
        return WatchdogState(True, total, worst_s, worst_lane, "")


class Heartbeat:
    """The task that sends ``WATCHDOG=1`` while :class:`StallDetector` says healthy.

    ``interval_s`` defaults to half of ``$WATCHDOG_USEC`` (systemd's advice) or
    ``idle_interval_s`` when the watchdog is off. ``status`` (optional) returns a
    one-line summary, sent as ``STATUS=`` whenever it changes.
    """

    def __init__(
        self,
        notifier: Notifier,
        detector: StallDetector,
        *,
        metrics: Metrics | None = None,
        status: Callable[[], str] | None = None,
        interval_s: float | None = None,
        idle_interval_s: float = 5.0,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.notifier = notifier
        self.detector = detector
        self._metrics = metrics
        self._status = status
        wd = watchdog_interval_s(environ) if notifier.enabled else None
        self.watchdog_enabled = wd is not None
        self.interval_s = interval_s or wd or idle_interval_s
        self.beats = 0
        self.last_state: WatchdogState | None = None
        self._last_status: str | None = None

    def beat_once(self, *, lag_s: float = 0.0) -> WatchdogState:
        """Evaluate once and send what is due (the body of :meth:`run`)."""
        state = self.detector.check()
        previous = self.last_state
        self.last_state = state
        if self._metrics is not None:
            self._metrics.watchdog_healthy.set(1 if state.healthy else 0)
            self._metrics.watchdog_stalled_seconds.set(state.stalled_s)
            self._metrics.event_loop_lag_seconds.set(lag_s)
        if state.healthy:
            if previous is not None and not previous.healthy:
                log.warning("watchdog: the pipeline progresses again; heartbeat resumed")
            if self.watchdog_enabled and self.notifier.watchdog():
                self.beats += 1
            text = self._status() if self._status is not None else None
        else:
            if previous is None or previous.healthy:
                log.error(
                    "watchdog: %s; heartbeat stopped, systemd will restart edged "
                    "unless it recovers",
                    state.reason,
                )
            text = f"STALLED: {state.reason}"
        if text is not None and text != self._last_status:
            self.notifier.status(text)
            self._last_status = text
        return state

    async def run(self) -> None:
        """Beat every ``interval_s`` until cancelled."""
        loop = asyncio.get_running_loop()
        log.info(
            "watchdog heartbeat every %.3g s (%s), stall limit %.3g s",
            self.interval_s,
            "systemd watchdog on" if self.watchdog_enabled else "systemd watchdog off",
            self.detector.stall_s,
        )
        lag_s = 0.0
        while True:
            self.beat_once(lag_s=lag_s)
            due = loop.time() + self.interval_s
            await asyncio.sleep(self.interval_s)
            lag_s = max(0.0, loop.time() - due)
