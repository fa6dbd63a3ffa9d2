"""Axis-aligned boxes in pixels: ``{x, y, width, height}`` with ``x, y`` the top-left."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True, slots=True)
class Box:
    """A box in pixels of the image it refers to; ``x, y`` is the top-left corner."""

    x: int
    y: int
    width: int
    height: int

    def to_dict(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}

    @classmethod
    def of_mask(cls, mask: np.ndarray) -> Box | None:
        """The tightest box around the non-zero pixels of ``mask``; None when empty."""
        if not cv2.countNonZero(mask):
            return None
        x, y, w, h = cv2.boundingRect(mask)
        return cls(int(x), int(y), int(w), int(h))
