"""The list of check specs known to recipes. Add a module's SPEC here."""

from __future__ import annotations

from edged.checks._anomaly_spec import SPEC as ANOMALY_SPEC
from edged.checks._base import CheckSpec
from edged.checks._difference_spec import SPEC as DIFFERENCE_SPEC
from edged.checks._image_specs import (
    CONTOURS_SPEC,
    EDGES_SPEC,
    HEATMAP_SPEC,
    MASK_SPEC,
    PALETTE_SPEC,
    QUALITY_SPEC,
)

ALL: tuple[CheckSpec, ...] = (
    QUALITY_SPEC,
    MASK_SPEC,
    CONTOURS_SPEC,
    EDGES_SPEC,
    PALETTE_SPEC,
    HEATMAP_SPEC,
    DIFFERENCE_SPEC,
    ANOMALY_SPEC,
)
