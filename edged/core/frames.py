"""The Frame: one raw buffer out of a camera, with everything needed to decode it.

A Frame's buffer stays valid however long the pipeline holds it: sources either
copy out of driver memory before building one, or lease a shared-memory slot
that goes back to the camera only when the last view of it is gone (see
``edged.sources._shm_ring``). ``Frame.data`` is a read-only view.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    """One raw frame.

    Attributes:
        data: the raw pixels (read-only). Its shape depends on
            ``pixel_format``: ``(H, W)`` for mono and Bayer data (uint8 or uint16),
            ``(H, W, C)`` for colour, or 1-D bytes for packed formats.
        pixel_format: GenICam PFNC name, e.g. ``"Mono8"``, ``"BayerRG8"``, ``"BGR8"``.
        width: image width in pixels.
        height: image height in pixels.
        camera: camera id from the config.
        seq: the camera's frame sequence number, counted by edged from 0 per run.
        host_ts_ns: ``time.time_ns()`` when the frame reached edged.
        device_ts_ns: the camera's own timestamp when the device provides one.
        frame_id: the device's block id / frame counter when it provides one.
        chunks: chunk data read with the frame (name -> value), if any.
        ground_truth: what a synthetic source put in the frame (tests, demos).
    """

    data: np.ndarray
    pixel_format: str
    width: int
    height: int
    camera: str
    seq: int
    host_ts_ns: int
    device_ts_ns: int | None = None
    frame_id: int | None = None
    chunks: dict[str, Any] = field(default_factory=dict)
    ground_truth: dict[str, Any] | None = None

    @property
    def resolution_wh(self) -> tuple[int, int]:
        return (self.width, self.height)

    def __post_init__(self) -> None:
        # A read-only view: frames are evidence, and a leased shared-memory slot
        # must not be written by the daemon (the caller's own array is untouched).
        view = self.data.view()
        view.flags.writeable = False
        object.__setattr__(self, "data", view)
