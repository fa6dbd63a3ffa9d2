"""Options shared by the checks that segment one channel (mask, contours)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from edged.checks._base import CheckOptions
from edged.checks._channels import ColorSpace, resolve_channel
from edged.checks._segment import Polarity


def upper(value: Any) -> Any:
    """A pydantic ``before`` validator: strip and upper-case strings (LTU is case tolerant)."""
    return value.strip().upper() if isinstance(value, str) else value


def lower(value: Any) -> Any:
    """A pydantic ``before`` validator: strip and lower-case strings."""
    return value.strip().lower() if isinstance(value, str) else value


# The recipe-only option: put the PNG blobs in the published figures.
IMAGES = Field(default=False, description="put the PNG in the published figures")


class ChannelOptions(CheckOptions):
    color_space: ColorSpace = "RGB"
    channel: int | str | None = "auto"
    polarity: Polarity = "auto"
    max_side_px: int = Field(
        default=1280, ge=0, le=65_536, description="longest side worked on; 0 = full"
    )

    _upper_space = field_validator("color_space", mode="before")(upper)
    _lower_polarity = field_validator("polarity", mode="before")(lower)

    @model_validator(mode="after")
    def _channel_exists(self) -> ChannelOptions:
        if self.channel is not None:
            resolve_channel(self.color_space, self.channel)  # ValueError says what exists
        return self
