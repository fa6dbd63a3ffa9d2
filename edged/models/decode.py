"""Network outputs -> label scores or :class:`~edged.models.detections.Detections`.

Pure functions over the output arrays of one image (the batch axis already
removed). Detections come out with ``xyxy`` in input-tensor pixels and
``class_id`` = the label's *position* in the spec; the engine maps positions to
label ids, applies NMS and thresholds.
"""

from __future__ import annotations

import numpy as np

from edged.models.detections import Detections
from edged.models.vocabulary import Activation, DirectOutput


def softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return z / np.sum(z, axis=-1, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def label_scores(
    raw: np.ndarray, *, n_labels: int, exclusive: bool, activation: Activation
) -> np.ndarray:
    """Scores in [0, 1] for each label from a classification or tagging output.

    ``auto``: exclusive outputs get a softmax unless they already are probabilities
    (in [0, 1], summing to 1); non-exclusive ones a sigmoid unless already in [0, 1].
    """
    values = np.asarray(raw, np.float64).reshape(-1)
    if values.size != n_labels:
        msg = (
            f"classification output: expected {n_labels} scores (one per label), got "
            f"{values.size} (shape {list(np.shape(raw))})"
        )
        raise ValueError(msg)
    if activation == "auto":
        in_unit = bool(np.all((values >= 0.0) & (values <= 1.0)))
        if exclusive:
            activation = "none" if in_unit and abs(values.sum() - 1.0) < 1e-3 else "softmax"
        else:
            activation = "none" if in_unit else "sigmoid"
    if activation == "softmax":
        return softmax(values)
    if activation == "sigmoid":
        return sigmoid(values)
    return values


def _pairs(xyxy: np.ndarray, scores: np.ndarray, min_score: float) -> Detections:
    """Every (box, class) whose score in the ``(N, C)`` matrix is >= ``min_score``."""
    rows, cols = np.nonzero(scores >= min_score)
    return Detections.of(xyxy[rows], scores[rows, cols], cols)


def _to_xyxy(boxes: np.ndarray, fmt: str) -> np.ndarray:
    if fmt == "yxyx":
        return boxes[:, [1, 0, 3, 2]]
    if fmt == "cxcywh":
        cx, cy, w, h = boxes.T
        return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return boxes


def decode_direct(
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray | None,
    cfg: DirectOutput,
    *,
    tensor_wh: tuple[int, int],
    label_ids: tuple[int, ...],
    min_score: float,
) -> Detections:
    """Boxes/scores[/classes] tensors (TF object-detection style and kin)."""
    n_labels = len(label_ids)
    b = np.asarray(boxes, np.float64)
    if b.ndim != 2 or b.shape[1] != 4:
        msg = f"direct_output boxes: expected shape (N, 4), got {list(b.shape)}"
        raise ValueError(msg)
    xyxy = _to_xyxy(b, cfg.box_format)
    if cfg.normalized:
        xyxy = xyxy * np.array([tensor_wh[0], tensor_wh[1]] * 2, np.float64)
    s = np.asarray(scores, np.float64)
    if classes is None:
        if s.shape != (len(b), n_labels):
            msg = (
                f"direct_output scores: expected shape ({len(b)}, {n_labels}) without a "
                f"classes tensor, got {list(s.shape)}"
            )
            raise ValueError(msg)
        return _pairs(xyxy, s, min_score)
    s = s.reshape(-1)
    ids = np.rint(np.asarray(classes, np.float64).reshape(-1)).astype(np.int64) + cfg.class_offset
    if len(s) != len(b) or len(ids) != len(b):
        msg = (
            f"direct_output: expected as many scores and classes as boxes ({len(b)}), "
            f"got {len(s)} scores and {len(ids)} classes"
        )
        raise ValueError(msg)
    position = {label_id: i for i, label_id in enumerate(label_ids)}
    keep = s >= min_score
    unknown = sorted({int(i) for i in ids[keep]} - set(position))
    if unknown:
        msg = f"direct_output classes: expected label ids from {sorted(position)}, got {unknown}"
        raise ValueError(msg)
    pos = np.array([position[int(i)] for i in ids[keep]], np.int64)
    return Detections.of(xyxy[keep], s[keep], pos)


def decode_yolo(output: np.ndarray, *, n_labels: int, min_score: float) -> Detections:
    """The anchor-free single-tensor YOLO export: ``(4 + C, N)`` (v8) or ``(N, 5 + C)`` (v5).

    Rows (or columns) are ``cx, cy, w, h`` in input pixels, an objectness for v5,
    then one score per label.
    """
    a = np.asarray(output, np.float64)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    widths = (4 + n_labels, 5 + n_labels)
    if a.ndim != 2 or (a.shape[0] not in widths and a.shape[1] not in widths):
        msg = (
            f"yolo_output: expected (4 + {n_labels}, N) or (N, 5 + {n_labels}) for "
            f"{n_labels} labels, got {list(a.shape)}"
        )
        raise ValueError(msg)
    if a.shape[1] not in widths or (a.shape[0] in widths and a.shape[1] > a.shape[0]):
        a = a.T
    xyxy = _to_xyxy(a[:, :4], "cxcywh")
    scores = a[:, 5:] * a[:, 4:5] if a.shape[1] == 5 + n_labels else a[:, 4:]
    return _pairs(xyxy, scores, min_score)


def decode_gfl(
    scores: list[np.ndarray],
    distances: list[np.ndarray],
    strides: tuple[int, ...],
    *,
    tensor_wh: tuple[int, int],
    n_labels: int,
    min_score: float,
) -> Detections:
    """PicoDet / GFL heads: per stride, ``(cells, C)`` scores and ``(cells, 4 * bins)``
    distance distributions over a grid of ``ceil(W / stride) x ceil(H / stride)``
    cells, centres at ``(i + 0.5) * stride``."""
    all_xyxy, all_scores = [], []
    tw, th = tensor_wh
    for score, dist, stride in zip(scores, distances, strides, strict=True):
        s = np.asarray(score, np.float64)
        d = np.asarray(dist, np.float64)
        gw, gh = -(-tw // stride), -(-th // stride)
        if s.shape != (gw * gh, n_labels) or d.ndim != 2 or d.shape[0] != gw * gh or d.shape[1] % 4:
            msg = (
                f"gfl_output stride {stride}: expected scores ({gw * gh}, {n_labels}) and "
                f"distances ({gw * gh}, 4 x bins), got {list(s.shape)} and {list(d.shape)}"
            )
            raise ValueError(msg)
        bins = d.shape[1] // 4
        probs = softmax(d.reshape(-1, 4, bins))
        dist_px = (probs @ np.arange(bins, dtype=np.float64)) * stride
        yy, xx = np.mgrid[0:gh, 0:gw]
        cx = ((xx.reshape(-1) + 0.5) * stride)[:, None]
        cy = ((yy.reshape(-1) + 0.5) * stride)[:, None]
        xyxy = np.concatenate(
            [
                cx - dist_px[:, 0:1],
                cy - dist_px[:, 1:2],
                cx + dist_px[:, 2:3],
                cy + dist_px[:, 3:4],
            ],
            axis=1,
        )
        all_xyxy.append(xyxy)
        all_scores.append(s)
    return _pairs(np.concatenate(all_xyxy), np.concatenate(all_scores), min_score)
