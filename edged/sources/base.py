"""The FrameSource contract every camera source implements.

The daemon owns one source per camera and drives it from a named task::

    await source.start()
    while running:
        frame = await source.read()     # waits for the next frame
        ...
    await source.stop()

``read()`` raises :class:`~edged.core.errors.SourceError` on a fault it cannot hide;
the daemon's supervisor then logs it, counts it, calls ``stop()`` and ``start()``
again with backoff (``pipeline.restart_backoff_*``). A source that recovers by
itself (GenICam: reopen, then a fresh process; OpenCV: reopen every
``reconnect_s``) reports that through ``state()`` and must not also raise for the
faults it retries, so that no fault meets more than two retry layers. Retry loops
use :class:`~edged.core.backoff.Backoff`. ``read()`` raises ``EndOfStream`` when a
finite source (a file, ``frames: N``) is exhausted.
Sources never do pixel work on the event loop: blocking reads run in a thread or
a child process.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

from edged.core.errors import InputError, SourceError
from edged.core.frames import Frame


class EndOfStream(SourceError):
    """A finite source has no more frames."""


@dataclass(frozen=True, slots=True)
class SourceState:
    """Live state of a camera source, for metrics, MQTT ``state`` and HTTP."""

    connected: bool
    frames: int = 0
    fps: float = 0.0
    reconnects: int = 0
    dropped: int = 0
    last_error: str | None = None
    device: str = ""


class FrameSource(abc.ABC):
    """One camera. See the module docstring for the lifecycle."""

    def __init__(self, camera: str) -> None:
        self.camera = camera

    @abc.abstractmethod
    async def start(self) -> None:
        """Open the device and begin acquisition."""

    @abc.abstractmethod
    async def read(self) -> Frame:
        """The next frame (waits). Raises SourceError on a fault, EndOfStream at the end."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop acquisition and release the device. Safe to call twice."""

    @abc.abstractmethod
    def state(self) -> SourceState:
        """A snapshot of the source's live state."""

    def details(self) -> dict[str, Any]:
        """Source-specific facts behind :meth:`state` (JSON-ready), for the admin API:
        e.g. the features a GenICam camera applied or refused, the mode a UVC camera
        really runs. Empty when a source has nothing to add."""
        return {}

    @property
    def triggerable(self) -> bool:
        """True when :meth:`trigger` fires a software trigger."""
        return False

    async def trigger(self) -> None:
        """Fire a software trigger. Sources without one raise InputError."""
        msg = (
            f"camera {self.camera!r}: expected a source with a software trigger, "
            "got a free-running one"
        )
        raise InputError(msg)
