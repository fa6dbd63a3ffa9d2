"""The protocol between the daemon and a GenICam acquisition process.

Two one-way pipes, each carrying frozen dataclasses (pickled by
``multiprocessing.Connection``; both sides dispatch them with ``match``).

Events, child -> daemon (:data:`Event`):

* :class:`Opened` — the device is open and configured; the ring size it needs.
* :class:`Started` — the ring is attached and the camera streams.
* :class:`~edged.sources._shm_ring.FrameMeta` — a frame is in that ring slot
  (the ring's own description of a filled slot; the most frequent message).
* :class:`StateReport` — counters and connection state, every ``HEARTBEAT_S``
  (and on each change); any event is a sign of life for the daemon's watchdog.
* :class:`TriggerDone` — the answer to a :class:`Trigger`.
* :class:`Fatal` — why the process is about to exit, when it knows.

Commands, daemon -> child (:data:`Command`): :class:`UseRing`, :class:`Release`,
:class:`Trigger`, :class:`Stop`.

Faults for tests are not part of this protocol: tests pass a :class:`FaultHook`
when they build the source (see ``_genicam_child.Acquisition``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from edged.sources._shm_ring import FrameMeta

if TYPE_CHECKING:
    from edged.sources._genicam_child import Acquisition

FatalKind = Literal["config", "device", "resize", "gave_up"]


# ---------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Opened:
    """The device is open and configured (the features report is JSON-ready)."""

    device: str
    serial: str
    slot_bytes: int
    features: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Started:
    """Streaming into the ring."""


@dataclass(frozen=True, slots=True)
class StateReport:
    """The child's counters; also its heartbeat."""

    connected: bool = False
    frames: int = 0
    timeouts: int = 0
    errors: int = 0
    reconnects: int = 0
    skipped: int = 0
    last_error: str | None = None
    device: str = ""


@dataclass(frozen=True, slots=True)
class TriggerDone:
    """``error`` is None when ``TriggerSoftware`` ran."""

    token: int
    error: str | None


@dataclass(frozen=True, slots=True)
class Fatal:
    """Why the process exits: ``config`` (refused; restarting will not help),
    ``device`` (not found or not opened), ``resize`` (a frame outgrew its slot:
    restart with ``slot_bytes``), ``gave_up`` (in-process reopening failed)."""

    kind: FatalKind
    message: str
    slot_bytes: int = 0


Event = Opened | Started | FrameMeta | StateReport | TriggerDone | Fatal


# ---------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class UseRing:
    """Attach to this shared-memory ring and start streaming."""

    name: str
    slots: int
    slot_bytes: int


@dataclass(frozen=True, slots=True)
class Release:
    """The daemon is done with this slot."""

    slot: int


@dataclass(frozen=True, slots=True)
class Trigger:
    """Fire ``TriggerSoftware``; answered by a :class:`TriggerDone` with ``token``."""

    token: int


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop streaming, close the device, exit."""


Command = UseRing | Release | Trigger | Stop


# ---------------------------------------------------------------------- test hook


class FaultHook(Protocol):
    """Test-only: the acquisition loop calls ``poll`` once per pass, in the child.

    Production passes none. A hook must be picklable (it crosses into the spawned
    process) and may act on the acquisition as a failing device or driver would.
    """

    def poll(self, acquisition: Acquisition) -> None: ...
