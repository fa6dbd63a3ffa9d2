"""The seams between the pipeline and the parts the daemon plugs into it.

Each is a :class:`~typing.Protocol`, so the pipeline, HTTP and MQTT depend on
what they use, not on the classes that provide it (and tests can plug in small
real implementations):

- :class:`ResultSink`: where results and live camera state go (the MQTT
  :class:`~edged.publish.Publisher`, whose durable outbox keeps them across
  outages); :class:`SinkStats` is what it reports. A sink that also takes the
  annotated images of parts (the MQTT ``image`` topic) implements :class:`ImageSink`.
- :class:`ReferenceProvider`: the prepared reference model of a recipe and
  camera, per frame (:class:`~edged.references.ReferenceStore`,
  :class:`~edged.references.InMemoryReferences`). A store that can also be
  taught (:class:`ReferenceTeacher`) or asked to re-read its directory
  (:class:`RereadableReferences`) says so by implementing those protocols;
  callers narrow with ``isinstance``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from edged.checks.models import PreparedModel
from edged.core.result import Result


@dataclass(frozen=True, slots=True)
class SinkStats:
    """A result sink's figures for metrics, health and the status line.

    ``connected``: whether results currently leave the node (broker connected);
    ``outbox_depth``: results and messages waiting; ``oldest_age_s``: age of the
    oldest waiting one (0 when none). The counters count since the sink started.
    """

    connected: bool
    outbox_depth: int = 0
    oldest_age_s: float = 0.0
    inflight: int = 0
    published: int = 0
    retries: int = 0
    dropped: int = 0
    dead_lettered: int = 0
    dead_letter_depth: int = 0
    reconnects: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "outbox_depth": self.outbox_depth,
            "oldest_age_s": self.oldest_age_s,
            "inflight": self.inflight,
            "published": self.published,
            "retries": self.retries,
            "dropped": self.dropped,
            "dead_lettered": self.dead_lettered,
            "dead_letter_depth": self.dead_letter_depth,
            "reconnects": self.reconnects,
        }


class ResultSink(Protocol):
    """Where the camera lines hand their results and state; the daemon owns its life.

    ``publish_result`` returns once the result is durably accepted (a failure
    raises, and the line hands the same result again); ``last_seq`` is the seq
    of the last result accepted for a camera, also from before a restart (None:
    none), so a restarted daemon continues the sequence; ``stop`` flushes what
    it can within ``grace_s`` seconds.
    """

    async def publish_result(self, result: Result) -> None: ...

    def set_state(self, camera: str, state: dict[str, Any]) -> None: ...

    def last_seq(self, camera: str) -> int | None: ...

    def stats(self) -> SinkStats: ...

    async def stop(self, grace_s: float = 5.0) -> None: ...


@runtime_checkable
class ImageSink(Protocol):
    """A sink that also takes annotated part images (best effort, never queued)."""

    def publish_image(self, camera: str, jpeg: bytes) -> bool:
        """Send ``jpeg`` now for ``camera``; False when it could not (not connected)."""
        ...


class ReferenceProvider(Protocol):
    """What the pipeline needs from the reference store, per frame."""

    def prepared(self, recipe: str, camera: str) -> PreparedModel | None:
        """The prepared reference model for checks, or None when none is stored."""
        ...


@runtime_checkable
class ReferenceTeacher(ReferenceProvider, Protocol):
    """A reference provider that stores new good images (live teach-in)."""

    def teach(
        self, recipe: str, camera: str, images: Sequence[np.ndarray], *, activate: bool = True
    ) -> str:
        """Store ``images`` as the new current version (``activate=False``: a pending
        version, current only after ``activate_pending``); returns its id (``"v3"``)."""
        ...


@runtime_checkable
class ConfirmableReferences(ReferenceTeacher, Protocol):
    """A teachable store whose pending versions can be made current (MQTT teach confirm)."""

    def activate_pending(self, recipe: str, camera: str, version: int | str) -> str:
        """Make a pending version current; returns its id (``"v3"``)."""
        ...


@runtime_checkable
class RereadableReferences(ReferenceProvider, Protocol):
    """A reference provider that can re-read its storage (asked on config reload)."""

    def reload(self) -> None: ...
