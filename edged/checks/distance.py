"""Distance between two images, read the LTU way.

``distance`` is ``0`` for a clone, ``< 1`` for a match (the same part or scene, small
differences), ``1 .. 2`` for similar images (the same kind of thing: colours agree
and some features match, but they do not align) and ``2`` for unrelated images.

How it is built (each sub-score is returned):

- *registration*: image2 is registered onto image1 (similarity model); when it
  holds, the normalised cross-correlation ``correlation`` of the aligned images is
  the similarity ``s`` and ``distance = 2 * sqrt(1 - s)``: a re-encoded copy gives
  ~0.02, the same part with a defect ~0.2, a changed scene approaches 1;
- otherwise *features* and *colour*: ORB inliers after RANSAC (``inliers`` of
  ``matches``) and the correlation of the colour (HS, or grey) histograms give
  ``s = 0.4 * histogram * min(1, inliers / 40)`` when at least 8 features agree,
  else ``s = 0`` (distance 2).

``decision``: ``clone`` (distance < 0.05), ``match`` (< 1), ``similar`` (< 2),
``unrelated``. Matching boxes are the part of each image that corresponds to the
other (the registered overlap, or the span of the agreeing features).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from edged.checks._image import to_grey
from edged.checks._scale import resize_matrix, shrink, working_size
from edged.checks.align import (
    RegistrationTemplate,
    match_features,
    prepare_registration,
    register,
)
from edged.checks.prepared import check_image

DECISIONS = ("clone", "match", "similar", "unrelated")
WORKING_RESOLUTION = 640
_RESOLUTION = WORKING_RESOLUTION


@dataclass(frozen=True, slots=True)
class Distance:
    """The distance between image1 (reference) and image2 (query) and what it rests on.

    Boxes are ``(x, y, width, height)`` in each image's own pixels, or None.
    """

    distance: float
    decision: str
    registered: bool
    correlation: float | None
    inliers: int
    matches: int
    histogram: float
    box1_xywh: tuple[int, int, int, int] | None
    box2_xywh: tuple[int, int, int, int] | None

    def to_dict(self) -> dict[str, Any]:
        def box(b: tuple[int, int, int, int] | None) -> dict[str, int] | None:
            return None if b is None else dict(zip(("x", "y", "width", "height"), b, strict=True))

        return {
            "distance": round(self.distance, 4),
            "decision": self.decision,
            "scores": {
                "registered": self.registered,
                "correlation": None if self.correlation is None else round(self.correlation, 4),
                "inliers": self.inliers,
                "matches": self.matches,
                "histogram": round(self.histogram, 4),
            },
            "boxes": {"image1": box(self.box1_xywh), "image2": box(self.box2_xywh)},
        }


def decision_for(distance: float) -> str:
    if distance < 0.05:
        return "clone"
    if distance < 1.0:
        return "match"
    if distance < 2.0:
        return "similar"
    return "unrelated"


def _histogram(img: np.ndarray) -> np.ndarray:
    if img.ndim == 3:
        hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
        h = cv2.calcHist([hsv], [0, 1], None, [30, 32], [0, 180, 0, 256])
    else:
        h = cv2.calcHist([img], [0], None, [64], [0, 256])
    out: np.ndarray = h / max(float(h.sum()), 1.0)
    return out


def _box(pts: np.ndarray, size_wh: tuple[int, int]) -> tuple[int, int, int, int] | None:
    if len(pts) == 0:
        return None
    x0 = max(0, math.floor(float(pts[:, 0].min())))
    y0 = max(0, math.floor(float(pts[:, 1].min())))
    x1 = min(size_wh[0], math.ceil(float(pts[:, 0].max())) + 1)
    y1 = min(size_wh[1], math.ceil(float(pts[:, 1].max())) + 1)
    return x0, y0, max(1, x1 - x0), max(1, y1 - y0)


def _to(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    out: np.ndarray = pts @ m[:2, :2].T + m[:2, 2]
    return out


@dataclass(frozen=True, slots=True, eq=False)
class DistanceReference:
    """Image1 of :func:`distance`, prepared once (:func:`prepare_distance`) for any
    number of image2s.

    ``image``: image1 as given (a query with the same pixels is a clone);
    ``work_wh``: its working size; ``hist_grey`` / ``hist_colour``: the histograms
    compared with a grey / colour query (``hist_colour`` None for a grey image1);
    ``template``: its registration template.
    """

    image: np.ndarray
    work_wh: tuple[int, int]
    hist_grey: np.ndarray
    hist_colour: np.ndarray | None
    template: RegistrationTemplate

    @property
    def size_wh(self) -> tuple[int, int]:
        return int(self.image.shape[1]), int(self.image.shape[0])


def prepare_distance(image1: np.ndarray) -> DistanceReference:
    """Prepare image1 (``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR) for
    :func:`distance_prepared`."""
    check_image(image1, "image1")
    wh1 = (image1.shape[1], image1.shape[0])
    w1 = working_size(wh1, _RESOLUTION)
    g1 = shrink(to_grey(image1), w1)
    colour = _histogram(shrink(image1, w1)) if image1.ndim == 3 else None
    return DistanceReference(image1, w1, _histogram(g1), colour, prepare_registration(g1))


def distance_prepared(reference: DistanceReference, image2: np.ndarray) -> Distance:
    """How far image2 (``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR, any size) is
    from a prepared image1: the same answer as :func:`distance` on the pair."""
    check_image(image2, "image2")
    image1 = reference.image
    wh1, wh2 = reference.size_wh, (image2.shape[1], image2.shape[0])
    if image1.shape == image2.shape and np.array_equal(image1, image2):
        full1, full2 = (0, 0, *wh1), (0, 0, *wh2)
        return Distance(0.0, "clone", True, 1.0, 0, 0, 1.0, full1, full2)
    w1, w2 = reference.work_wh, working_size(wh2, _RESOLUTION)
    g2 = shrink(to_grey(image2), w2)
    if reference.hist_colour is None or image2.ndim == 2:
        h1, h2 = reference.hist_grey, _histogram(g2)
    else:
        h1, h2 = reference.hist_colour, _histogram(shrink(image2, w2))
    hist = float(cv2.compareHist(h1, h2, cv2.HISTCMP_CORREL))
    hist = max(0.0, min(1.0, hist))
    tpl = reference.template
    feats = match_features(tpl, g2, "similarity")
    reg = register(tpl, g2, model="similarity", min_correlation=0.5)
    to1 = np.linalg.inv(resize_matrix(wh1, w1))
    to2 = np.linalg.inv(resize_matrix(wh2, w2))
    if reg.ok:
        s = max(0.0, min(1.0, reg.correlation))
        d = 2.0 * math.sqrt(1.0 - s)
        # The overlap: image2's frame mapped into image1, and image1's into image2.
        q = np.array([[0, 0], [w2[0] - 1, 0], [w2[0] - 1, w2[1] - 1], [0, w2[1] - 1]], float)
        r = np.array([[0, 0], [w1[0] - 1, 0], [w1[0] - 1, w1[1] - 1], [0, w1[1] - 1]], float)
        inv = np.linalg.inv(reg.ref_to_query)
        b1 = _box(_to(to1, _clip_box(_to(inv, q), w1)), wh1)
        b2 = _box(_to(to2, _clip_box(_to(reg.ref_to_query, r), w2)), wh2)
        return Distance(
            d, decision_for(d), True, reg.correlation, feats.inliers, feats.matches, hist, b1, b2
        )
    support = min(1.0, feats.inliers / 40.0) if feats.inliers >= 8 else 0.0
    s = 0.4 * hist * support
    d = 2.0 * math.sqrt(1.0 - s)
    b1 = _box(_to(to1, feats.ref_xy), wh1) if support > 0 else None
    b2 = _box(_to(to2, feats.query_xy), wh2) if support > 0 else None
    return Distance(d, decision_for(d), False, None, feats.inliers, feats.matches, hist, b1, b2)


def _clip_box(pts: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """Corners of the intersection of a quad's bounding box with the image (working px)."""
    x0 = max(0.0, float(pts[:, 0].min()))
    y0 = max(0.0, float(pts[:, 1].min()))
    x1 = min(size_wh[0] - 1.0, float(pts[:, 0].max()))
    y1 = min(size_wh[1] - 1.0, float(pts[:, 1].max()))
    return np.array([[x0, y0], [x1, y1]])


def distance(image1: np.ndarray, image2: np.ndarray) -> Distance:
    """How far image2 is from image1 (LTU reading, see the module docstring).

    image1, image2: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR; sizes may differ.
    """
    check_image(image1, "image1")
    check_image(image2, "image2")
    return distance_prepared(prepare_distance(image1), image2)
