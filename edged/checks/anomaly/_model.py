"""Training an anomaly model from good images, and scoring new images with it.

:func:`train_anomaly` extracts cell features (:mod:`._features`) from every good
image, standardises them (each filter group weighing as one), keeps a greedy
coreset of at most ``bank_size`` of them as the memory bank (:mod:`._bank`, a
share per position class) and sets the threshold;
:func:`score_anomaly` scores each cell of a new image by the distance of its
features to the nearest bank vector of the same position class (the anomaly map:
every cell of the image, border included), the image by its highest cell, and
lists the connected cells above the threshold as regions.

Threshold: each good image is scored leave-one-out (against the bank without
the vectors it contributed, nor those of the images it is said to overlap), the
tail of those cell scores is fitted (peaks over threshold, generalised Pareto,
:func:`_threshold`),
and the threshold is the image score a good part exceeds with probability
``false_alarm``, never below the highest leave-one-out image score.
``false_alarm`` is therefore the expected share of good parts flagged, as far as
the good images taught represent the good parts and are separate parts: images
that share content (overlapping crops of one surface, several shots of one part)
find near copies of themselves unless ``overlapping`` names them, which makes
the threshold too low (measured on 30 overlapping crops of texture photos: 17-40 %
of 200 new good crops flagged at a 1 % target; told, 0-6 %).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from edged.checks._image import contract_problem, to_grey
from edged.checks.anomaly._bank import class_coreset, class_nearest_distances
from edged.checks.anomaly._features import (
    FEATURE_KINDS,
    CellFeatures,
    FeatureKind,
    anomaly_scale,
    cell_features,
    feature_weights,
)
from edged.core.errors import InputError

# 2: position classes (bank_class), the border inspected; 3: contrast features as
# log(floor + value), the smoothest spot added; 4: local binary patterns in the
# classical features (older formats are trained again)
FORMAT_VERSION = 4
KIND = "anomaly"
MIN_IMAGES = 3


@dataclass(frozen=True, slots=True)
class AnomalyParams:
    """How an anomaly model is trained (changing any of these means training again).

    features: ``"filterbank"`` (DoG + Gabor energy + local mean/std + local binary
        patterns), ``"dog"`` (the same without Gabor, faster) or ``"cnn"``
        (EfficientNet-Lite0 blocks 4 and 7 through onnxruntime, see :mod:`._cnn`;
        needs ``cell_px`` 8).
    resolution: longest side of the working size, pixels (images are shrunk to it,
        and with ``cnn`` smaller ones enlarged to it; 0 = full size).
    cell_px: side of a feature cell, working pixels (the map's resolution).
    bank_size: most feature vectors kept in the memory bank (greedy coreset).
    false_alarm: target share of good parts scored above the threshold (0..0.5).
    seed: first coreset pick (training is deterministic for a seed).
    """

    features: FeatureKind = "filterbank"
    resolution: int = 256
    cell_px: int = 8
    bank_size: int = 4096
    false_alarm: float = 0.01
    smooth_cells: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.features not in FEATURE_KINDS:
            msg = f"features: expected one of {list(FEATURE_KINDS)}, got {self.features!r}"
            raise InputError(msg)
        if self.resolution != 0 and not 64 <= self.resolution <= 4096:
            msg = f"resolution: expected 0 (full size) or 64..4096 pixels, got {self.resolution!r}"
            raise InputError(msg)
        if not 4 <= self.cell_px <= 64 or self.cell_px % 2:
            msg = f"cell_px: expected an even 4..64 working pixels, got {self.cell_px!r}"
            raise InputError(msg)
        if self.features == "cnn" and self.cell_px != 8:
            msg = f"cell_px: features cnn expect 8 working pixels, got {self.cell_px!r}"
            raise InputError(msg)
        if not 16 <= self.bank_size <= 1_000_000:
            msg = f"bank_size: expected 16..1000000 vectors, got {self.bank_size!r}"
            raise InputError(msg)
        if not 0.0 < self.false_alarm < 0.5:
            msg = f"false_alarm: expected a share between 0 and 0.5, got {self.false_alarm!r}"
            raise InputError(msg)

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": self.features,
            "resolution": self.resolution,
            "cell_px": self.cell_px,
            "bank_size": self.bank_size,
            "false_alarm": self.false_alarm,
            "smooth_cells": self.smooth_cells,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AnomalyParams:
        features = str(d["features"])
        if features not in FEATURE_KINDS:
            msg = f"features: expected one of {list(FEATURE_KINDS)}, got {features!r}"
            raise InputError(msg)
        kind: FeatureKind = (
            "dog" if features == "dog" else "cnn" if features == "cnn" else "filterbank"
        )
        return cls(
            features=kind,
            resolution=int(d["resolution"]),
            cell_px=int(d["cell_px"]),
            bank_size=int(d["bank_size"]),
            false_alarm=float(d["false_alarm"]),
            smooth_cells=float(d.get("smooth_cells", 0.0)),
            seed=int(d.get("seed", 0)),
        )


@dataclass(frozen=True, slots=True, eq=False)
class AnomalyModel:
    """A trained anomaly model (satisfies :class:`edged.checks.PreparedModel`).

    ``bank``: ``(K, D)`` float32 standardised feature vectors; ``bank_source``:
    ``(K,)`` the training image each came from; ``bank_class``: ``(K,)`` the
    position class of each (see :func:`._features.position_classes`);
    ``class_scale``: ``(n_classes,)`` the factor each class's distances are
    scaled by (:func:`_class_scales`);
    ``feature_mean`` / ``feature_std``:
    ``(D,)`` the standardisation; ``loo_scores``: ``(N,)`` each good image's
    leave-one-out score; ``threshold``: the image score above which a part is
    anomalous. ``size_wh`` is the training images' size, ``scale`` working pixels
    per image pixel, ``colour`` whether they were BGR.
    """

    params: AnomalyParams
    size_wh: tuple[int, int]
    scale: float
    colour: bool
    bank: np.ndarray
    bank_source: np.ndarray
    bank_class: np.ndarray
    class_scale: np.ndarray
    feature_mean: np.ndarray
    feature_std: np.ndarray
    loo_scores: np.ndarray
    threshold: float
    n_cells: int
    roi: np.ndarray | None = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        return KIND

    @property
    def n_images(self) -> int:
        return int(self.loo_scores.shape[0])

    def training_summary(self) -> dict[str, Any]:
        """The training manifest: what the model was built from and how it scored."""
        loo = [round(float(s), 4) for s in self.loo_scores]
        return {
            "images": self.n_images,
            "cells": self.n_cells,
            "bank_vectors": int(self.bank.shape[0]),
            "feature_dim": int(self.bank.shape[1]),
            "loo_scores": loo,
            "loo_mean": round(statistics.fmean(loo), 4),
            "loo_max": max(loo),
            "threshold": round(self.threshold, 4),
        }

    def meta(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "kind": KIND,
            "params": self.params.to_dict(),
            "size_wh": list(self.size_wh),
            "scale": self.scale,
            "colour": self.colour,
            "n_images": self.n_images,
            "threshold": self.threshold,
            "n_cells": self.n_cells,
            "training": self.training_summary(),
        }

    def arrays(self) -> dict[str, np.ndarray]:
        out = {
            "bank": self.bank,
            "bank_source": self.bank_source,
            "bank_class": self.bank_class,
            "class_scale": self.class_scale,
            "feature_mean": self.feature_mean,
            "feature_std": self.feature_std,
            "loo_scores": self.loo_scores,
        }
        if self.roi is not None:
            out["roi"] = self.roi
        return out

    @classmethod
    def from_arrays(cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> AnomalyModel:
        """Rebuild from :meth:`meta` and :meth:`arrays` (InputError when inconsistent)."""
        try:
            if int(meta["format"]) != FORMAT_VERSION or meta.get("kind") != KIND:
                msg = (
                    f"anomaly model: expected format {FORMAT_VERSION} kind {KIND!r}, got "
                    f"format {meta['format']!r} kind {meta.get('kind')!r}"
                )
                raise InputError(msg)
            bank = np.asarray(arrays["bank"], np.float32)
            mean = np.asarray(arrays["feature_mean"], np.float32)
            std = np.asarray(arrays["feature_std"], np.float32)
            source = np.asarray(arrays["bank_source"], np.int32)
            bank_class = np.asarray(arrays["bank_class"], np.int32)
            class_scale = np.asarray(arrays["class_scale"], np.float32)
            loo = np.asarray(arrays["loo_scores"], np.float32)
        except KeyError as exc:
            msg = f"anomaly model: expected field {exc.args[0]!r}, missing"
            raise InputError(msg) from exc
        if bank.ndim != 2 or mean.shape != (bank.shape[1],) or std.shape != mean.shape:
            msg = (
                f"anomaly model: expected a (K, D) bank with (D,) mean and std, got "
                f"{bank.shape}, {mean.shape}, {std.shape}"
            )
            raise InputError(msg)
        if source.shape != (bank.shape[0],) or bank_class.shape != source.shape:
            msg = (
                f"anomaly model: expected ({bank.shape[0]},) bank sources and classes, got "
                f"{source.shape}, {bank_class.shape}"
            )
            raise InputError(msg)
        roi = np.asarray(arrays["roi"], np.uint8) if "roi" in arrays else None
        return cls(
            params=AnomalyParams.from_dict(meta["params"]),
            size_wh=(int(meta["size_wh"][0]), int(meta["size_wh"][1])),
            scale=float(meta["scale"]),
            colour=bool(meta["colour"]),
            bank=bank,
            bank_source=source,
            bank_class=bank_class,
            class_scale=class_scale,
            feature_mean=mean,
            feature_std=std,
            loo_scores=loo,
            threshold=float(meta["threshold"]),
            n_cells=int(meta["n_cells"]),
            roi=roi,
        )


@dataclass(frozen=True, slots=True)
class AnomalyRegion:
    """Connected cells above the threshold: box ``(x, y, w, h)`` and area in image
    pixels, ``score`` the highest cell score inside."""

    box_xywh: tuple[int, int, int, int]
    area_px: int
    score: float

    def to_dict(self) -> dict[str, Any]:
        x, y, w, h = self.box_xywh
        return {
            "box": {"x": x, "y": y, "width": w, "height": h},
            "area_px": self.area_px,
            "score": round(self.score, 4),
        }


@dataclass(frozen=True, slots=True)
class AnomalyResult:
    """One image scored by :func:`score_anomaly`.

    ``score``: the highest cell score (higher = more anomalous); ``threshold``;
    ``anomalous``: score > threshold; ``regions``: connected cells above the
    threshold, largest first; ``cell_map``: ``(gh, gw)`` float32 cell scores
    (0 on cells not inspected: outside the ROI); ``cell_image_px``: a cell's side in image pixels.
    :meth:`anomaly_map` gives the map at the image's size.
    """

    score: float
    threshold: float
    regions: tuple[AnomalyRegion, ...]
    cell_map: np.ndarray = field(compare=False, repr=False)
    cell_image_px: float
    image_hw: tuple[int, int]
    inspected_cells: int

    @property
    def anomalous(self) -> bool:
        return self.score > self.threshold

    @property
    def area_px(self) -> int:
        return sum(r.area_px for r in self.regions)

    def anomaly_map(self) -> np.ndarray:
        """The cell scores at the image's size, ``(H, W)`` float32 (bilinear)."""
        h, w = self.image_hw
        gh, gw = self.cell_map.shape
        cw, ch = round(gw * self.cell_image_px), round(gh * self.cell_image_px)
        up = cv2.resize(self.cell_map, (max(cw, 1), max(ch, 1)), interpolation=cv2.INTER_LINEAR)
        out = np.zeros((h, w), np.float32)
        out[: min(h, ch), : min(w, cw)] = up[:h, :w]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 4),
            "threshold": round(self.threshold, 4),
            "anomalous": self.anomalous,
            "count": len(self.regions),
            "area_px": self.area_px,
            "inspected_cells": self.inspected_cells,
            "regions": [r.to_dict() for r in self.regions],
        }


def _check_images(images: Sequence[np.ndarray]) -> None:
    if len(images) < MIN_IMAGES:
        msg = (
            f"anomaly training: expected at least {MIN_IMAGES} good images "
            f"(10 or more recommended), got {len(images)}"
        )
        raise InputError(msg)
    first = images[0]
    for i, img in enumerate(images):
        problem = contract_problem(img)
        if problem is not None:
            msg = f"training image {i}: {problem}"
            raise InputError(msg)
        if img.ndim != first.ndim:
            msg = (
                f"training image {i}: expected {'BGR' if first.ndim == 3 else 'grey'} "
                f"like image 0, got {'BGR' if img.ndim == 3 else 'grey'}"
            )
            raise InputError(msg)


def _features(
    image: np.ndarray, params: AnomalyParams, scale: float, roi: np.ndarray | None
) -> CellFeatures:
    return cell_features(image, scale=scale, kind=params.features, cell_px=params.cell_px, roi=roi)


def train_anomaly(
    images: Sequence[np.ndarray],
    *,
    params: AnomalyParams | None = None,
    roi: np.ndarray | None = None,
    overlapping: Sequence[Sequence[int]] | None = None,
) -> AnomalyModel:
    """Train an anomaly model from good images.

    images: at least 3 ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR images of
        good parts, all grey or all BGR (10 or more recommended; sizes may differ,
        they are resized by the first image's working scale, :func:`anomaly_scale`).
    roi: optional ``(H, W)`` uint8 mask at the first image's size, non-zero =
        inspected.
    overlapping: optional, for each image the indices of the other images that
        show some of the same surface (overlapping crops of one large good part,
        several shots of one part). They are left out together with it when it is
        scored leave-one-out, so its score is that of a new part rather than of a
        near copy (measured on overlapping photo crops: without this the
        leave-one-out cell distances were up to 23 % below those of new good
        crops at their 98 % point, and 17-40 % of new good crops scored above a
        1 % threshold). Default: every image a separate part.
    Raises InputError when the images are unusable (the message names the image).
    """
    params = params or AnomalyParams()
    _check_images(images)
    left_out = _left_out(len(images), overlapping)
    first = images[0]
    size_wh = (int(first.shape[1]), int(first.shape[0]))
    scale = anomaly_scale(size_wh, params.resolution, params.features)
    per_image: list[np.ndarray] = []
    positions: list[np.ndarray] = []
    valids: list[np.ndarray] = []
    for i, img in enumerate(images):
        use_roi = roi if roi is not None and img.shape[:2] == roi.shape[:2] else None
        cf = _features(img, params, scale, use_roi)
        vecs = cf.features[cf.valid]
        if vecs.shape[0] == 0:
            msg = (
                f"training image {i}: expected at least one {params.cell_px}-px cell inside "
                f"the ROI at working scale {scale:.3g}, got {img.shape[1]}x{img.shape[0]} "
                f"pixels (grid {cf.grid_hw})"
            )
            raise InputError(msg)
        per_image.append(vecs)
        positions.append(cf.position[cf.valid])
        valids.append(cf.valid)
    all_vecs = np.concatenate(per_image, axis=0)
    source = np.concatenate([np.full(len(v), i, np.int32) for i, v in enumerate(per_image)])
    classes = np.concatenate(positions)
    mean = all_vecs.mean(axis=0).astype(np.float32)
    weights = feature_weights(params.features, colour=first.ndim == 3)
    std = (np.maximum(all_vecs.std(axis=0), 1e-4) / weights).astype(np.float32)
    normed = ((all_vecs - mean) / std).astype(np.float32)
    keep = class_coreset(normed, classes, size=params.bank_size, seed=params.seed)
    bank = np.ascontiguousarray(normed[keep])
    bank_source = source[keep]
    bank_class = classes[keep]
    raw = [
        class_nearest_distances(
            normed[source == i],
            positions[i],
            bank,
            bank_class,
            exclude=np.isin(bank_source, left_out[i]),
        )
        for i in range(len(per_image))
    ]
    class_scale = _class_scales(np.concatenate(raw), classes)
    loo = np.empty(len(per_image), np.float32)
    loo_cells: list[np.ndarray] = []
    for i in range(len(per_image)):
        dist = raw[i] * class_scale[positions[i]]
        cmap = _cell_map(dist, valids[i], params.smooth_cells)
        loo[i] = cmap.max()
        loo_cells.append(cmap[valids[i]])
    threshold = _threshold(loo, loo_cells, params.false_alarm)
    return AnomalyModel(
        params=params,
        size_wh=size_wh,
        scale=scale,
        colour=first.ndim == 3,
        bank=bank,
        bank_source=bank_source,
        bank_class=bank_class,
        class_scale=class_scale,
        feature_mean=mean,
        feature_std=std,
        loo_scores=loo,
        threshold=threshold,
        n_cells=int(all_vecs.shape[0]),
        roi=None if roi is None else np.where(roi > 0, 255, 0).astype(np.uint8),
    )


def _left_out(n: int, overlapping: Sequence[Sequence[int]] | None) -> list[np.ndarray]:
    """For each of ``n`` training images, the images whose bank vectors its
    leave-one-out score does not use: itself and those ``overlapping`` names
    (made symmetric: if image 3 overlaps image 5, image 5 overlaps image 3)."""
    out = [{i} for i in range(n)]
    if overlapping is not None:
        if len(overlapping) != n:
            msg = f"overlapping: expected one list per training image ({n}), got {len(overlapping)}"
            raise InputError(msg)
        for i, others in enumerate(overlapping):
            for j in others:
                if not 0 <= int(j) < n:
                    msg = f"overlapping[{i}]: expected image indices 0..{n - 1}, got {j!r}"
                    raise InputError(msg)
                out[i].add(int(j))
                out[int(j)].add(i)
    if any(len(s) == n for s in out):
        k = next(i for i, s in enumerate(out) if len(s) == n)
        msg = (
            f"overlapping[{k}]: expected at least one training image that does not "
            f"overlap image {k}, got all {n} left out"
        )
        raise InputError(msg)
    return [np.asarray(sorted(s), np.int32) for s in out]


def _class_scales(dist: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Per position class, the factor that brings the class's high leave-one-out
    cell distances (its ``1 - TAIL_SHARE`` quantile, where the threshold's tail fit
    starts) to those of all cells, ``(n_classes,)`` float32 (1 for a class with no
    cells). Border cells match their fewer, padding-marked good neighbours less
    closely; scaled, a border cell and an inside cell that are as unusual among
    their own kind score alike, and one threshold serves both."""
    n = int(classes.max()) + 1
    out = np.ones(n, np.float32)
    q = 1.0 - TAIL_SHARE
    overall = float(np.quantile(dist, q))
    for c in range(n):
        mine = dist[classes == c]
        if mine.size and overall > 0 and float(np.quantile(mine, q)) > 0:
            out[c] = overall / float(np.quantile(mine, q))
    return out


TAIL_SHARE = 0.02  # the share of leave-one-out cell scores whose tail is fitted
_MAX_SHAPE = 0.5  # the tail's shape is clamped to 0..0.5 (finite variance, PWM's range)


def tail_fit(excess: np.ndarray) -> tuple[float, float]:
    """Generalised Pareto fit of the excesses over a high threshold, ``(shape, scale)``.

    excess: ``(n,)`` non-negative values. Probability-weighted moments (Hosking and
    Wallis 1987): with ``a0`` the mean and ``a1`` the mean of the sorted values
    weighted by ``(n - 1 - i) / (n - 1)``, ``shape = 2 - a0 / (a0 - 2 a1)`` and
    ``scale = 2 a0 a1 / (a0 - 2 a1)``. The shape is clamped to ``0..0.5``: never a
    tail lighter than the exponential (whose shape is 0 and scale the mean), which
    a few excesses can suggest by chance. Fewer than 3 excesses, or a fit that fails:
    the exponential with their mean.
    """
    x = np.sort(np.asarray(excess, np.float64))
    n = int(x.size)
    mean = float(x.mean()) if n else 0.0
    if n < 3 or mean <= 0.0:
        return 0.0, mean
    a1 = float(np.dot((n - 1 - np.arange(n)) / (n - 1), x)) / n
    denominator = mean - 2.0 * a1
    if denominator <= 0.0:
        return 0.0, mean
    shape = 2.0 - mean / denominator
    if shape <= 0.0:
        return 0.0, mean
    shape = min(shape, _MAX_SHAPE)
    return shape, mean * (1.0 - shape)  # the scale that keeps the fitted mean


def _threshold(loo: np.ndarray, loo_cells: Sequence[np.ndarray], false_alarm: float) -> float:
    """The image score a good part exceeds with probability ``false_alarm``.

    Peaks over threshold on the leave-one-out *cell* scores (many more samples
    than images): above their ``1 - TAIL_SHARE`` quantile ``u`` the excesses are
    fitted as generalised Pareto (:func:`tail_fit`, shape ``xi >= 0``, scale
    ``s``), so a cell exceeds ``t > u`` with probability
    ``TAIL_SHARE * (1 + xi (t - u) / s) ** (-1 / xi)`` (``xi = 0``: the exponential
    ``TAIL_SHARE * exp(-(t - u) / s)``); an image of ``M`` cells exceeds ``t`` at
    most ``M`` times as often (union bound), which gives, with
    ``r = M * TAIL_SHARE / false_alarm``, ``t = u + s (r ** xi - 1) / xi``
    (``u + s ln r`` for ``xi = 0``). Never below the highest leave-one-out image score.

    Measured: the cell scores' tail is heavier than exponential (fitted shapes 0.0-0.2
    on textures with 12-30 training images), and the exponential set thresholds
    that flagged 0.7-7.2 % (mean 2.7 %) of the good boards of a demo-like line at a
    1 % target; the generalised Pareto 0-3.9 % (mean 1.2 %).
    """
    cells = np.concatenate([np.asarray(c, np.float64) for c in loo_cells])
    u = float(np.quantile(cells, 1.0 - TAIL_SHARE))
    shape, scale = tail_fit(cells[cells > u] - u)
    m = statistics.median(len(c) for c in loo_cells)
    r = max(m * TAIL_SHARE / false_alarm, 1.0)
    t = u + (scale * math.log(r) if shape == 0.0 else scale * (r**shape - 1.0) / shape)
    return max(t, float(loo.max()))


def score_anomaly(
    model: AnomalyModel,
    image: np.ndarray,
    *,
    threshold: float | None = None,
    min_area_px: int = 0,
    max_regions: int = 20,
) -> AnomalyResult:
    """Score ``image`` against a trained model.

    image: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR (BGR when the model was
        trained on BGR; grey is accepted for a grey model, BGR is reduced to luma).
    threshold: overrides the model's threshold (same units as the score).
    min_area_px: regions smaller than this (image pixels) are not listed.
    Raises InputError when the image breaks the contract or is too small.
    """
    problem = contract_problem(image)
    if problem is not None:
        msg = f"image: {problem}"
        raise InputError(msg)
    if model.colour and image.ndim == 2:
        msg = "image: expected BGR (the anomaly model was trained on colour images), got grey"
        raise InputError(msg)
    if not model.colour and image.ndim == 3:
        image = to_grey(image)
    roi = model.roi if model.roi is not None and model.roi.shape == image.shape[:2] else None
    cf = _features(image, model.params, model.scale, roi)
    if not cf.valid.any():
        msg = (
            f"image: expected at least one {model.params.cell_px}-px cell inside the ROI at "
            f"working scale {model.scale:.3g}, got {image.shape[1]}x{image.shape[0]} pixels"
        )
        raise InputError(msg)
    vecs = (cf.features[cf.valid] - model.feature_mean) / model.feature_std
    classes = cf.position[cf.valid]
    dist = class_nearest_distances(vecs.astype(np.float32), classes, model.bank, model.bank_class)
    dist = dist * model.class_scale[np.minimum(classes, model.class_scale.shape[0] - 1)]
    cell_map = _cell_map(dist, cf.valid, model.params.smooth_cells)
    thr = model.threshold if threshold is None else float(threshold)
    cell_image_px = model.params.cell_px / model.scale
    regions = _regions(cell_map, thr, cell_image_px, min_area_px)[:max_regions]
    return AnomalyResult(
        score=float(cell_map.max()),
        threshold=thr,
        regions=regions,
        cell_map=cell_map,
        cell_image_px=cell_image_px,
        image_hw=(int(image.shape[0]), int(image.shape[1])),
        inspected_cells=int(dist.shape[0]),
    )


def _cell_map(dist: np.ndarray, valid: np.ndarray, smooth_cells: float) -> np.ndarray:
    """Cell distances on the grid (0 where not inspected), Gaussian-smoothed over the
    inspected cells by ``smooth_cells`` (sigma in cells; 0 = raw)."""
    out = np.zeros(valid.shape, np.float32)
    out[valid] = dist
    if smooth_cells > 0:
        weight = cv2.GaussianBlur(valid.astype(np.float32), (0, 0), smooth_cells)
        blurred = cv2.GaussianBlur(out, (0, 0), smooth_cells)
        out = np.where(valid, blurred / np.maximum(weight, 1e-6), 0.0).astype(np.float32)
    return out


def _regions(
    cell_map: np.ndarray, threshold: float, cell_image_px: float, min_area_px: int
) -> tuple[AnomalyRegion, ...]:
    above = (cell_map > threshold).astype(np.uint8)
    if not above.any():
        return ()
    n, labels, stats, _ = cv2.connectedComponentsWithStats(above, connectivity=8)
    cell_area = cell_image_px * cell_image_px
    out = []
    for k in range(1, n):
        x, y, w, h, cells = (int(v) for v in stats[k])
        area = round(cells * cell_area)
        if area < min_area_px:
            continue
        x0, y0 = math.floor(x * cell_image_px), math.floor(y * cell_image_px)
        x1, y1 = math.ceil((x + w) * cell_image_px), math.ceil((y + h) * cell_image_px)
        score = float(cell_map[labels == k].max())
        out.append(AnomalyRegion((x0, y0, x1 - x0, y1 - y0), area, score))
    out.sort(key=lambda r: (-r.area_px, -r.score))
    return tuple(out)
