"""contours: the outlines of the objects in one channel, largest first.

One channel (default V of HSV, as LTU; any colour space and channel of
:mod:`edged.checks._channels`) is smoothed 5×5 (Gaussian; median for hue) and split at ``level``
(default: Otsu's threshold) into object and background, with ``polarity`` saying
which side is object (``auto``: the side covering less of the image border).
The outer outline of every object region (holes are not reported) is simplified
to a polygon (Douglas–Peucker, ``epsilon_px``) and reported with its bounding box.

Figures, in input pixels: ``boundingBox`` ``{x, y, width, height}`` of the region's
pixels; ``relativeVertices`` the polygon's vertices ``[x / W, y / H]`` (fractions of
the image width and height, pixel centres, 5 decimals); ``area_px`` the area the
outline polygon encloses (through boundary pixel centres, so a filled w×h
rectangle gives ``(w-1)(h-1)``); ``perimeter_px`` its length.

Speed: the work runs on an area-averaged copy reduced by an integer factor so that
its longest side is at most ``max_side_px`` (0 = full resolution); boxes and
vertices are mapped back and are exact to within that factor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from pydantic import Field

from edged.checks._base import LtuReply, Region, function_spec
from edged.checks._box import Box
from edged.checks._channel_options import ChannelOptions
from edged.checks._channels import ColorSpace, otsu_separability, pick_channel, smooth_channel
from edged.checks._image import reduce, require_image
from edged.checks._segment import Polarity, threshold


@dataclass(frozen=True, slots=True)
class Contour:
    """One object outline, in input pixels (see the module doc)."""

    bounding_box: Box
    relative_vertices: tuple[tuple[float, float], ...]
    area_px: float
    perimeter_px: float
    vertices_px: tuple[tuple[int, int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "boundingBox": self.bounding_box.to_dict(),
            "relativeVertices": [list(v) for v in self.relative_vertices],
            "area_px": round(self.area_px, 2),
            "perimeter_px": round(self.perimeter_px, 2),
        }


@dataclass(frozen=True, slots=True)
class Contours:
    """The outlines, largest area first. ``total`` counts every outline of at least
    ``min_area_px``; ``contours`` holds the first ``max_contours`` of them."""

    contours: tuple[Contour, ...]
    total: int
    color_space: str
    channel: str
    level: float
    resolution_wh: tuple[int, int]
    work_factor: int

    @property
    def count(self) -> int:
        return len(self.contours)

    def to_dict(self) -> dict[str, Any]:
        return {
            "contours": [c.to_dict() for c in self.contours],
            "count": self.count,
            "total": self.total,
            "color_space": self.color_space,
            "channel": self.channel,
            "threshold": round(self.level, 3),
            "resolution_wh": list(self.resolution_wh),
            "work_factor": self.work_factor,
        }


def find_contours(
    image: np.ndarray,
    *,
    color_space: str = "HSV",
    channel: int | str | None = None,
    level: float | None = None,
    polarity: Polarity = "auto",
    min_area_px: float = 16.0,
    max_contours: int = 100,
    epsilon_px: float = 1.0,
    max_side_px: int = 1280,
) -> Contours:
    """Outer outlines of the objects in ``image``, largest first.

    image: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR.
    color_space, channel: the channel to split (``channel="auto"``: most bimodal;
        None: V for HSV, as LTU, else "auto").
    level: threshold in channel units 0..255; None: Otsu's.
    polarity: ``auto``, ``bright`` or ``dark`` objects.
    min_area_px: smaller outlines are ignored (input pixels², polygon area).
    max_contours: at most this many are returned (``total`` counts all).
    epsilon_px: polygon simplification tolerance in input pixels (0: every
        boundary pixel corner of OpenCV's simple chain).
    max_side_px: longest side of the working copy (0 = full resolution).

    Raises InputError for an image outside the contract and ValueError for an
    unknown colour space or channel or an option out of range.
    """
    image = require_image(image)
    if level is not None and not 0 <= level <= 255:
        msg = f"level: expected 0..255 or None (Otsu), got {level!r}"
        raise ValueError(msg)
    if max_contours < 1 or min_area_px < 0 or epsilon_px < 0:
        msg = (
            "expected max_contours >= 1, min_area_px >= 0, epsilon_px >= 0, got "
            f"{max_contours!r}, {min_area_px!r}, {epsilon_px!r}"
        )
        raise ValueError(msg)
    work = reduce(image, max_side_px=max_side_px)
    if channel is None:
        channel = "V" if color_space == "HSV" else "auto"
    chan = pick_channel(work.image, color_space, channel)
    smooth = smooth_channel(chan)
    used = otsu_separability(smooth)[0] if level is None else float(level)
    binary = threshold(smooth, used, polarity)
    found, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    f = work.factor
    areas = np.array([cv2.contourArea(c) for c in found], np.float64) * (f * f)
    keep = np.flatnonzero(areas >= min_area_px)
    order = keep[np.argsort(-areas[keep], kind="stable")]
    w, h = work.input_wh
    out: list[Contour] = []
    for i in order[:max_contours]:
        c = found[i]
        x, y, bw, bh = work.box_to_input(*cv2.boundingRect(c))
        poly = cv2.approxPolyDP(c, epsilon_px / f, True) if epsilon_px > 0 else c
        pts = work.points_to_input(poly.reshape(-1, 2))
        rel = tuple((round(px / w, 5), round(py / h, 5)) for px, py in pts.tolist())
        out.append(
            Contour(
                bounding_box=Box(x, y, bw, bh),
                relative_vertices=rel,
                area_px=float(areas[i]),
                perimeter_px=float(cv2.arcLength(c, True)) * f,
                vertices_px=tuple((round(px), round(py)) for px, py in pts.tolist()),
            )
        )
    return Contours(
        contours=tuple(out),
        total=int(keep.size),
        color_space=chan.color_space,
        channel=chan.name,
        level=used,
        resolution_wh=(w, h),
        work_factor=f,
    )


class ContoursOptions(ChannelOptions):
    """contours (:func:`find_contours`)."""

    color_space: ColorSpace = "HSV"
    channel: int | str | None = Field(default=None, description="None: V for HSV, else auto")
    level: float | None = Field(default=None, ge=0, le=255, description="None: Otsu")
    min_area_px: float = Field(default=16.0, ge=0)
    max_contours: int = Field(default=100, ge=1, le=10_000)
    epsilon_px: float = Field(default=1.0, ge=0, le=1000)


def _regions(result: Contours) -> tuple[Region, ...]:
    return tuple(
        Region(
            c.bounding_box.x,
            c.bounding_box.y,
            c.bounding_box.width,
            c.bounding_box.height,
            "contour",
            "contours",
            area_px=round(c.area_px),
        )
        for c in result.contours
    )


def ltu_reply(result: Contours, _: object) -> LtuReply:
    """contours as the LTU document shapes it: ``relativeVertices`` ``{x, y}`` in
    pixels from the contour's bounding box corner (edged's fractions of the image
    size stay as ``vertices_frac``), ``details.info.nbContours``, "Got N contours"."""
    out = []
    for c, d in zip(result.contours, result.to_dict()["contours"], strict=True):
        bx, by = c.bounding_box.x, c.bounding_box.y
        rel = [{"x": x - bx, "y": y - by} for x, y in c.vertices_px]
        out.append({**d, "relativeVertices": rel, "vertices_frac": d["relativeVertices"]})
    body = {**result.to_dict(), "contours": out}
    n = result.count
    return LtuReply(body, message=f"Got {n} contours", info={"nbContours": n})


SPEC = function_spec(
    "contours",
    find_contours,
    ContoursOptions,
    figures=(
        *(f"contours.*.boundingBox.{k}" for k in ("x", "y", "width", "height")),
        "contours.*.relativeVertices.*.*",
        "contours.*.area_px",
        "contours.*.perimeter_px",
        "count",
        "total",
        "color_space",
        "channel",
        "threshold",
        "resolution_wh.*",
        "work_factor",
    ),
    to_figures=lambda result, _: result.to_dict(),
    regions=_regions,
    to_ltu=ltu_reply,
    ltu=(
        "contours",
        ContoursOptions,
        "Contours with bounding boxes and relative vertices, largest first",
    ),
    description="object outlines, largest first",
)
