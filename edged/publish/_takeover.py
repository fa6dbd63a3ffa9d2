"""Spotting a client-id clash: another client keeps taking our MQTT session over.

A broker allows one connection per client id: when a second client connects with
the same id, it closes the first (MQTT 5 says so: DISCONNECT "Session taken over";
3.1.1 just closes the socket). Two edged daemons with the same ``node_id`` (or
``mqtt.client_id``) therefore evict each other a few times a second, forever —
every connection dies moments after it came up. :class:`TakeoverDetector` sees that
pattern: ``threshold`` connections within ``window_s`` that each ended less than
``quick_s`` after they began (or any that ended with "Session taken over"). It
reports an episode once; a connection that stays up ``window_s`` ends the episode.

Pure bookkeeping (no I/O, no logging); ``clock`` gives seconds (monotonic).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

TAKEN_OVER = "session taken over"
"""The MQTT 5 DISCONNECT reason (0x8E) a broker sends the evicted client."""


class TakeoverDetector:
    """Counts quick disconnects after connects; says when they look like a clash."""

    def __init__(
        self,
        *,
        quick_s: float = 5.0,
        window_s: float = 60.0,
        threshold: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.quick_s = quick_s
        self.window_s = window_s
        self.threshold = threshold
        self._clock = clock
        self._since: float | None = None
        self._quick: deque[float] = deque()
        self.suspected = False
        self.episodes = 0

    def connected(self) -> None:
        """A connection came up."""
        self._since = self._clock()

    def disconnected(self, reason: str) -> bool:
        """A connection ended for ``reason``; True when this starts a suspected clash
        (report it once: it stays suspected until a connection lasts ``window_s``)."""
        now = self._clock()
        lasted = None if self._since is None else now - self._since
        self._since = None
        if lasted is not None and lasted >= self.window_s:
            self._quick.clear()
            self.suspected = False
            return False
        if TAKEN_OVER in reason.lower() or (lasted is not None and lasted < self.quick_s):
            self._quick.append(now)
        while self._quick and self._quick[0] <= now - self.window_s:
            self._quick.popleft()
        taken_over = TAKEN_OVER in reason.lower()
        if self.suspected or (len(self._quick) < self.threshold and not taken_over):
            return False
        self.suspected = True
        self.episodes += 1
        return True

    def check_stable(self) -> None:
        """Call now and then: a connection up for ``window_s`` ends a suspected episode."""
        if self._since is not None and self._clock() - self._since >= self.window_s:
            self._quick.clear()
            self.suspected = False


def clash_message(client_id: str, broker: str, quick: int, window_s: float) -> str:
    """The one log line that says what is happening and what to do."""
    return (
        f"MQTT: the broker {broker} keeps closing edged's connection right after it "
        f"connects (at least {quick} times within {window_s:g} s): another client is probably "
        f"connected with the same client id {client_id!r} — two edged daemons with the "
        "same node_id, or a copied config. Give each station its own node_id (or "
        "mqtt.client_id); until then both lose their connection over and over."
    )
