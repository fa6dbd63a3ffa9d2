"""Which parts' annotated images go to MQTT (``mqtt.image``), and how they fit the cap.

One :class:`ImageFeed` per camera line. Its :meth:`ImageFeed.wants` runs in the
inspection worker before any pixel work: it decides by verdict (``parts``) and a
token bucket (``max_per_s``), so a part that will not be published costs nothing.
:meth:`ImageFeed.encode` scales the annotated image down to ``max_width_px`` and
encodes it as JPEG, smaller again until it fits ``max_bytes`` (None when it cannot).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

from edged.config import MqttImageConfig
from edged.imaging.render import encode_jpeg

MIN_WIDTH_PX = 64


class ImageFeed:
    """The ``mqtt.image`` policy of one camera. Thread-safe (workers call it)."""

    def __init__(self, cfg: MqttImageConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = 1.0
        self._last = clock()

    def wants(self, verdict: str) -> bool:
        """True when a part with ``verdict`` is to be published now (takes a token)."""
        parts = self.cfg.parts
        if parts == "off" or (parts == "fail" and verdict != "fail"):
            return False
        with self._lock:
            now = self._clock()
            self._tokens = min(1.0, self._tokens + (now - self._last) * self.cfg.max_per_s)
            self._last = now
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True

    def encode(self, annotated: np.ndarray) -> bytes | None:
        """``annotated`` (``(H, W)`` or ``(H, W, 3)`` uint8) as a JPEG within the caps."""
        image = annotated
        width = min(image.shape[1], self.cfg.max_width_px)
        while True:
            if width < image.shape[1]:
                height = max(1, round(annotated.shape[0] * width / annotated.shape[1]))
                image = cv2.resize(annotated, (width, height), interpolation=cv2.INTER_AREA)
            jpeg = encode_jpeg(image, quality=self.cfg.jpeg_quality)
            if len(jpeg) <= self.cfg.max_bytes:
                return jpeg
            # JPEG size goes roughly with the pixel count: shrink by the excess, and a bit.
            width = int(width * 0.9 * (self.cfg.max_bytes / len(jpeg)) ** 0.5)
            if width < MIN_WIDTH_PX:
                return None
