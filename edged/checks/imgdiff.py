"""PixLab-style ``imgdiff``: the mean square error between two images of the same size.

``mse = mean((src - target)^2)`` over every pixel and channel, as float64. A grey image
compared with a colour one is expanded to three equal channels first. The difference
image is ``|src - target|`` per pixel (uint8, the shape of the inputs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from edged.checks._image import contract_problem
from edged.core.errors import InputError


@dataclass(frozen=True, slots=True)
class ImgDiff:
    """``mse`` of the two images; ``diff`` the absolute difference image (uint8)."""

    mse: float
    diff: np.ndarray = field(compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"diff": self.mse}


def _check(img: Any, what: str) -> np.ndarray:
    problem = contract_problem(img)
    if problem is not None:
        msg = f"{what}: {problem}"
        raise InputError(msg)
    out: np.ndarray = img
    return out


def imgdiff(src: np.ndarray, target: np.ndarray) -> ImgDiff:
    """Mean square error of ``src`` and ``target``.

    src, target: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR of the same width and
    height. Raises InputError (HTTP 400) when the sizes differ.
    """
    a, b = _check(src, "src"), _check(target, "target")
    if a.shape[:2] != b.shape[:2]:
        msg = (
            "imgdiff: expected src and target of the same size, got "
            f"src {a.shape[1]}x{a.shape[0]} and target {b.shape[1]}x{b.shape[0]} "
            "(resize or crop one of them first)"
        )
        raise InputError(msg)
    if a.ndim != b.ndim:
        a = a if a.ndim == 3 else cv2.cvtColor(a, cv2.COLOR_GRAY2BGR)
        b = b if b.ndim == 3 else cv2.cvtColor(b, cv2.COLOR_GRAY2BGR)
    diff = cv2.absdiff(a, b)
    d = diff.astype(np.float64)
    return ImgDiff(mse=float(np.mean(d * d)), diff=diff)
