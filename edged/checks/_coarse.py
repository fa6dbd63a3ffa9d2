"""Registration's coarse stage: ORB features with RANSAC, and phase correlation.

Features handle any rotation and scale; phase correlation is the cheap first try for
the small motions of a production line and the fallback for parts with few corners.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from edged.checks._scale import to3x3

ORB_FEATURES = 500


def orb(image: np.ndarray, level: int, roi: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    orb = cv2.ORB.create(nfeatures=ORB_FEATURES, fastThreshold=10, nlevels=6)
    mask = None
    if roi is not None:
        mask = cv2.resize(roi, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)
    kps, des = orb.detectAndCompute(image, mask)
    if des is None or not kps:
        return np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8)
    pts = np.array([kp.pt for kp in kps], dtype=np.float32) * float(2**level)
    return pts, des


@dataclass(frozen=True, slots=True)
class FeatureMatch:
    """ORB features of a query matched to a reference's, with RANSAC on a motion model.

    ``matrix`` (ref -> query, working pixels) is None when the features do not agree;
    ``ref_xy`` / ``query_xy`` are the RANSAC inliers' ``(N, 2)`` working-pixel positions.
    """

    matrix: np.ndarray | None = field(compare=False)
    inliers: int
    matches: int
    ref_xy: np.ndarray = field(compare=False)
    query_xy: np.ndarray = field(compare=False)


NO_POINTS = np.zeros((0, 2), np.float32)


def features(
    keypoints_xy: np.ndarray,
    descriptors: np.ndarray,
    feature_level: int,
    query_level: np.ndarray,
    model: str,
) -> FeatureMatch:
    """Match the query level's ORB features to the reference's; RANSAC on ``model``."""
    none = FeatureMatch(None, 0, 0, NO_POINTS, NO_POINTS)
    if len(descriptors) < 8:
        return none
    q_pts, q_des = orb(query_level, feature_level, None)
    if len(q_des) < 8:
        return none
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    pairs = matcher.knnMatch(q_des, descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
    if len(good) < 8:
        return FeatureMatch(None, 0, len(good), NO_POINTS, NO_POINTS)
    src = keypoints_xy[[m.trainIdx for m in good]]
    dst = q_pts[[m.queryIdx for m in good]]
    thr = 2.5 * 2**feature_level
    if model == "translation":
        est, inl = cv2.estimateTranslation2D(src, dst, ransacReprojThreshold=thr, maxIters=2000)
        m = None if est is None else np.array([[1.0, 0.0, est[0]], [0.0, 1.0, est[1]]])
    elif model == "affine":
        m, inl = cv2.estimateAffine2D(src, dst, ransacReprojThreshold=thr, maxIters=2000)
    else:
        m, inl = cv2.estimateAffinePartial2D(src, dst, ransacReprojThreshold=thr, maxIters=2000)
    if m is None or inl is None:
        return FeatureMatch(None, 0, len(good), NO_POINTS, NO_POINTS)
    sel = np.asarray(inl).ravel().astype(bool)
    inliers = int(np.count_nonzero(sel))
    if inliers < max(8, int(0.15 * len(good))):
        return FeatureMatch(None, inliers, len(good), src[sel], dst[sel])
    a = to3x3(np.asarray(m, dtype=np.float64))
    if model == "euclidean":
        s = math.sqrt(abs(np.linalg.det(a[:2, :2])))
        a[:2, :2] /= s
        a[:2, 2] = dst[sel].mean(axis=0) - a[:2, :2] @ src[sel].mean(axis=0)
    return FeatureMatch(a, inliers, len(good), src[sel], dst[sel])


def phase(image: np.ndarray, k: int, window: np.ndarray, query_level: np.ndarray) -> np.ndarray:
    """Translation-only estimate (3x3, working pixels) by phase correlation of the
    reference's pyramid level ``k`` (``image``, float32) with the query's."""
    h, w = image.shape
    q = query_level
    if q.shape != (h, w):
        canvas = np.full((h, w), float(q.mean()), dtype=np.float32)
        hh, ww = min(h, q.shape[0]), min(w, q.shape[1])
        canvas[:hh, :ww] = q[:hh, :ww]
        q = canvas
    # Copies: OpenCV 5.0's phaseCorrelate applies the window to its inputs in place.
    (dx, dy), _response = cv2.phaseCorrelate(image.copy(), q.copy(), window)
    s = float(2**k)
    return np.array([[1.0, 0.0, dx * s], [0.0, 1.0, dy * s], [0.0, 0.0, 1.0]])
