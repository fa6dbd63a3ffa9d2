"""objectMaskDetection: the binary mask of the object in an image.

One channel of the image in a chosen colour space (see :mod:`edged.checks._channels`)
is split into object and background by one of three algorithms:

The channel is first smoothed 5×5 (Gaussian; median for hue, which is an angle
that must not be averaged across its 179 -> 0 wrap).

``OTSU_BIN_THRESHOLD``
    Otsu's threshold of the smoothed channel; which side is the object is set by
    ``polarity`` (``auto``: the side covering less of the image border).
``BINNING``
    The channel is quantised into ``bins`` equal bins (hue wraps around). The
    background is the most frequent bin on the image border together with its two
    neighbours; every other pixel is object. Good for a uniform background of any
    level, including objects both darker and brighter than it. ``polarity``
    ``bright``/``dark`` keeps only bins above/below the background.
``SOBEL``
    Sobel gradient magnitude; thresholds from Otsu's split of the magnitudes feed a
    Canny-style non-maximum suppression and hysteresis, so outlines are one pixel
    thick; outlines are closed by one 3×3 dilation, the regions they enclose are
    filled and the dilation is undone. Finds objects whose outline is closed within
    the image; ``polarity`` does not apply. On a hue channel the 179 -> 0 wrap
    reads as an edge.

Speed: the work runs on an area-averaged copy reduced by an integer factor so that
its longest side is at most ``max_side_px`` (0 = full resolution); the mask is
returned at input resolution (nearest neighbour), so its outline is exact to
within that factor in input pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import Field, field_validator, model_validator

from edged.checks._base import LtuReply, Region, function_spec
from edged.checks._box import Box
from edged.checks._channel_options import IMAGES, ChannelOptions, upper
from edged.checks._channels import (
    HUE_PERIOD,
    Channel,
    otsu_separability,
    pick_channel,
    smooth_channel,
)
from edged.checks._image import reduce, require_image
from edged.checks._png import image_object, mask_png_base64
from edged.checks._segment import Polarity, fill_outer_contours, threshold

Algorithm = Literal["SOBEL", "BINNING", "OTSU_BIN_THRESHOLD"]
ALGORITHMS: tuple[Algorithm, ...] = ("SOBEL", "BINNING", "OTSU_BIN_THRESHOLD")
_K3 = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))


@dataclass(frozen=True, slots=True)
class ObjectMask:
    """The object's mask and its measures, in pixels of the input image.

    ``mask`` is ``(H, W)`` uint8, 1 = object, 0 = background. ``components`` counts
    the separate objects: 8-connected regions with their own outer outline (a
    region inside another's hole belongs to that one). ``work_factor`` is the reduction the
    segmentation ran at (1 = full resolution).
    """

    mask: np.ndarray = field(compare=False, repr=False)
    area_px: int
    bounding_box: Box | None
    components: int
    algorithm: str
    color_space: str
    channel: str
    channel_index: int
    work_factor: int

    @property
    def area_per(self) -> float:
        return 100.0 * self.area_px / self.mask.size

    def to_dict(self, *, images: bool = True) -> dict[str, Any]:
        """The LTU JSON shape; ``images=False`` leaves ``mask`` (a base64 1-bit PNG) null."""
        h, w = self.mask.shape
        return {
            "mask": mask_png_base64(self.mask) if images else None,
            "area_px": self.area_px,
            "area_per": round(self.area_per, 4),
            "boundingBox": self.bounding_box.to_dict() if self.bounding_box else None,
            "components": self.components,
            "algorithm": self.algorithm,
            "color_space": self.color_space,
            "channel": self.channel,
            "channel_index": self.channel_index,
            "resolution_wh": [w, h],
            "work_factor": self.work_factor,
        }


def object_mask(
    image: np.ndarray,
    *,
    algorithm: Algorithm = "OTSU_BIN_THRESHOLD",
    color_space: str = "RGB",
    channel: int | str = "auto",
    only_biggest: bool = True,
    polarity: Polarity = "auto",
    bins: int = 16,
    max_side_px: int = 1280,
) -> ObjectMask:
    """Find the object in ``image`` and return its binary mask.

    image: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR.
    algorithm: ``SOBEL``, ``BINNING`` or ``OTSU_BIN_THRESHOLD`` (see the module doc).
    color_space, channel: which channel to segment (see :mod:`edged.checks._channels`);
        ``channel="auto"`` picks the most bimodal one.
    only_biggest: keep only the object with the largest outline (polygon area),
        with whatever object pixels lie inside that outline.
    polarity: ``auto``, ``bright`` or ``dark`` object (OTSU and BINNING).
    bins: number of bins for BINNING, 2..64.
    max_side_px: longest side of the working copy (0 = full resolution).

    Raises InputError for an image outside the contract and ValueError for an
    unknown algorithm, colour space or channel, or bins out of range.
    """
    image = require_image(image)
    if algorithm not in ALGORITHMS:
        msg = f"algorithm: expected one of {list(ALGORITHMS)}, got {algorithm!r}"
        raise ValueError(msg)
    if not 2 <= bins <= 64:
        msg = f"bins: expected 2..64, got {bins!r}"
        raise ValueError(msg)
    work = reduce(image, max_side_px=max_side_px)
    chan = pick_channel(work.image, color_space, channel)
    smooth = smooth_channel(chan)
    if algorithm == "OTSU_BIN_THRESHOLD":
        level, _ = otsu_separability(smooth)
        small = threshold(smooth, level, polarity)
    elif algorithm == "BINNING":
        small = _binning(smooth, chan, bins, polarity)
    else:
        small = _sobel(smooth)
    # Outer outlines (8-connected): ~20x cheaper than labelling every component.
    outlines, _ = cv2.findContours(small, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    components = len(outlines)
    if only_biggest and components > 1:
        biggest = int(np.argmax([cv2.contourArea(c) for c in outlines]))
        keep = np.zeros_like(small)
        cv2.drawContours(keep, outlines, biggest, 1, thickness=cv2.FILLED)
        small = cv2.bitwise_and(small, keep)
        components = 1
    full = work.mask_to_input(small)
    return ObjectMask(
        mask=full,
        area_px=int(cv2.countNonZero(full)),
        bounding_box=Box.of_mask(full),
        components=components,
        algorithm=algorithm,
        color_space=chan.color_space,
        channel=chan.name,
        channel_index=chan.index,
        work_factor=work.factor,
    )


def _binning(smooth: np.ndarray, chan: Channel, bins: int, polarity: Polarity) -> np.ndarray:
    period = HUE_PERIOD if chan.hue else 256
    values = np.arange(256)
    index = np.minimum(values * bins // period, bins - 1)
    border = np.concatenate([smooth[0], smooth[-1], smooth[:, 0], smooth[:, -1]])
    background = int(np.argmax(np.bincount(index[border], minlength=bins)))
    diff = index - background
    if chan.hue:
        diff = (diff + bins // 2) % bins - bins // 2  # signed circular distance
    if polarity == "bright" and not chan.hue:
        obj = diff > 1
    elif polarity == "dark" and not chan.hue:
        obj = diff < -1
    else:
        obj = np.abs(diff) > 1
    lut = obj.astype(np.uint8)
    return cv2.LUT(smooth, lut)


def _sobel(smooth: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(smooth, cv2.CV_16S, 1, 0, ksize=3)
    gy = cv2.Sobel(smooth, cv2.CV_16S, 0, 1, ksize=3)
    # |gx| + |gy| / 8 fits 8 bits exactly (|g| <= 1020), for Otsu's histogram.
    mag8 = cv2.add(cv2.convertScaleAbs(gx, alpha=0.125), cv2.convertScaleAbs(gy, alpha=0.125))
    if not cv2.countNonZero(mag8):
        return np.zeros(smooth.shape, np.uint8)
    level8, _ = otsu_separability(mag8)
    high = (level8 + 1) * 8.0
    edges = cv2.Canny(gx, gy, 0.5 * high, high, L2gradient=False)
    closed = cv2.dilate(edges, _K3)
    return cv2.erode(fill_outer_contours(closed), _K3)


class MaskOptions(ChannelOptions):
    """objectMaskDetection (:func:`object_mask`)."""

    channel: int | str = "auto"
    algorithm: Algorithm = "OTSU_BIN_THRESHOLD"
    only_biggest: bool = True
    bins: int = Field(default=16, ge=2, le=64, description="BINNING bins")

    _upper_algorithm = field_validator("algorithm", mode="before")(upper)


class LtuMaskOptions(MaskOptions):
    """objectMaskDetection over LTU: a channel letter of HSV (``H``, ``S``, ``V``)
    without a ``color_space`` means HSV, as the document's sample sends it."""

    @model_validator(mode="before")
    @classmethod
    def _hsv_letters(cls, data: Any) -> Any:
        if isinstance(data, dict) and "color_space" not in data:
            channel = data.get("channel")
            if isinstance(channel, str) and channel.strip().upper() in ("H", "S", "V"):
                return {**data, "color_space": "HSV"}
        return data


def ltu_reply(result: ObjectMask, _: object) -> LtuReply:
    """objectMaskDetection as the LTU document shapes it: the mask as the image object
    ``result["binary mask"]``, ``details.info.channel`` and the document's sentence."""
    body = result.to_dict(images=False)
    del body["mask"]
    body = {"binary mask": image_object(mask_png_base64(result.mask)), **body}
    message = f"Succeded to detect object using channel {result.channel}"
    return LtuReply(body, message=message, info={"channel": result.channel})


class MaskCheckOptions(MaskOptions):
    include_images: bool = IMAGES


def _regions(result: ObjectMask) -> tuple[Region, ...]:
    box = result.bounding_box
    if box is None:
        return ()
    return (Region(box.x, box.y, box.width, box.height, "object", "mask", area_px=result.area_px),)


SPEC = function_spec(
    "mask",
    object_mask,
    MaskCheckOptions,
    figures=(
        "mask",
        "area_px",
        "area_per",
        *(f"boundingBox.{k}" for k in ("x", "y", "width", "height")),
        "components",
        "algorithm",
        "color_space",
        "channel",
        "channel_index",
        "resolution_wh.*",
        "work_factor",
    ),
    to_figures=lambda result, options: result.to_dict(images=options.include_images),
    regions=_regions,
    to_ltu=ltu_reply,
    ltu=(
        "objectMaskDetection",
        LtuMaskOptions,
        "Binary mask of the object, with area and bounding box",
    ),
    description="binary mask of the object, its area and box",
)
