"""One container for detections (supervision style) and per-class non-maximum suppression.

Boxes are ``xyxy``: ``(N, 4)`` float32 ``x_min, y_min, x_max, y_max`` in whatever
units the producer says (input-tensor pixels or normalised); ``confidence`` is
``(N,)`` float32, ``class_id`` ``(N,)`` int64 (the spec's label ids).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Detections:
    """Boxes with a score and a class each (parallel arrays)."""

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        if (
            self.xyxy.shape != (n, 4)
            or self.confidence.shape != (n,)
            or self.class_id.shape != (n,)
        ):
            msg = (
                f"detections: expected xyxy (N, 4), confidence (N,), class_id (N,), got "
                f"{self.xyxy.shape}, {self.confidence.shape}, {self.class_id.shape}"
            )
            raise ValueError(msg)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    @classmethod
    def of(cls, xyxy: np.ndarray, confidence: np.ndarray, class_id: np.ndarray) -> Detections:
        """Build with the canonical dtypes."""
        return cls(
            np.asarray(xyxy, np.float32).reshape(-1, 4),
            np.asarray(confidence, np.float32).reshape(-1),
            np.asarray(class_id, np.int64).reshape(-1),
        )

    def __len__(self) -> int:
        return len(self.xyxy)

    def select(self, index: np.ndarray) -> Detections:
        """The detections at ``index`` (a boolean mask or integer indices)."""
        return Detections(self.xyxy[index], self.confidence[index], self.class_id[index])

    def sorted(self) -> Detections:
        """By descending confidence (stable: ties keep their order)."""
        return self.select(np.argsort(-self.confidence, kind="stable"))


def box_iou(box: np.ndarray, boxes_xyxy: np.ndarray) -> np.ndarray:
    """IoU of one ``xyxy`` box with each of ``boxes_xyxy`` ``(N, 4)``."""
    x0 = np.maximum(box[0], boxes_xyxy[:, 0])
    y0 = np.maximum(box[1], boxes_xyxy[:, 1])
    x1 = np.minimum(box[2], boxes_xyxy[:, 2])
    y1 = np.minimum(box[3], boxes_xyxy[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes_xyxy[:, 2] - boxes_xyxy[:, 0]) * (boxes_xyxy[:, 3] - boxes_xyxy[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(detections: Detections, *, iou_threshold: float) -> Detections:
    """Per-class greedy non-maximum suppression.

    Within each class, a box is dropped when its IoU with a kept, higher-scored box
    is greater than ``iou_threshold``. Returns the kept detections sorted by
    descending confidence.
    """
    if not 0.0 <= iou_threshold <= 1.0:
        msg = f"iou_threshold: expected a value in [0, 1], got {iou_threshold!r}"
        raise ValueError(msg)
    ordered = detections.sorted()
    keep = np.zeros(len(ordered), dtype=bool)
    for cls in np.unique(ordered.class_id):
        idx = np.flatnonzero(ordered.class_id == cls)
        alive = np.ones(len(idx), dtype=bool)
        boxes = ordered.xyxy[idx].astype(np.float64)
        for i in range(len(idx)):
            if not alive[i]:
                continue
            keep[idx[i]] = True
            rest = np.arange(i + 1, len(idx))
            rest = rest[alive[rest]]
            if len(rest):
                alive[rest[box_iou(boxes[i], boxes[rest]) > iou_threshold]] = False
    return ordered.select(keep)
