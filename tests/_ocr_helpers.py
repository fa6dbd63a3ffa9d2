"""Labels rendered in code for the OCR tests: known text at known places."""

from __future__ import annotations

import cv2
import numpy as np

PAPER_BGR = (200, 206, 210)
INK_BGR = (30, 30, 30)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def label(
    lines: list[str],
    *,
    size_wh: tuple[int, int] = (640, 320),
    origin_xy: tuple[int, int] = (60, 110),
    line_step_px: int = 70,
    font_scale: float = 1.3,
    thickness: int = 3,
    angle_deg: float = 0.0,
    belt: bool = True,
) -> np.ndarray:
    """A BGR label: paper on a dark belt, each line printed at ``origin_xy`` +
    ``i * line_step_px`` (baseline), the whole label rotated by ``angle_deg``."""
    w, h = size_wh
    img = np.full((h, w, 3), (70, 62, 58) if belt else PAPER_BGR, np.uint8)
    cv2.rectangle(img, (20, 20), (w - 21, h - 21), PAPER_BGR, -1)
    x, y = origin_xy
    for i, text in enumerate(lines):
        cv2.putText(
            img, text, (x, y + i * line_step_px), FONT, font_scale, INK_BGR, thickness, cv2.LINE_AA
        )
    if angle_deg:
        m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle_deg, 1.0)
        img = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    return img


def text_box(
    text: str, origin_xy: tuple[int, int], *, font_scale: float = 1.3, thickness: int = 3
) -> tuple[int, int, int, int]:
    """The (x, y, width, height) cv2.putText covers for ``text`` at baseline ``origin_xy``."""
    (tw, th), baseline = cv2.getTextSize(text, FONT, font_scale, thickness)
    x, y = origin_xy
    return x, y - th, tw, th + baseline
