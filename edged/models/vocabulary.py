"""The Deepomatic v0.7 vocabulary as validated models: network preprocessing, spec
outputs, version post-processing.

Field names and values are the document's (``tensor_name``, ``resize_type``,
``pixel_scaling``, ``output_tensor``, ``direct_output`` ...). edged adds a few
fields where the document is silent, each marked *edged* in its description.
Unknown keys are errors, so a misspelt option never passes silently.

Pixel values: the image is converted to float, divided by 255, multiplied by
``pixel_scaling``, the ``mean`` subtracted and divided by ``std``:
``(x / 255 * pixel_scaling - mean) / std``. So Caffe's ``pixel_scaling: 255`` with
an ImageNet mean gives ``x - mean`` and Inception's ``pixel_scaling: 2`` with a
unit mean gives ``[-1, 1]``.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ResizeType = Literal["SQUASH", "CROP", "NETWORK"]
DataType = Literal["FLOAT32", "FLOAT16", "UINT8"]
DimensionOrder = Literal["NCHW", "NHWC"]
ColorChannels = Literal["RGB", "BGR", "L"]
Activation = Literal["auto", "none", "softmax", "sigmoid"]
BoxFormat = Literal["yxyx", "xyxy", "cxcywh"]
Kind = Literal["classification", "tagging", "detection"]

DEFAULT_THRESHOLDS: dict[Kind, float] = {
    "classification": 0.025,
    "tagging": 0.5,
    "detection": 0.8,
}
"""The document's default per-label thresholds."""

_SIZE = re.compile(r"^\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?$")


@functools.lru_cache(maxsize=256)
def _size_wh(text: str) -> tuple[int, int | None]:
    m = _SIZE.match(text)
    assert m is not None  # validated
    return int(m.group(1)), (int(m.group(2)) if m.group(2) else None)


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImagePreprocessing(_Model):
    """How an image becomes the network's input tensor."""

    resize_type: ResizeType = "SQUASH"
    data_type: DataType = "FLOAT32"
    dimension_order: DimensionOrder = "NCHW"
    pixel_scaling: float = Field(default=255.0, gt=0)
    mean_file: str = Field(
        default="", description="name of a .npy file uploaded with the network, or empty"
    )
    mean: tuple[float, ...] = Field(
        default=(), description="edged: mean values (1 or one per channel), after scaling"
    )
    std: tuple[float, ...] = Field(
        default=(), description="edged: divisors (1 or one per channel), after the mean"
    )
    target_size: str = Field(
        default="224x224",
        description="'WIDTHxHEIGHT', or one side N: N x N (SQUASH, CROP) or longest side N "
        "(NETWORK)",
    )
    color_channels: ColorChannels = "BGR"

    _upper = field_validator(
        "resize_type", "data_type", "dimension_order", "color_channels", mode="before"
    )(_upper)

    @field_validator("target_size")
    @classmethod
    def _size(cls, value: str) -> str:
        m = _SIZE.match(value)
        if m is None or int(m.group(1)) < 1 or (m.group(2) is not None and int(m.group(2)) < 1):
            msg = f"expected 'WIDTHxHEIGHT' like '224x224' or one side like '800', got {value!r}"
            raise ValueError(msg)
        return value

    @field_validator("std")
    @classmethod
    def _std(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(v == 0 for v in value):
            msg = f"expected non-zero std values, got {list(value)}"
            raise ValueError(msg)
        return value

    @property
    def channels(self) -> int:
        return 1 if self.color_channels == "L" else 3

    def size_wh(self) -> tuple[int, int | None]:
        """``(width, height)``; height None for a single side."""
        return _size_wh(self.target_size)

    @model_validator(mode="after")
    def _per_channel(self) -> ImagePreprocessing:
        for name in ("mean", "std"):
            values = getattr(self, name)
            if len(values) not in (0, 1, self.channels):
                msg = (
                    f"{name}: expected 1 or {self.channels} values for {self.color_channels}, "
                    f"got {len(values)}"
                )
                raise ValueError(msg)
        return self


class ConstantInput(_Model):
    """A constant tensor: numbers, or ``"data.N"`` for dimension N of the image tensor."""

    shape: tuple[int, ...]
    data: tuple[float | str, ...]

    @field_validator("data")
    @classmethod
    def _refs(cls, value: tuple[float | str, ...]) -> tuple[float | str, ...]:
        for item in value:
            if isinstance(item, str) and re.fullmatch(r"data\.\d", item) is None:
                msg = f"expected numbers or 'data.N' references, got {item!r}"
                raise ValueError(msg)
        return value


class InputTensor(_Model):
    tensor_name: str = Field(min_length=1)
    image: ImagePreprocessing | None = None
    constant: ConstantInput | None = None

    @model_validator(mode="after")
    def _one(self) -> InputTensor:
        if (self.image is None) == (self.constant is None):
            msg = f"input {self.tensor_name!r}: expected exactly one of 'image' or 'constant'"
            raise ValueError(msg)
        return self


class NetworkConfig(_Model):
    """A network's ``preprocessing``: its inputs and whether outputs are batched."""

    inputs: tuple[InputTensor, ...] = Field(min_length=1)
    batched_output: bool = True

    @model_validator(mode="after")
    def _one_image(self) -> NetworkConfig:
        images = [i for i in self.inputs if i.image is not None]
        if len(images) != 1:
            msg = f"inputs: expected exactly one image input, got {len(images)}"
            raise ValueError(msg)
        return self

    @property
    def image_input(self) -> InputTensor:
        return next(i for i in self.inputs if i.image is not None)

    @property
    def image(self) -> ImagePreprocessing:
        image = self.image_input.image
        assert image is not None
        return image


# ------------------------------------------------------------------ spec outputs


class Label(_Model):
    id: int = Field(ge=0)
    name: str = Field(min_length=1)


class LabelsOutput(_Model):
    roi: Literal["NONE", "BBOX"] = "NONE"
    exclusive: bool = True
    labels: tuple[Label, ...] = Field(min_length=1)

    _upper_roi = field_validator("roi", mode="before")(_upper)

    @model_validator(mode="after")
    def _unique(self) -> LabelsOutput:
        ids = [label.id for label in self.labels]
        if len(set(ids)) != len(ids):
            msg = f"labels: expected unique ids, got {ids}"
            raise ValueError(msg)
        return self


class OutputSpec(_Model):
    labels: LabelsOutput


class SpecOutputs(_Model):
    """A recognition spec's ``outputs`` (one labels output)."""

    outputs: tuple[OutputSpec, ...] = Field(min_length=1, max_length=1)

    @property
    def labels(self) -> LabelsOutput:
        return self.outputs[0].labels

    @property
    def kind(self) -> Kind:
        labels = self.labels
        if labels.roi == "BBOX":
            return "detection"
        return "classification" if labels.exclusive else "tagging"


# ------------------------------------------------------------------ post-processing


class _Thresholds(_Model):
    thresholds: tuple[float, ...] | None = Field(
        default=None, description="one per label, in the spec's label order"
    )
    discard_threshold: float | None = Field(default=None, ge=0.0, le=1.0)

    @field_validator("thresholds")
    @classmethod
    def _range(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if value is not None and any(not 0.0 <= v <= 1.0 for v in value):
            msg = f"expected thresholds in [0, 1], got {list(value)}"
            raise ValueError(msg)
        return value


class ClassificationPost(_Thresholds):
    output_tensor: str = Field(min_length=1)
    activation: Activation = Field(
        default="auto",
        description="edged: 'auto' applies softmax (sigmoid for tagging) unless the "
        "output already is probabilities",
    )


class DirectOutput(_Model):
    boxes_tensor: str = Field(min_length=1)
    scores_tensor: str = Field(min_length=1)
    classes_tensor: str = Field(
        default="", description="empty: scores are a (boxes, labels) matrix"
    )
    box_format: BoxFormat = Field(default="yxyx", description="edged: box layout")
    normalized: bool = Field(
        default=True, description="edged: boxes in [0, 1] (else pixels of the input tensor)"
    )
    class_offset: int = Field(
        default=0, description="edged: added to the classes tensor to give label ids"
    )


class YoloOutput(_Model):
    output_tensor: str = Field(min_length=1)
    anchors: tuple[float, ...] = Field(
        default=(), description="empty: the anchor-free single-tensor export (YOLOv5/v8)"
    )


class GflOutput(_Model):
    """edged: PicoDet / GFL heads, per stride a scores and a distances tensor."""

    scores_tensors: tuple[str, ...] = Field(min_length=1)
    distances_tensors: tuple[str, ...] = Field(min_length=1)
    strides: tuple[int, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _same(self) -> GflOutput:
        n = {len(self.scores_tensors), len(self.distances_tensors), len(self.strides)}
        if len(n) != 1:
            msg = "expected as many scores_tensors, distances_tensors and strides"
            raise ValueError(msg)
        return self


class DetectionPost(_Thresholds):
    direct_output: DirectOutput | None = None
    yolo_output: YoloOutput | None = None
    gfl_output: GflOutput | None = None
    anchored_output: dict[str, Any] | None = None
    nms_threshold: float = Field(default=0.3, ge=0.0, le=1.0)
    normalize_wrt_tensor: str = ""

    @model_validator(mode="after")
    def _one(self) -> DetectionPost:
        given = [
            name
            for name in ("direct_output", "yolo_output", "gfl_output", "anchored_output")
            if getattr(self, name) is not None
        ]
        if len(given) != 1:
            msg = (
                "detection: expected exactly one of direct_output, yolo_output, gfl_output, "
                f"got {given or 'none'}"
            )
            raise ValueError(msg)
        if self.anchored_output is not None:
            msg = (
                "detection: anchored_output is not supported by edged; export the boxes "
                "(direct_output) or use yolo_output / gfl_output"
            )
            raise ValueError(msg)
        if self.yolo_output is not None and self.yolo_output.anchors:
            msg = (
                "detection.yolo_output: anchored YOLO grids are not supported by edged; "
                "use the anchor-free single-tensor export (no anchors)"
            )
            raise ValueError(msg)
        return self


class PostProcessing(_Model):
    """One entry of a version's ``post_processings``."""

    classification: ClassificationPost | None = None
    tagging: ClassificationPost | None = None
    detection: DetectionPost | None = None

    @model_validator(mode="after")
    def _one(self) -> PostProcessing:
        given = [k for k in ("classification", "tagging", "detection") if getattr(self, k)]
        if len(given) != 1:
            msg = (
                "post_processing: expected exactly one of classification, tagging, detection, "
                f"got {given or 'none'}"
            )
            raise ValueError(msg)
        return self

    @property
    def kind(self) -> Kind:
        if self.detection is not None:
            return "detection"
        return "tagging" if self.tagging is not None else "classification"
