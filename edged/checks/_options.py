"""Validated options of the image checks, shared by recipes and the LTU services.

Each model mirrors one check function's keyword options (``kwargs()`` gives them);
recipes use the ``*CheckOptions`` subclasses, which add what only a recipe needs
(``include_images``: put the PNG blobs in the published figures). Unknown keys and
out-of-range values are errors that say what was expected.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from edged.checks._base import CheckOptions
from edged.checks._channels import ColorSpace, resolve_channel
from edged.checks._segment import Polarity
from edged.checks.edges import THRESHOLD_MAX
from edged.checks.heatmap import Method
from edged.checks.mask import Algorithm


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


class _Options(CheckOptions):
    def kwargs(self) -> dict[str, Any]:
        """The check function's keyword arguments."""
        return self.model_dump(exclude={"include_images"})


class QualityOptions(_Options):
    """imageQuality (:func:`edged.checks.quality.image_quality`)."""

    bins: int = Field(default=32, ge=1, le=256, description="luma histogram bins")
    tolerance: float = Field(
        default=0.02, ge=0.0, le=0.5, description="fraction of the range counted as under/over"
    )
    masks: bool = Field(default=False, description="return under/over-exposure masks (PNG)")
    val_half: float = Field(default=100.0, gt=0, description="val that normalises to 0.5")
    sml_half: float = Field(default=8.0, gt=0, description="sml that normalises to 0.5")


class _ChannelOptions(_Options):
    color_space: ColorSpace = "RGB"
    channel: int | str | None = "auto"
    polarity: Polarity = "auto"
    max_side_px: int = Field(
        default=1280, ge=0, le=65_536, description="longest side worked on; 0 = full"
    )

    _upper_space = field_validator("color_space", mode="before")(_upper)
    _lower_polarity = field_validator("polarity", mode="before")(_lower)

    @model_validator(mode="after")
    def _channel_exists(self) -> _ChannelOptions:
        if self.channel is not None:
            resolve_channel(self.color_space, self.channel)  # ValueError says what exists
        return self


class MaskOptions(_ChannelOptions):
    """objectMaskDetection (:func:`edged.checks.mask.object_mask`)."""

    channel: int | str = "auto"
    algorithm: Algorithm = "OTSU_BIN_THRESHOLD"
    only_biggest: bool = True
    bins: int = Field(default=16, ge=2, le=64, description="BINNING bins")

    _upper_algorithm = field_validator("algorithm", mode="before")(_upper)


class ContoursOptions(_ChannelOptions):
    """contours (:func:`edged.checks.contours.find_contours`)."""

    color_space: ColorSpace = "HSV"
    channel: int | str | None = Field(default=None, description="None: V for HSV, else auto")
    level: float | None = Field(default=None, ge=0, le=255, description="None: Otsu")
    min_area_px: float = Field(default=16.0, ge=0)
    max_contours: int = Field(default=100, ge=1, le=10_000)
    epsilon_px: float = Field(default=1.0, ge=0, le=1000)


class EdgesOptions(_Options):
    """edges (:func:`edged.checks.edges.detect_edges`)."""

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


class PaletteOptions(_Options):
    """colorPalette (:func:`edged.checks.palette.color_palette`)."""

    count: int = Field(default=5, ge=1, le=32, description="number of colours")
    max_samples: int = Field(default=262_144, ge=1024, le=1 << 26)


class HeatmapOptions(_Options):
    """heatMap (:func:`edged.checks.heatmap.interest_heatmap`)."""

    method: Method = "contrast"
    window_frac: float = Field(default=0.03, ge=0.005, le=0.5)
    full_scale: float = Field(default=32.0, gt=0, le=255)
    max_side_px: int = Field(default=512, ge=0, le=65_536)

    _lower_method = field_validator("method", mode="before")(_lower)

    @field_validator("max_side_px")
    @classmethod
    def _not_tiny(cls, value: int) -> int:
        if 0 < value < 32:
            msg = f"expected 0 (full resolution) or >= 32, got {value}"
            raise ValueError(msg)
        return value


_IMAGES = Field(default=False, description="put the PNG in the published figures")


class MaskCheckOptions(MaskOptions):
    include_images: bool = _IMAGES


class EdgesCheckOptions(EdgesOptions):
    include_images: bool = _IMAGES


class HeatmapCheckOptions(HeatmapOptions):
    include_images: bool = _IMAGES
