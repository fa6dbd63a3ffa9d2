"""heatMap: where an image's interest lies, as an ``(H, W)`` float32 map in [0, 1].

Two measures, both on the luma of an area-averaged copy whose longest side is at
most ``max_side_px`` (interest is a regional measure; the map is resized back to
the input size with bilinear interpolation):

``contrast`` (default)
    Local standard deviation of the luma in a ``window`` × ``window`` box,
    divided by ``full_scale`` grey levels and clipped to 1: absolute, so maps of
    different images compare (a flat, noise-free surface is 0 everywhere).
``keypoints``
    Density of FAST corners (threshold 20, non-maximum suppression), Gaussian
    smoothed with sigma ``window / 2``, divided by its maximum: relative, the
    densest place is 1 (an image without corners is 0 everywhere).

``window`` is ``window_frac`` of the working copy's longest side (odd, >= 3 px).
Figures (``mean``, ``hot_fraction`` — share of the map >= 0.5 —, ``peak_xy`` in
input pixels) are computed on the working-resolution map, and the PNG in
``to_dict()`` is that map in colour (``png_resolution_wh``): it holds all the
map's information, and a full 5 Mpx colour PNG would cost ~0.2 s to encode.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import Field, field_validator

from edged.checks._base import CheckOptions, LtuReply, function_spec
from edged.checks._channel_options import IMAGES, lower
from edged.checks._image import reduce, require_image, to_grey
from edged.checks._png import image_object, png_base64
from edged.imaging.render import colorize_heatmap

Method = Literal["contrast", "keypoints"]
METHODS: tuple[Method, ...] = ("contrast", "keypoints")


@dataclass(frozen=True, slots=True)
class Heatmap:
    """The interest map ``(H, W)`` float32 in [0, 1] at input resolution, the same at
    working resolution (``work_map``), and figures."""

    heatmap: np.ndarray = field(compare=False, repr=False)
    work_map: np.ndarray = field(compare=False, repr=False)
    method: str
    mean: float
    hot_fraction: float
    peak_xy: tuple[int, int]
    window_px: int
    work_factor: int

    def to_dict(self, *, images: bool = True) -> dict[str, Any]:
        """The JSON shape; ``heatmap`` is a base64 PNG of ``work_map`` in the colours of
        every edged heat map (:func:`edged.imaging.render.colorize_heatmap`), null with
        ``images=False``."""
        h, w = self.heatmap.shape
        wh, ww = self.work_map.shape
        return {
            "heatmap": png_base64(colorize_heatmap(self.work_map)) if images else None,
            "png_resolution_wh": [ww, wh],
            "method": self.method,
            "mean": round(self.mean, 4),
            "hot_fraction": round(self.hot_fraction, 4),
            "peak_xy": list(self.peak_xy),
            "window_px": self.window_px,
            "resolution_wh": [w, h],
            "work_factor": self.work_factor,
        }


def interest_heatmap(
    image: np.ndarray,
    *,
    method: Method = "contrast",
    window_frac: float = 0.03,
    full_scale: float = 32.0,
    max_side_px: int = 512,
) -> Heatmap:
    """A heat map of where ``image``'s interest lies (see the module doc).

    image: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR.
    method: ``contrast`` or ``keypoints``.
    window_frac: neighbourhood size as a fraction of the longest side, 0.005..0.5.
    full_scale: local standard deviation (grey levels) that maps to 1 (contrast), > 0.
    max_side_px: longest side of the working copy, >= 32 (0 = full resolution).

    Raises InputError for an image outside the contract, ValueError for options
    out of range.
    """
    image = require_image(image)
    if method not in METHODS:
        msg = f"method: expected one of {list(METHODS)}, got {method!r}"
        raise ValueError(msg)
    if not 0.005 <= window_frac <= 0.5:
        msg = f"window_frac: expected 0.005..0.5, got {window_frac!r}"
        raise ValueError(msg)
    if not full_scale > 0:
        msg = f"full_scale: expected > 0 grey levels, got {full_scale!r}"
        raise ValueError(msg)
    if 0 < max_side_px < 32:
        msg = f"max_side_px: expected 0 or >= 32, got {max_side_px!r}"
        raise ValueError(msg)
    work = reduce(to_grey(image), max_side_px=max_side_px)
    grey = work.image
    window = max(3, round(window_frac * max(grey.shape)) | 1)
    if method == "contrast":
        small = _local_contrast(grey, window, full_scale)
    else:
        small = _keypoint_density(grey, window)
    w, h = work.input_wh
    heat = small if work.factor == 1 else cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    heat = np.clip(heat, 0.0, 1.0, out=heat)
    _, _, _, peak = cv2.minMaxLoc(small)
    px, py = work.points_to_input(np.array([peak], np.float64))[0]
    return Heatmap(
        heatmap=np.asarray(heat, np.float32),
        work_map=small,
        method=method,
        mean=float(cv2.mean(small)[0]),
        hot_fraction=float(np.count_nonzero(small >= 0.5)) / float(small.size),
        peak_xy=(min(round(float(px)), w - 1), min(round(float(py)), h - 1)),
        window_px=window * work.factor,
        work_factor=work.factor,
    )


def _local_contrast(grey: np.ndarray, window: int, full_scale: float) -> np.ndarray:
    g = grey.astype(np.float32)
    mean = cv2.boxFilter(g, cv2.CV_32F, (window, window), borderType=cv2.BORDER_REFLECT)
    sq = cv2.boxFilter(g * g, cv2.CV_32F, (window, window), borderType=cv2.BORDER_REFLECT)
    var = np.maximum(sq - mean * mean, 0.0)
    return np.asarray(np.minimum(np.sqrt(var) / full_scale, 1.0), np.float32)


def _keypoint_density(grey: np.ndarray, window: int) -> np.ndarray:
    fast = cv2.FastFeatureDetector.create(threshold=20, nonmaxSuppression=True)
    points = np.zeros(grey.shape, np.float32)
    keypoints = fast.detect(grey, None)
    if keypoints:
        xy = np.rint(cv2.KeyPoint.convert(keypoints)).astype(np.intp)
        np.add.at(points, (xy[:, 1], xy[:, 0]), 1.0)
    density = cv2.GaussianBlur(points, (0, 0), window / 2.0)
    top = float(density.max())
    if top <= 0:
        return density
    return np.asarray(density / top, np.float32)


class HeatmapOptions(CheckOptions):
    """heatMap (:func:`interest_heatmap`)."""

    method: Method = "contrast"
    window_frac: float = Field(default=0.03, ge=0.005, le=0.5)
    full_scale: float = Field(default=32.0, gt=0, le=255)
    max_side_px: int = Field(default=512, ge=0, le=65_536)

    _lower_method = field_validator("method", mode="before")(lower)

    @field_validator("max_side_px")
    @classmethod
    def _not_tiny(cls, value: int) -> int:
        if 0 < value < 32:
            msg = f"expected 0 (full resolution) or >= 32, got {value}"
            raise ValueError(msg)
        return value


class HeatmapCheckOptions(HeatmapOptions):
    include_images: bool = IMAGES


def ltu_reply(result: Heatmap, _: object) -> LtuReply:
    """heatMap as the LTU document shapes it: ``heatmap`` an image object,
    ``details.name`` "heatmap", ``details.info.signature`` (edged: the CRC-32 of the
    heat map's samples, equal for equal heat maps)."""
    body = result.to_dict()
    body["heatmap"] = image_object(body["heatmap"])
    signature = zlib.crc32(np.ascontiguousarray(result.work_map).tobytes())
    return LtuReply(body, name="heatmap", info={"signature": signature})


SPEC = function_spec(
    "heatmap",
    interest_heatmap,
    HeatmapCheckOptions,
    figures=(
        "heatmap",
        "png_resolution_wh.*",
        "method",
        "mean",
        "hot_fraction",
        "peak_xy.*",
        "window_px",
        "resolution_wh.*",
        "work_factor",
    ),
    to_figures=lambda result, options: result.to_dict(images=options.include_images),
    heatmap=lambda result: result.heatmap,
    ltu=("heatMap", HeatmapOptions, "Heat map of where the image's interest lies (PNG)"),
    to_ltu=ltu_reply,
    description="where the image's interest lies",
)
