"""Rendering: annotated images and heat maps for people and PEKAT-style clients.

Pure functions over arrays (no I/O, no clock). Images are ``(H, W)`` uint8 grey or
``(H, W, 3)`` uint8 BGR; every function that draws returns a new ``(H, W, 3)``
uint8 BGR image and never writes into its input. Heat maps are ``(h, w)`` float
arrays in [0, 1] (0 = nothing of interest, 1 = strongest); a heat map of another
size than the image is resized to it (bilinear).

A recipe whose checks produce no heat map still gets one on request:
:func:`regions_heatmap` paints each defect region's box with its score (1 when
the check gives none), so the map shows where the defects are and how strong.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from edged.core.regions import Region

BOX_BGR: tuple[int, int, int] = (0, 0, 255)
"""Colour of defect boxes in annotated images (red)."""


def to_bgr(image: np.ndarray) -> np.ndarray:
    """A BGR copy of ``image``: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return np.array(image, dtype=np.uint8, copy=True)


def regions_heatmap(regions: Sequence[Region], shape_hw: tuple[int, int]) -> np.ndarray:
    """A ``(H, W)`` float32 map in [0, 1]: each pixel is the highest score of the regions
    whose box covers it (a region without a score counts 1.0), 0 elsewhere.

    Boxes are ``x, y, width, height`` in pixels; parts outside the image are ignored.
    """
    h, w = shape_hw
    heat = np.zeros((h, w), dtype=np.float32)
    for r in regions:
        x0, y0 = max(0, r.x), max(0, r.y)
        x1, y1 = min(w, r.x + r.width), min(h, r.y + r.height)
        if x1 <= x0 or y1 <= y0:
            continue
        score = 1.0 if r.score is None else float(np.clip(r.score, 0.0, 1.0))
        view = heat[y0:y1, x0:x1]
        np.maximum(view, np.float32(score), out=view)
    return heat


def _fit_heat(heat: np.ndarray, shape_hw: tuple[int, int]) -> np.ndarray:
    """``heat`` as float32 in [0, 1] of ``shape_hw`` (NaN counts 0; an unusable map —
    empty, or not 2-D — counts as nothing rather than failing the response)."""
    h, w = shape_hw
    if heat.ndim == 3:
        heat = heat[..., 0]
    if heat.ndim != 2 or heat.size == 0 or not np.issubdtype(heat.dtype, np.number):
        return np.zeros((h, w), np.float32)
    heat = np.nan_to_num(np.asarray(heat, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    np.clip(heat, 0.0, 1.0, out=heat)  # at the map's own size: resizing stays in [0, 1]
    if heat.shape != (h, w):
        heat = cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR)
    return heat


def colorize_heatmap(heat: np.ndarray, *, shape_hw: tuple[int, int] | None = None) -> np.ndarray:
    """The heat map as a ``(H, W, 3)`` uint8 BGR image with OpenCV's JET colour map
    (0 = dark blue, 1 = dark red). ``shape_hw`` resizes it (default: its own size)."""
    fitted = _fit_heat(heat, shape_hw or (heat.shape[0], heat.shape[1]))
    return cv2.applyColorMap(_levels(fitted), cv2.COLORMAP_JET)


def _levels(heat: np.ndarray) -> np.ndarray:
    """``rint(heat · 255)`` as uint8 for a float32 map in [0, 1] (one OpenCV pass)."""
    return cv2.convertScaleAbs(heat, alpha=255.0)


def annotate(
    image: np.ndarray,
    regions: Sequence[Region],
    *,
    heatmap: np.ndarray | None = None,
    heat_alpha: float = 0.5,
    box_bgr: tuple[int, int, int] = BOX_BGR,
) -> np.ndarray:
    """``image`` with the heat map blended in and each region boxed and labelled.

    image: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR. The heat map (if any) is
    blended with weight ``heat_alpha · heat`` per pixel, so cold areas keep their
    original pixels. Each region gets a rectangle along its box's outer pixels and
    a label ``"label score"`` above it (inside the image). Returns a new BGR image.
    """
    out = to_bgr(image)
    h, w = out.shape[:2]
    if heatmap is not None:
        heat = _fit_heat(heatmap, (h, w))
        colour = cv2.applyColorMap(_levels(heat), cv2.COLORMAP_JET)
        weight = heat * np.float32(heat_alpha)
        # out·(1 - weight) + colour·weight per pixel, rounded (OpenCV, multi-threaded)
        out = cv2.blendLinear(out, colour, np.float32(1.0) - weight, weight)
    thickness = max(1, round(min(h, w) / 400))
    font_scale = max(0.35, min(h, w) / 1200)
    for r in regions:
        if r.width <= 0 or r.height <= 0:
            continue
        x0, y0 = r.x, r.y
        x1, y1 = r.x + r.width - 1, r.y + r.height - 1
        cv2.rectangle(out, (x0, y0), (x1, y1), box_bgr, thickness, lineType=cv2.LINE_8)
        text = r.label if r.score is None else f"{r.label} {r.score:.2f}"
        _label(out, text, (x0, y0), box_bgr, font_scale)
    return out


def _label(
    out: np.ndarray, text: str, corner_xy: tuple[int, int], bgr: tuple[int, int, int], scale: float
) -> None:
    """Draw ``text`` on a filled box just above ``corner_xy`` (below it at the top edge)."""
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    h, w = out.shape[:2]
    if tw + 2 > w or th + base + 2 > h:
        return  # image too small for a legible label: the box alone
    x = min(max(0, corner_xy[0]), w - tw - 2)
    top = corner_xy[1] - th - base - 2
    if top < 0:
        top = min(h - th - base - 2, corner_xy[1] + 1)
    cv2.rectangle(out, (x, top), (x + tw + 1, top + th + base + 1), bgr, cv2.FILLED)
    cv2.putText(
        out,
        text,
        (x + 1, top + th),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )


def encode_jpeg(image: np.ndarray, *, quality: int = 90) -> bytes:
    """JPEG bytes of ``image`` (grey or BGR uint8) at ``quality`` 1–100."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover
        msg = f"JPEG encoding failed for an image of shape {image.shape}"
        raise ValueError(msg)
    return buf.tobytes()
