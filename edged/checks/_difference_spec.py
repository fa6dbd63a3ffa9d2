"""Recipe check ``difference``: compare each frame with the stored good reference.

Options (all optional)::

    difference:
      preset: 3                 # 1 finest detail .. 5 smooth (threshold/smooth/min area)
      threshold: 25             # grey levels beyond the reference's local range
      smooth: 1.0               # Gaussian sigma, working pixels
      min_area_px: 30           # smallest difference kept, image pixels
      margin_px: 0              # border band ignored, image pixels
      resolution: 1024          # working size (longest side); 0 = full size
      behaviors: L              # compared channels: L luma, V, S, H (e.g. "LH")
      weight: 1.0               # colour (S, H) sensitivity relative to brightness
      var_threshold: 3.0        # std deviations tolerated (variation models)
      edge_tolerance_px: 1      # local min/max radius absorbing sub-pixel shifts
      contrast_tolerance: 0.08  # share of the local contrast added near strong edges
      motion_model: auto        # auto | translation | euclidean | similarity | affine | homography
      min_correlation: 0.5      # registration quality below which a frame is unregistered
      max_residual_px: 1.0      # local misfit after registration beyond which: unregistered
      lighting: field           # field: smooth gain field + offset; global: one gain/offset
      colour: auto              # auto: also CIELAB a/b chroma on colour references; off
      robust: false             # train variation models with median/MAD
      on_unregistered: error    # error: verdict "error"; fail: a whole-image region
      max_regions: 20           # regions listed in the figures and the Result
      heatmap: false            # hand a difference heat map to the renderer

Figures: ``count``, ``score`` (% of the compared area that differs), ``area_px``,
``max_contrast``, ``model`` (single | variation), ``n_references``, ``compared_px``,
``not_inspected_px`` (image pixels outside the area both images cover, less a margin:
never reported as differences), ``lighting_spread``, ``channels``,
``registration {dx, dy, angle_deg, scale, ok, correlation, method, gain, offset, model,
residual_px}``,
``regions [{box, query_box, area_px, contrast, polarity}]``. Regions are labelled
``defect`` in pixels of the inspected image. Limits: ``difference.count == 0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import Field, field_validator

from edged.checks._base import CheckContext, CheckOptions, CheckOutcome, CheckSpec, Region
from edged.checks._behaviors import BEHAVIORS, parse_behaviors
from edged.checks._lk import warp
from edged.checks.align import MotionModel, UnregisteredError
from edged.checks.difference import (
    PRESETS,
    ColourMode,
    DifferenceResult,
    DifferenceSettings,
    LightingModel,
    compare,
)
from edged.checks.prepared import PreparedReference, ReferenceParams
from edged.core.errors import EdgedError, InputError


class DifferenceOptions(CheckOptions):
    """Options of the ``difference`` recipe check (see the module docstring)."""

    preset: int = Field(default=3, ge=1, le=5)
    threshold: float | None = Field(default=None, ge=1, le=255)
    smooth: float | None = Field(default=None, ge=0, le=10)
    min_area_px: float | None = Field(default=None, ge=0)
    margin_px: int = Field(default=0, ge=0, le=10_000)
    resolution: int = Field(default=1024, ge=0, le=16384)
    behaviors: str = "L"
    weight: float = Field(default=1.0, ge=0.05, le=20)
    var_threshold: float = Field(default=3.0, ge=0, le=100)
    edge_tolerance_px: int = Field(default=1, ge=0, le=3)
    contrast_tolerance: float = Field(default=0.08, ge=0, le=1)
    motion_model: MotionModel = "auto"
    min_correlation: float = Field(default=0.5, ge=-1, le=1)
    max_residual_px: float = Field(default=1.0, ge=0, le=100)
    lighting: LightingModel = "field"
    colour: ColourMode = "auto"
    robust: bool = False
    on_unregistered: Literal["error", "fail"] = "error"
    max_regions: int = Field(default=20, ge=0, le=1000)
    heatmap: bool = False

    @field_validator("behaviors", mode="before")
    @classmethod
    def _behaviors(cls, value: Any) -> str:
        try:
            return "".join(parse_behaviors(value))
        except InputError as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, value: int) -> int:
        if value != 0 and value < 64:
            msg = f"expected 0 (full size) or at least 64 pixels, got {value}"
            raise ValueError(msg)
        return value

    def settings(self) -> DifferenceSettings:
        thr, smooth, area = PRESETS[self.preset]
        return DifferenceSettings(
            threshold=self.threshold if self.threshold is not None else thr,
            smooth=self.smooth if self.smooth is not None else smooth,
            min_area=area,
            min_area_px=self.min_area_px,
            margin_px=self.margin_px,
            behaviors=tuple(self.behaviors),
            weight=self.weight,
            var_threshold=self.var_threshold,
            edge_tolerance_px=self.edge_tolerance_px,
            contrast_tolerance=self.contrast_tolerance,
            motion_model=self.motion_model,
            min_correlation=self.min_correlation,
            max_residual_px=self.max_residual_px,
            lighting=self.lighting,
            colour=self.colour,
        )

    def params(self) -> ReferenceParams:
        return ReferenceParams(
            resolution=self.resolution,
            behaviors=tuple(self.behaviors),
            robust=self.robust,
            motion_model=self.motion_model,
            colour=self.colour,
            lighting=self.lighting,
        )


def prepare_params(options: Sequence[DifferenceOptions]) -> ReferenceParams:
    """How one recipe's references are prepared for its ``difference`` checks.

    The checks must agree on resolution, motion model, lighting and robust training
    (they share one prepared reference); the behaviours prepared are the union of
    theirs, and the chroma is trained when any of them compares colour.
    Defaults without checks. Raises ValueError saying which options differ.
    """
    if not options:
        return DifferenceOptions().params()
    params = [o.params() for o in options]
    first = params[0]
    for key in ("resolution", "motion_model", "robust", "lighting"):
        values = sorted({str(getattr(p, key)) for p in params})
        if len(values) > 1:
            msg = (
                f"difference checks of one recipe share one prepared reference: expected "
                f"one {key} for all of them, got {values}"
            )
            raise ValueError(msg)
    behaviors = tuple(b for b in BEHAVIORS if any(b in p.behaviors for p in params))
    return ReferenceParams(
        resolution=first.resolution,
        behaviors=behaviors,
        robust=first.robust,
        motion_model=first.motion_model,
        colour="auto" if any(p.colour == "auto" for p in params) else "off",
        lighting=first.lighting,
    )


def _no_reference(context: CheckContext) -> EdgedError:
    msg = (
        f"recipe {context.recipe!r} camera {context.camera!r} has no reference: "
        f"teach one with `edged teach --config FILE --recipe {context.recipe} "
        f"--camera {context.camera} IMAGE...`"
    )
    return EdgedError(msg)


def _figures(res: DifferenceResult, max_regions: int) -> dict[str, Any]:
    d = res.to_dict()
    d["regions"] = d["regions"][:max_regions]
    return d


def _heatmap(res: DifferenceResult, image: np.ndarray, threshold: float) -> np.ndarray | None:
    """The excess beyond the limits, in the inspected image's geometry, in [0, 1]."""
    if res.excess is None or res.excess_to_image2 is None:
        return None
    h, w = image.shape[:2]
    exc = res.excess.astype(np.float32) / np.float32(max(2.0 * threshold, 1.0))
    out = warp(
        exc, res.excess_to_image2, (w, h), flags=cv2.INTER_LINEAR, border=cv2.BORDER_CONSTANT
    )
    heat: np.ndarray = np.clip(out, 0.0, 1.0)
    return heat


def run_difference(
    image: np.ndarray, options: DifferenceOptions, context: CheckContext
) -> CheckOutcome:
    ref = context.reference
    if ref is None:
        raise _no_reference(context)
    if not isinstance(ref, PreparedReference):
        msg = f"difference: expected a prepared reference, got {type(ref).__name__}"
        raise EdgedError(msg)
    want = options.params()
    if ref.params.resolution != want.resolution or not set(want.behaviors) <= set(
        ref.params.behaviors
    ):
        msg = (
            f"the reference of recipe {context.recipe!r} camera {context.camera!r} was "
            f"prepared for resolution {ref.params.resolution}, behaviors "
            f"{''.join(ref.params.behaviors)!r}; the recipe asks for resolution "
            f"{want.resolution}, behaviors {''.join(want.behaviors)!r}: teach it again "
            "(or reload, which prepares it again from its stored images)"
        )
        raise EdgedError(msg)
    settings = options.settings()
    try:
        res = compare(ref, image, settings)
    except UnregisteredError as exc:
        if options.on_unregistered == "error":
            raise
        h, w = image.shape[:2]
        reg = exc.registration
        figures = {
            "count": 1,
            "score": 100.0,
            "area_px": w * h,
            "max_contrast": 0.0,
            "model": ref.kind,
            "n_references": ref.n_images,
            "compared_px": 0,
            "registration": {"ok": False, "reason": reg.reason, **reg.to_dict()},
            "regions": [],
        }
        region = Region(0, 0, w, h, "unregistered", "difference", 1.0, w * h)
        return CheckOutcome(figures=figures, regions=(region,))
    regions = tuple(
        Region(
            x=r.box2_xywh[0],
            y=r.box2_xywh[1],
            width=r.box2_xywh[2],
            height=r.box2_xywh[3],
            label="defect",
            check="difference",
            score=min(1.0, r.contrast / 100.0),
            area_px=r.area_px,
        )
        for r in res.regions[: options.max_regions]
    )
    heat = _heatmap(res, image, settings.threshold) if options.heatmap else None
    return CheckOutcome(figures=_figures(res, options.max_regions), regions=regions, heatmap=heat)


_BOX = ("x", "y", "width", "height")
# A registered frame reports its motion and photometric fit; an unregistered one
# (``on_unregistered: fail``) how far registration got.
REGISTRATION_FIGURES = (
    *("dx", "dy", "angle_deg", "scale", "ok", "correlation", "method", "gain", "offset"),
    *("model", "inliers", "matches", "iterations", "overlap", "reason", "residual_px"),
)
FIGURES: tuple[str, ...] = (
    "count",
    "score",
    "area_px",
    "max_contrast",
    "model",
    "n_references",
    "compared_px",
    "not_inspected_px",
    "lighting_spread",
    "channels",
    *(f"registration.{k}" for k in REGISTRATION_FIGURES),
    *(f"regions.*.box.{k}" for k in _BOX),
    *(f"regions.*.query_box.{k}" for k in _BOX),
    "regions.*.area_px",
    "regions.*.contrast",
    "regions.*.polarity",
)

SPEC = CheckSpec(
    name="difference",
    options=DifferenceOptions,
    run=run_difference,
    needs_reference=True,
    description="differences from the stored good reference (registered, lighting-normalised)",
    figures=FIGURES,
    reference_params=prepare_params,
)
