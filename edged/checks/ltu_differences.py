"""LTU ``differences`` JSON: a :class:`DifferenceResult` in the shape LTU clients read.

``diffOnImage1`` / ``diffOnImage2`` list the regions, each in its own image's pixels:

- ``boundingBox`` ``{x, y, width, height}``;
- ``enclosingCircle`` ``{radius, center: {x, y}}`` (edged keeps ``x``, ``y`` too);
- ``relativeVertices`` the outline as ``{x, y}`` pixels from the bounding box's
  corner (empty when ``vertices`` is false); edged adds ``vertices_frac``, the same
  points as ``[x / W, y / H]`` fractions of the image (pixel centres, 5 decimals);
- ``mask``: the image object ``{"encoding": "base64", "format": "image/png",
  "value"}`` of the bounding box — ``binary``: 255 inside the region, 0 outside
  (8-bit grey); ``contours``: the outline drawn ``mask_thickness`` pixels wide in
  ``mask_color`` on black (BGR, or BGRA when the colour has an alpha); ``none``: null;
- edged adds ``area_px``, ``contrast`` (grey levels beyond the tolerance) and
  ``polarity`` (bright, dark, mixed).

``matOn1`` is the matrix to apply to image 1 to align it on image 2 (it maps image1
pixels to image2 pixels), ``matOn2`` the one to apply to image 2 to align it on
image 1; both flat row-major lists of 9, null unless ``transform`` is true.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

import cv2
import numpy as np

from edged.checks._png import image_object
from edged.checks.difference import DifferenceResult, DiffRegion
from edged.core.errors import InputError

MaskType = Literal["binary", "contours", "none"]
MASK_TYPES = ("binary", "contours", "none")


def parse_color(value: Any) -> tuple[int, ...]:
    """``"#RRGGBB"``, ``"R,G,B"``, ``"R,G,B,A"`` (the document's ``"255,0,0,125"``) or
    a list of 3 or 4 -> BGR or BGRA tuple."""
    try:
        if isinstance(value, list | tuple):
            parts = [int(v) for v in value]
        else:
            text = str(value).strip()
            if text.startswith("#") and len(text) == 7:
                parts = [int(text[i : i + 2], 16) for i in (1, 3, 5)]
            else:
                parts = [int(v) for v in text.split(",")]
        if len(parts) not in (3, 4):
            raise ValueError(len(parts))
    except (ValueError, TypeError) as exc:
        msg = f"mask_color: expected '#RRGGBB', 'R,G,B' or 'R,G,B,A', got {value!r}"
        raise InputError(msg) from exc
    if not all(0 <= c <= 255 for c in parts):
        msg = f"mask_color: expected components in 0..255, got {value!r}"
        raise InputError(msg)
    r, g, b = parts[:3]
    return (b, g, r, *parts[3:])


def _png_b64(image: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:  # pragma: no cover - only for invalid arrays
        msg = f"PNG encoding failed for an array of shape {image.shape}"
        raise ValueError(msg)
    return base64.b64encode(buf.tobytes()).decode("ascii")


def _mask(
    vertices: tuple[tuple[float, float], ...],
    box: tuple[int, int, int, int],
    mask_type: str,
    thickness: int,
    color_bgr: tuple[int, ...],
) -> dict[str, str] | None:
    if mask_type == "none":
        return None
    x, y, w, h = box
    pts = np.round((np.asarray(vertices, np.float64) - (x, y)) * 16).astype(np.int32)
    if mask_type == "binary":
        canvas = np.zeros((h, w), np.uint8)
        cv2.fillPoly(canvas, [pts.reshape(-1, 1, 2)], 255, cv2.LINE_8, 4)
        cv2.polylines(canvas, [pts.reshape(-1, 1, 2)], True, 255, 1, cv2.LINE_8, 4)
    else:
        canvas = np.zeros((h, w, len(color_bgr)), np.uint8)
        cv2.polylines(canvas, [pts.reshape(-1, 1, 2)], True, color_bgr, thickness, cv2.LINE_8, 4)
    return image_object(_png_b64(canvas))


def _region(
    r: DiffRegion,
    on: int,
    size_wh: tuple[int, int],
    mask_type: str,
    thickness: int,
    color_bgr: tuple[int, ...],
    vertices: bool,
) -> dict[str, Any]:
    box = r.box1_xywh if on == 1 else r.box2_xywh
    circle = r.circle1_xyr if on == 1 else r.circle2_xyr
    verts = r.vertices1 if on == 1 else r.vertices2
    w, h = size_wh
    frac = [[round(vx / w, 5), round(vy / h, 5)] for vx, vy in verts] if vertices else []
    rel = [{"x": round(vx) - box[0], "y": round(vy) - box[1]} for vx, vy in verts]
    return {
        "boundingBox": {"x": box[0], "y": box[1], "width": box[2], "height": box[3]},
        "enclosingCircle": {
            "radius": float(circle[2]),
            "center": {"x": float(circle[0]), "y": float(circle[1])},
            "x": circle[0],
            "y": circle[1],
        },
        "relativeVertices": rel if vertices else [],
        "vertices_frac": frac,
        "mask": _mask(verts, box, mask_type, thickness, color_bgr),
        "area_px": r.area_px,
        "contrast": round(r.contrast, 1),
        "polarity": r.polarity,
    }


def ltu_differences(
    result: DifferenceResult,
    *,
    image1_wh: tuple[int, int],
    image2_wh: tuple[int, int],
    mask_type: MaskType = "binary",
    mask_thickness: int = 2,
    mask_color: tuple[int, ...] = (255, 255, 255),
    vertices: bool = True,
    transform: bool = False,
) -> dict[str, Any]:
    """The LTU ``result`` object (see the module docstring); ``mask_color`` is BGR."""
    if mask_type not in MASK_TYPES:
        msg = f"mask_type: expected one of {list(MASK_TYPES)}, got {mask_type!r}"
        raise InputError(msg)
    if not 1 <= mask_thickness <= 50:
        msg = f"mask_thickness: expected 1..50 pixels, got {mask_thickness!r}"
        raise InputError(msg)
    args = (mask_type, mask_thickness, mask_color, vertices)
    return {
        "diffOnImage1": [_region(r, 1, image1_wh, *args) for r in result.regions],
        "diffOnImage2": [_region(r, 2, image2_wh, *args) for r in result.regions],
        "matOn1": flat_matrix(result.matrix1) if transform else None,
        "matOn2": flat_matrix(result.matrix2) if transform else None,
    }


def flat_matrix(m: np.ndarray) -> list[float]:
    """A 3x3 matrix as the document's flat row-major list of 9."""
    return [round(float(v), 8) for v in np.asarray(m, np.float64).reshape(9)]
