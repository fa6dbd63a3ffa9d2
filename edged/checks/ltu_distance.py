"""LTU ``distance`` JSON: a :class:`Distance` in the shape the LTU document shows.

``result``:

- ``distance``: 0 clone, below 1 a match, 1..2 similar, 2 unrelated;
- ``scores``: the document's five sub-scores, each in [0, 1], as edged computes them:
  ``boxCoveredSurface`` the share of the query covered by its matching box,
  ``boxPointsRatio`` the share of feature matches that agree (RANSAC inliers /
  matches), ``boxPointsRatioHomography`` the registered pair's normalised
  correlation (the inlier share when the pair does not register),
  ``matchStrength`` the similarity the distance is made of (``1 - (distance/2)²``),
  ``matchStrengthWithoutWeighting`` the colour-histogram correlation; edged adds
  its own ``registered``, ``correlation``, ``inliers``, ``matches``, ``histogram``;
- ``query`` / ``reference``: ``area`` (the matching box's share of the image),
  ``resizedDimensions`` (the working size ``[w, h]``), ``originalDimensions``
  (``[w, h]``) and ``matchingBox`` (its four corners as ``[x, y]`` fractions of
  the image, clockwise from the top left; empty when nothing matches);
- edged adds ``decision`` (clone, match, similar, unrelated) and ``boxes`` (pixels).
"""

from __future__ import annotations

from typing import Any

from edged.checks._scale import working_size
from edged.checks.distance import WORKING_RESOLUTION, Distance


def _side(box: tuple[int, int, int, int] | None, wh: tuple[int, int]) -> dict[str, Any]:
    w, h = wh
    if box is None:
        area, corners = 0.0, []
    else:
        x, y, bw, bh = box
        area = bw * bh / float(w * h)
        x0, y0, x1, y1 = x / w, y / h, (x + bw) / w, (y + bh) / h
        corners = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    return {
        "area": round(area, 6),
        "resizedDimensions": list(working_size(wh, WORKING_RESOLUTION)),
        "originalDimensions": [w, h],
        "matchingBox": [[round(a, 6), round(b, 6)] for a, b in corners],
    }


def ltu_distance(
    d: Distance, *, ref_wh: tuple[int, int], query_wh: tuple[int, int]
) -> dict[str, Any]:
    """The LTU ``result`` of a distance between the reference and the query."""
    own = d.to_dict()
    query = _side(d.box2_xywh, query_wh)
    ratio = d.inliers / d.matches if d.matches else 0.0
    homography = d.correlation if d.registered and d.correlation is not None else ratio
    scores = {
        "boxCoveredSurface": float(query["area"]),
        "boxPointsRatio": round(float(ratio), 6),
        "boxPointsRatioHomography": round(max(0.0, min(1.0, float(homography))), 6),
        "matchStrength": round(max(0.0, 1.0 - (d.distance / 2.0) ** 2), 6),
        "matchStrengthWithoutWeighting": round(float(d.histogram), 6),
        **own["scores"],
    }
    return {
        "distance": round(float(d.distance), 6),
        "scores": scores,
        "query": query,
        "reference": _side(d.box1_xywh, ref_wh),
        "decision": d.decision,
        "boxes": own["boxes"],
    }
