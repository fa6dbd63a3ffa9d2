"""Recipe check ``anomaly``: a textured surface scored against a model of good parts.

For surfaces where no two good parts are pixel-alike (wood, textiles, cast or
brushed metal, granulates): the model is trained from N good images taught for
the recipe and camera (``edged teach``, the HTTP admin API, MQTT ``teach``, the
live camera; 3 at least, 10 or more recommended) and kept in the reference store
(see :mod:`edged.checks.anomaly`).

Options (all optional)::

    surface:                    # any name; the type says which check it is
      type: anomaly
      features: filterbank      # filterbank (DoG + Gabor + local mean/std + LBP) | dog (faster)
                                # | cnn (EfficientNet-Lite0, pip install 'edged[cnn]')
      false_alarm: 0.01         # target share of good parts above the threshold
      bank_size: 4096           # most feature vectors kept (greedy coreset)
      resolution: 256           # working size (longest side; cnn also enlarges to it); 0 = full
      cell_px: 8                # feature cell side, working pixels (even)
      smooth_cells: 0           # Gaussian smoothing of the cell map, cells
      threshold: null           # a fixed threshold instead of the trained one
      min_area_px: 0            # smallest region listed, image pixels
      max_regions: 20           # regions listed in the figures and the Result
      heatmap: true             # hand the anomaly map to the renderer

Figures: ``score`` (the highest cell score; higher = more anomalous),
``threshold``, ``anomalous`` (score > threshold), ``count`` (regions above the
threshold), ``area_px``, ``n_images``, ``inspected_cells``, ``features``,
``regions [{box {x, y, width, height}, area_px, score}]``. Regions are labelled
``anomaly`` (their ``check`` is the check's name). With no limit written on this
check, the recipe fails a part when its score is above the threshold (the
default limit ``<check>.anomalous == false``, e.g. ``surface.anomalous == false``).

A recipe's checks share one stored model per camera: anomaly checks of one
recipe must agree on the training options, and cannot be combined with
``difference`` checks in the same recipe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field, field_validator, model_validator

from edged.checks._base import CheckContext, CheckOptions, CheckOutcome, CheckSpec, Region
from edged.checks.anomaly import (
    AnomalyModel,
    AnomalyParams,
    AnomalyResult,
    FeatureKind,
    score_anomaly,
)
from edged.core.errors import EdgedError

NAME = "anomaly"


class AnomalyOptions(CheckOptions):
    """Options of the ``anomaly`` recipe check (see the module docstring)."""

    features: FeatureKind = "filterbank"
    false_alarm: float = Field(default=0.01, gt=0, lt=0.5)
    bank_size: int = Field(default=4096, ge=16, le=1_000_000)
    resolution: int = Field(default=256, ge=0, le=4096)
    cell_px: int = Field(default=8, ge=4, le=64)
    smooth_cells: float = Field(default=0.0, ge=0, le=8)
    threshold: float | None = Field(default=None, ge=0)
    min_area_px: int = Field(default=0, ge=0)
    max_regions: int = Field(default=20, ge=0, le=1000)
    heatmap: bool = True

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, value: int) -> int:
        if value != 0 and value < 64:
            msg = f"expected 0 (full size) or at least 64 pixels, got {value}"
            raise ValueError(msg)
        return value

    @field_validator("cell_px")
    @classmethod
    def _even(cls, value: int) -> int:
        if value % 2:
            msg = f"expected an even number of working pixels, got {value}"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _cnn_cells(self) -> AnomalyOptions:
        if self.features == "cnn" and self.cell_px != 8:
            msg = f"cell_px: features cnn expect 8 (the network's stride), got {self.cell_px}"
            raise ValueError(msg)
        return self

    def params(self) -> AnomalyParams:
        return AnomalyParams(
            features=self.features,
            resolution=self.resolution,
            cell_px=self.cell_px,
            bank_size=self.bank_size,
            false_alarm=self.false_alarm,
            smooth_cells=self.smooth_cells,
        )


def prepare_params(options: Sequence[AnomalyOptions]) -> AnomalyParams:
    """How one recipe's anomaly model is trained for its ``anomaly`` checks: they
    share one model, so they must agree on its training options (ValueError
    naming the one that differs). Defaults without checks."""
    if not options:
        return AnomalyOptions().params()
    params = [o.params() for o in options]
    first = params[0].to_dict()
    for p in params[1:]:
        for key, value in p.to_dict().items():
            if value != first[key]:
                msg = (
                    f"anomaly checks of one recipe share one trained model: expected one "
                    f"{key} for all of them, got {sorted({str(first[key]), str(value)})}"
                )
                raise ValueError(msg)
    return params[0]


def _no_model(context: CheckContext) -> EdgedError:
    msg = (
        f"recipe {context.recipe!r} camera {context.camera!r} has no anomaly model: teach "
        f"good images with `edged teach --config FILE --recipe {context.recipe} "
        f"--camera {context.camera} IMAGE...` (at least 3, 10 or more recommended)"
    )
    return EdgedError(msg)


def figures(res: AnomalyResult, model: AnomalyModel) -> dict[str, Any]:
    d = res.to_dict()
    d["n_images"] = model.n_images
    d["features"] = model.params.features
    return d


def heatmap(res: AnomalyResult) -> np.ndarray:
    """The anomaly map at the image's size in [0, 1]: 0.5 is the threshold."""
    scale = np.float32(1.0 / max(2.0 * res.threshold, 1e-6))
    heat: np.ndarray = np.clip(res.anomaly_map() * scale, 0.0, 1.0)
    return heat


def run_anomaly(image: np.ndarray, options: AnomalyOptions, context: CheckContext) -> CheckOutcome:
    model = context.reference
    if model is None:
        raise _no_model(context)
    if not isinstance(model, AnomalyModel):
        msg = (
            f"anomaly: expected an anomaly model for recipe {context.recipe!r} camera "
            f"{context.camera!r}, got a {model.kind!r} reference: teach it again"
        )
        raise EdgedError(msg)
    if model.params != options.params():
        msg = (
            f"the anomaly model of recipe {context.recipe!r} camera {context.camera!r} was "
            f"trained with {model.params.to_dict()}; the recipe asks for "
            f"{options.params().to_dict()}: teach it again (or reload, which trains it "
            "again from its stored images)"
        )
        raise EdgedError(msg)
    res = score_anomaly(
        model,
        image,
        threshold=options.threshold,
        min_area_px=options.min_area_px,
        max_regions=options.max_regions,
    )
    regions = tuple(
        Region(
            x=r.box_xywh[0],
            y=r.box_xywh[1],
            width=r.box_xywh[2],
            height=r.box_xywh[3],
            label="anomaly",
            check=NAME,
            score=min(1.0, r.score / max(2.0 * res.threshold, 1e-6)),
            area_px=r.area_px,
        )
        for r in res.regions
    )
    heat = heatmap(res) if options.heatmap else None
    return CheckOutcome(figures=figures(res, model), regions=regions, heatmap=heat)


_BOX = ("x", "y", "width", "height")
FIGURES: tuple[str, ...] = (
    "score",
    "threshold",
    "anomalous",
    "count",
    "area_px",
    "inspected_cells",
    "n_images",
    "features",
    *(f"regions.*.box.{k}" for k in _BOX),
    "regions.*.area_px",
    "regions.*.score",
)

SPEC = CheckSpec(
    name=NAME,
    options=AnomalyOptions,
    run=run_anomaly,
    needs_reference=True,
    description="anomalies on textured surfaces, learned from good parts only",
    figures=FIGURES,
    reference_params=prepare_params,
    default_limits=("{check}.anomalous == false",),
)
