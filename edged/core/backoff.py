"""One exponential backoff for every retry loop in edged.

A :class:`Backoff` counts the failures since the last success and hands out the
delay before the next attempt::

    backoff = Backoff(min_s=0.5, max_s=30.0, jitter=0.2)
    while True:
        try:
            connect()
        except OSError:
            time.sleep(backoff.next_delay_s())   # or: await asyncio.sleep(...)
            continue
        backoff.reset()                         # success: start from min_s again

The n-th delay since the last reset (n = 0, 1, 2, ...) is
``d = min(max_s, min_s * factor**n)``, shortened by a random fraction of at most
``jitter``: uniform in ``[(1 - jitter) * d, d]``. ``max_s`` is a hard cap (a
``min_s`` above it is capped too), and jitter only shortens, so no delay exceeds
``max_s``. Jitter keeps many clients that lost the same server (a restarted
broker, a switch that power-cycled its cameras) from retrying in lockstep. With
``jitter=0`` the sequence is exact; with a seeded ``rng`` it is reproducible.

Users: the task supervisor (``pipeline.restart_backoff_*``), the MQTT link's
reconnects (``mqtt.reconnect_*``), the GenICam source's two layers (in-process
reopen and fresh process, ``genicam.backoff_*``) and OpenCV reconnects
(``opencv.reconnect_s``, constant). Each loop's docstring names its settings.
"""

from __future__ import annotations

import random


class Backoff:
    """Exponential backoff with jitter and a cap; :meth:`reset` after a success."""

    __slots__ = ("_base_s", "_failures", "_rng", "factor", "jitter", "max_s", "min_s")

    def __init__(
        self,
        min_s: float,
        max_s: float,
        *,
        factor: float = 2.0,
        jitter: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        if not min_s > 0 or not max_s > 0:
            msg = f"backoff: expected min_s > 0 and max_s > 0, got {min_s!r} and {max_s!r}"
            raise ValueError(msg)
        if not factor >= 1:
            msg = f"backoff: expected factor >= 1, got {factor!r}"
            raise ValueError(msg)
        if not 0 <= jitter <= 1:
            msg = f"backoff: expected jitter in [0, 1], got {jitter!r}"
            raise ValueError(msg)
        self.min_s = float(min_s)
        self.max_s = float(max_s)
        self.factor = float(factor)
        self.jitter = float(jitter)
        self._rng = rng if rng is not None else random.Random()
        self._failures = 0
        self._base_s = min(self.max_s, self.min_s)

    @property
    def failures(self) -> int:
        """Delays handed out since the last :meth:`reset` (failed attempts)."""
        return self._failures

    def next_delay_s(self) -> float:
        """The delay before the next attempt; counts one more failure."""
        base = self._base_s
        self._failures += 1
        self._base_s = min(self.max_s, base * self.factor)
        if self.jitter == 0:
            return base
        return base * (1.0 - self.jitter * self._rng.random())

    def reset(self) -> None:
        """An attempt succeeded: the next delay is ``min_s`` (jittered) again."""
        self._failures = 0
        self._base_s = min(self.max_s, self.min_s)

    def fresh(self) -> Backoff:
        """A new Backoff with the same settings and random source, counting from zero."""
        return Backoff(
            self.min_s, self.max_s, factor=self.factor, jitter=self.jitter, rng=self._rng
        )

    def __repr__(self) -> str:
        return (
            f"Backoff(min_s={self.min_s:g}, max_s={self.max_s:g}, factor={self.factor:g}, "
            f"jitter={self.jitter:g}, failures={self._failures})"
        )
