"""The in-flight window of one MQTT connection: exact Receive Maximum flow control.

QoS > 0 messages sent and not yet acknowledged are counted here by message id and
never exceed the broker's MQTT 5 Receive Maximum (from CONNACK; no limit for
MQTT 3.1.1). Best-effort messages that would exceed it wait in a small queue and
go out as acknowledgements free slots. Everything is forgotten when the
connection ends: the caller's durable outbox decides what is sent again.
Loop-owned (paho's callbacks run on the event loop): no locks.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

from paho.mqtt.properties import Properties

NO_LIMIT = 65535  # the MQTT maximum: no Receive Maximum announced


@dataclass(frozen=True, slots=True)
class Deferred:
    """A best-effort message waiting for an in-flight slot on this connection."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    properties: Properties | None = None


class InflightWindow:
    """Message ids in flight, the Receive Maximum, and the messages waiting for room."""

    def __init__(self) -> None:
        self.receive_maximum = NO_LIMIT
        self._inflight: set[int] = set()
        self._waiting: collections.deque[Deferred] = collections.deque()

    def __len__(self) -> int:
        return len(self._inflight)

    def open(self, receive_maximum: int) -> None:
        """A new connection (CONNACK): its limit, nothing in flight."""
        self.receive_maximum = receive_maximum
        self.clear()

    def clear(self) -> None:
        """The connection ended: forget what was in flight or waiting."""
        self._inflight.clear()
        self._waiting.clear()

    def free_slots(self) -> int:
        """Messages that may be sent now without exceeding Receive Maximum."""
        return max(0, self.receive_maximum - len(self._inflight) - len(self._waiting))

    def has_room(self) -> bool:
        """True when a message may go now without overtaking one that waits."""
        return not self._waiting and len(self._inflight) < self.receive_maximum

    def sent(self, mid: int) -> None:
        self._inflight.add(mid)

    def in_flight(self, mid: int) -> bool:
        return mid in self._inflight

    def acked(self, mid: int) -> None:
        self._inflight.discard(mid)

    def defer(self, message: Deferred) -> None:
        self._waiting.append(message)

    def next_ready(self) -> Deferred | None:
        """The oldest waiting message when a slot is free, else None."""
        if self._waiting and len(self._inflight) < self.receive_maximum:
            return self._waiting.popleft()
        return None
