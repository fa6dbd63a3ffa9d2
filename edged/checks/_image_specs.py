"""Recipe specs of the image checks: quality, mask, contours, edges, palette, heatmap.

Each ``run`` calls the pure check function with the recipe's validated options and
returns its ``to_dict()`` as figures (PNG blobs only when the recipe asks: quality
``masks``, the others ``include_images``), plus regions and the heat map.
"""

from __future__ import annotations

import numpy as np

from edged.checks._base import CheckContext, CheckOutcome, CheckSpec, Region
from edged.checks._options import (
    ContoursOptions,
    EdgesCheckOptions,
    HeatmapCheckOptions,
    MaskCheckOptions,
    PaletteOptions,
    QualityOptions,
)
from edged.checks.contours import find_contours
from edged.checks.edges import detect_edges
from edged.checks.heatmap import interest_heatmap
from edged.checks.mask import object_mask
from edged.checks.palette import color_palette
from edged.checks.quality import image_quality


def _quality(image: np.ndarray, options: QualityOptions, _: CheckContext) -> CheckOutcome:
    result = image_quality(image, **options.kwargs())
    return CheckOutcome(figures=result.to_dict(images=options.masks))


def _mask(image: np.ndarray, options: MaskCheckOptions, _: CheckContext) -> CheckOutcome:
    result = object_mask(image, **options.kwargs())
    box = result.bounding_box
    regions: tuple[Region, ...] = ()
    if box is not None:
        regions = (
            Region(box.x, box.y, box.width, box.height, "object", "mask", area_px=result.area_px),
        )
    return CheckOutcome(figures=result.to_dict(images=options.include_images), regions=regions)


def _contours(image: np.ndarray, options: ContoursOptions, _: CheckContext) -> CheckOutcome:
    result = find_contours(image, **options.kwargs())
    regions = tuple(
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
    return CheckOutcome(figures=result.to_dict(), regions=regions)


def _edges(image: np.ndarray, options: EdgesCheckOptions, _: CheckContext) -> CheckOutcome:
    result = detect_edges(image, **options.kwargs())
    return CheckOutcome(figures=result.to_dict(images=options.include_images))


def _palette(image: np.ndarray, options: PaletteOptions, _: CheckContext) -> CheckOutcome:
    return CheckOutcome(figures=color_palette(image, **options.kwargs()).to_dict())


def _heatmap(image: np.ndarray, options: HeatmapCheckOptions, _: CheckContext) -> CheckOutcome:
    result = interest_heatmap(image, **options.kwargs())
    return CheckOutcome(
        figures=result.to_dict(images=options.include_images), heatmap=result.heatmap
    )


QUALITY_SPEC = CheckSpec(
    "quality", QualityOptions, _quality, description="exposure, sharpness and noise"
)
MASK_SPEC = CheckSpec(
    "mask", MaskCheckOptions, _mask, description="binary mask of the object, its area and box"
)
CONTOURS_SPEC = CheckSpec(
    "contours", ContoursOptions, _contours, description="object outlines, largest first"
)
EDGES_SPEC = CheckSpec(
    "edges", EdgesCheckOptions, _edges, description="Canny edge map and edge-pixel fraction"
)
PALETTE_SPEC = CheckSpec(
    "palette", PaletteOptions, _palette, description="most prevalent colours with shares"
)
HEATMAP_SPEC = CheckSpec(
    "heatmap", HeatmapCheckOptions, _heatmap, description="where the image's interest lies"
)
