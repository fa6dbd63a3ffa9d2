"""edges: the Canny edge map of an image and the share of edge pixels.

Canny (OpenCV, 3×3 Sobel, L1 gradient magnitude) on the luma at full resolution:
edges are a pixel-scale measure, so nothing is subsampled. The Sobel derivatives
are computed in cache-sized bands of rows and handed to ``cv2.Canny(dx, dy, ...)``:
the result is identical to ``cv2.Canny(grey, ...)``. ``threshold_min`` and
``threshold_max`` are the hysteresis thresholds on the gradient magnitude
(0..500; a step of ``d`` grey levels gives a magnitude of about ``4 d``).
``edge_thickness`` > 1 widens every edge with a ``thickness × thickness`` square
dilation, as LTU's service does, and the fraction is counted after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from pydantic import Field, model_validator

from edged.checks._base import CheckOptions, LtuReply, function_spec
from edged.checks._channel_options import IMAGES
from edged.checks._image import require_image, to_grey
from edged.checks._png import image_object, mask_png_base64

THRESHOLD_MAX = 500.0
_BAND_ROWS = 128


@dataclass(frozen=True, slots=True)
class Edges:
    """The edge map ``(H, W)`` uint8 (255 = edge, 0 = not, as OpenCV's Canny) and its
    measures. The PNG in ``to_dict()`` is 1-bit (samples 1 = edge)."""

    edges: np.ndarray = field(compare=False, repr=False)
    edge_px: int
    threshold_min: float
    threshold_max: float
    edge_thickness: int

    @property
    def edge_fraction(self) -> float:
        return self.edge_px / self.edges.size

    def to_dict(self, *, images: bool = True) -> dict[str, Any]:
        """The LTU JSON shape; ``images=False`` leaves ``edges`` (a base64 1-bit PNG) null."""
        h, w = self.edges.shape
        return {
            "edges": mask_png_base64(self.edges) if images else None,
            "edge_px": self.edge_px,
            "edge_fraction": round(self.edge_fraction, 6),
            "threshold_min": self.threshold_min,
            "threshold_max": self.threshold_max,
            "edge_thickness": self.edge_thickness,
            "resolution_wh": [w, h],
        }


def detect_edges(
    image: np.ndarray,
    *,
    threshold_min: float = 100.0,
    threshold_max: float = 200.0,
    edge_thickness: int = 1,
) -> Edges:
    """Canny edges of ``image``.

    image: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR.
    threshold_min, threshold_max: hysteresis thresholds, 0 <= min <= max <= 500.
    edge_thickness: edge width in pixels, 1..31 (1 = Canny's one-pixel edges).

    Raises InputError for an image outside the contract, ValueError for options
    out of range.
    """
    image = require_image(image)
    if not 0 <= threshold_min <= threshold_max <= THRESHOLD_MAX:
        msg = (
            f"thresholds: expected 0 <= threshold_min <= threshold_max <= {THRESHOLD_MAX:g}, "
            f"got {threshold_min!r}, {threshold_max!r}"
        )
        raise ValueError(msg)
    if not 1 <= edge_thickness <= 31:
        msg = f"edge_thickness: expected 1..31 pixels, got {edge_thickness!r}"
        raise ValueError(msg)
    dx, dy = _sobel(to_grey(image))
    edges = cv2.Canny(dx, dy, threshold_min, threshold_max, L2gradient=False)
    if edge_thickness > 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (edge_thickness, edge_thickness))
        edges = cv2.dilate(edges, kernel)
    return Edges(
        edges=np.asarray(edges, np.uint8),
        edge_px=int(cv2.countNonZero(edges)),
        threshold_min=float(threshold_min),
        threshold_max=float(threshold_max),
        edge_thickness=edge_thickness,
    )


def _sobel(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Canny's own 3×3 Sobel derivatives (int16, replicated border), computed in
    bands of rows: the same numbers as ``cv2.Canny(grey, ...)`` computes inside,
    at about half the cost on a 5 Mpx frame, where whole-frame passes spill out
    of the cache."""
    h, w = grey.shape
    dx = np.empty((h, w), np.int16)
    dy = np.empty((h, w), np.int16)
    for y0 in range(0, h, _BAND_ROWS):
        y1 = min(y0 + _BAND_ROWS, h)
        a, b = max(0, y0 - 1), min(h, y1 + 1)  # one row of context each side
        src = grey[a:b]
        keep = slice(y0 - a, y0 - a + (y1 - y0))
        dx[y0:y1] = cv2.Sobel(src, cv2.CV_16S, 1, 0, ksize=3, borderType=cv2.BORDER_REPLICATE)[keep]
        dy[y0:y1] = cv2.Sobel(src, cv2.CV_16S, 0, 1, ksize=3, borderType=cv2.BORDER_REPLICATE)[keep]
    return dx, dy


class EdgesOptions(CheckOptions):
    """edges (:func:`detect_edges`)."""

    threshold_min: float = Field(default=100.0, ge=0, le=THRESHOLD_MAX)
    threshold_max: float = Field(default=200.0, ge=0, le=THRESHOLD_MAX)
    edge_thickness: int = Field(default=1, ge=1, le=31, description="pixels")

    @model_validator(mode="after")
    def _ordered(self) -> EdgesOptions:
        if self.threshold_min > self.threshold_max:
            msg = (
                "expected threshold_min <= threshold_max, got "
                f"{self.threshold_min:g} > {self.threshold_max:g}"
            )
            raise ValueError(msg)
        return self


class LtuEdgesOptions(EdgesOptions):
    """edges over LTU: thresholds given the wrong way round are swapped, as OpenCV's
    Canny does (the document's Python sample sends ``threshold_max`` below
    ``threshold_min``)."""

    @model_validator(mode="before")
    @classmethod
    def _swap(cls, data: Any) -> Any:
        if isinstance(data, dict) and {"threshold_min", "threshold_max"} <= set(data):
            try:
                low, high = float(data["threshold_min"]), float(data["threshold_max"])
            except (TypeError, ValueError):
                return data  # the field validators say what is wrong
            if low > high:
                return {**data, "threshold_min": high, "threshold_max": low}
        return data


def ltu_reply(result: Edges, _: object) -> LtuReply:
    """edges as the LTU document shapes it: ``edges`` an image object, message
    "Edges found."."""
    body = result.to_dict()
    body["edges"] = image_object(body["edges"])
    return LtuReply(body, message="Edges found.")


class EdgesCheckOptions(EdgesOptions):
    include_images: bool = IMAGES


SPEC = function_spec(
    "edges",
    detect_edges,
    EdgesCheckOptions,
    figures=(
        "edges",
        "edge_px",
        "edge_fraction",
        "threshold_min",
        "threshold_max",
        "edge_thickness",
        "resolution_wh.*",
    ),
    to_figures=lambda result, options: result.to_dict(images=options.include_images),
    ltu=("edges", LtuEdgesOptions, "Edge image (PNG) and the edge-pixel fraction"),
    to_ltu=ltu_reply,
    description="Canny edge map and edge-pixel fraction",
)
