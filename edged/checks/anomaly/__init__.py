"""Anomaly detection learned from good parts only (textured surfaces).

Every good part is a different instance of the same texture (wood, textiles,
cast or brushed metal, granulates), so no pixel-for-pixel reference applies.
:func:`train_anomaly` learns what good cells look like from N good images
(classical filter-bank features, :mod:`._features`; a PatchCore-style memory
bank with greedy coreset subsampling, :mod:`._bank`) and a threshold from the
good images' leave-one-out scores; :func:`score_anomaly` returns the image
score, the threshold, the cell anomaly map and the regions above it.

Images are ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR.
"""

from edged.checks.anomaly._bank import greedy_coreset, nearest_distances
from edged.checks.anomaly._features import FEATURE_KINDS, CellFeatures, FeatureKind, cell_features
from edged.checks.anomaly._model import (
    FORMAT_VERSION,
    KIND,
    MIN_IMAGES,
    AnomalyModel,
    AnomalyParams,
    AnomalyRegion,
    AnomalyResult,
    score_anomaly,
    train_anomaly,
)

__all__ = [
    "FEATURE_KINDS",
    "FORMAT_VERSION",
    "KIND",
    "MIN_IMAGES",
    "AnomalyModel",
    "AnomalyParams",
    "AnomalyRegion",
    "AnomalyResult",
    "CellFeatures",
    "FeatureKind",
    "cell_features",
    "greedy_coreset",
    "nearest_distances",
    "score_anomaly",
    "train_anomaly",
]
