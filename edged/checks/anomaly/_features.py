"""Classical texture features without weights, one vector per image cell.

An image is shrunk to the working scale and cut into square cells of
``cell_px`` working pixels. Each cell gets:

- the local mean and standard deviation of its luma,
- its smoothest spot: the lowest standard deviation of any 3x3 window in it
  (:func:`smoothest_spot`; a drawn line, a drop of paint or glue, a glare is
  flatter than any spot of the texture around it),
- difference-of-Gaussians energy at scales 1-2 and 2-4 working pixels
  (mean absolute band-pass response),
- with ``kind="filterbank"``, Gabor energy (the magnitude of a quadrature pair)
  at four orientations and two wavelengths (4 and 8 working pixels),
- for BGR images, the mean of the two chroma channels of CIE Lab (colour stains),
- the shares of the cell's pixels in each of the ten rotation-invariant uniform
  local binary patterns (:func:`local_binary_patterns`; what kind of texture:
  grains, stripes, a weave, flat),

(the coarser scale by the same small filters on the half-size image), and then
the same features averaged over its 3x3 neighbourhood of cells
(context), so a vector describes a cell and its surroundings.

The contrast features (standard deviation, smoothest spot, band-pass and Gabor
energy) enter as ``log(ENERGY_FLOOR + value)``, grey levels as 0..1 and the floor
one grey level: texture energy spreads over decades (a shadow and a lit stone
differ by a factor, not by a fixed amount), and a stain that darkens a patch by
30 % scales all its energies by 0.7, which the logarithm turns into one shift
of every contrast feature (measured on the texture photos with 30 training
crops: mean image AUROC of the six benchmark surfaces 0.852 -> 0.928 for
both changes together, 0.900 with sensor noise of 2 grey levels added to every
image; see docs/benchmarks.md). The local binary patterns then found the patches
of foreign texture that energies miss (a weave or a grain among stones has the
stones' contrast but not their patterns): ``filterbank`` 0.928 -> 0.955 (three
other draws of the benchmark 0.951-0.956), ``dog`` 0.912 -> 0.948.

The whole image is inspected. Cells whose filter support or neighbourhood
reaches past the image border see reflected padding, which makes their
responses differ from the inside of the texture (measured: such cells dominated
the scores when compared with inside cells). Each cell therefore gets a
*position class* (:func:`position_classes`): its distance to the nearest border
in cells, clipped at the band of :func:`border_cells` cells where padding
reaches. A cell is only compared with good cells of the same
class, so a border cell is judged against good border cells that saw the same
padding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Literal

import cv2
import numpy as np

FeatureKind = Literal["filterbank", "dog", "cnn"]
FEATURE_KINDS: tuple[FeatureKind, ...] = ("filterbank", "dog", "cnn")
_CNN_DIM = 40 + 80  # EfficientNet-Lite0 blocks 4 and 7 (see _cnn)
_CNN_REACH_PX = 16  # how far the network's padding reaches in (its position rings)

# Filters run on two pyramid levels (the working image and its half): the same
# small kernels see structures of 1-4 and 2-8 working pixels.
_LEVELS = 2
_DOG_SIGMA = 1.0  # paired with twice itself
_GABOR_WAVELENGTH = 4.0
_GABOR_ANGLES = (0.0, math.pi / 4, math.pi / 2, 3 * math.pi / 4)
ENERGY_FLOOR = 1.0 / 255.0  # one grey level: log(floor + contrast) of the contrast features
_SPOT_PX = 3  # the window of the smoothest spot, working pixels
LBP_CODES = 10  # rotation-invariant uniform patterns of 8 neighbours: 0..8 ones, 9 = other
# The patterns weigh as 1.5 filter groups (measured on the benchmark's four draws:
# mean image AUROC 0.944 / 0.953 / 0.954 at weights 1 / 1.5 / 2).
_LBP_WEIGHT = 1.5


@dataclass(frozen=True, slots=True)
class CellFeatures:
    """Feature vectors of an image's cells.

    ``features``: ``(gh, gw, D)`` float32; ``valid``: ``(gh, gw)`` bool, False for
    cells outside the ROI; ``position``: ``(gh, gw)`` int32 position classes
    (:func:`position_classes`); ``cell_px``: the cell side in working pixels;
    ``scale``: working pixels per image pixel.
    """

    features: np.ndarray
    valid: np.ndarray
    position: np.ndarray
    cell_px: int
    scale: float

    @property
    def grid_hw(self) -> tuple[int, int]:
        return int(self.valid.shape[0]), int(self.valid.shape[1])


def feature_dim(kind: FeatureKind, *, colour: bool) -> int:
    """Length of one cell's vector for ``kind`` (cell and context halves)."""
    if kind == "cnn":
        return 2 * _CNN_DIM
    per_level = 1 + (len(_GABOR_ANGLES) if kind == "filterbank" else 0)
    n = 3 + _LEVELS * per_level + (2 if colour else 0) + LBP_CODES
    return 2 * n


def feature_weights(kind: FeatureKind, *, colour: bool) -> np.ndarray:
    """Weights of the standardised features, ``(feature_dim,)`` float32: each filter
    group counts as one, so the four Gabor orientations of a level weigh
    ``1 / sqrt(4)`` each (otherwise orientation energy would outvote the local
    mean, contrast, smoothest spot and band-pass energy eight to five), and the
    ten local binary patterns together as 1.5 groups."""
    n = feature_dim(kind, colour=colour) // 2
    if kind == "cnn":
        return np.ones(2 * n, np.float32)
    lbp = [_LBP_WEIGHT / math.sqrt(LBP_CODES)] * LBP_CODES
    if kind == "dog":
        return np.asarray(([1.0] * (n - LBP_CODES) + lbp) * 2, np.float32)
    gabor = [1.0 / math.sqrt(len(_GABOR_ANGLES))] * len(_GABOR_ANGLES)
    half = [1.0, 1.0, 1.0] + ([1.0, *gabor] * _LEVELS) + ([1.0, 1.0] if colour else []) + lbp
    assert len(half) == n
    return np.asarray(half * 2, np.float32)


def support_px(kind: FeatureKind) -> int:
    """How far (working pixels) a cell's filter responses reach beyond it: two
    sigmas of the widest filter, on the coarsest level (``cnn``: a fixed band, as
    every receptive field of the network reaches the border)."""
    if kind == "cnn":
        return _CNN_REACH_PX
    sigma = 2.0 * _DOG_SIGMA
    if kind == "filterbank":
        sigma = max(sigma, _gabor_sigma(_GABOR_WAVELENGTH))
    return math.ceil(2.0 * sigma * 2 ** (_LEVELS - 1))


def border_cells(kind: FeatureKind, cell_px: int) -> int:
    """Width of the band along each side whose cells see the border padding: the
    cells the filters' support reaches, plus one for the 3x3 context."""
    return math.ceil(support_px(kind) / cell_px) + 1


def position_classes(grid_hw: tuple[int, int], band: int) -> np.ndarray:
    """Position class of every cell of a ``grid_hw`` grid, ``(gh, gw)`` int32: its
    distance in cells to the nearest image border, clipped at ``band`` (``0..band``;
    ``band`` = not reached by the padding, the inside of the image). Rings rather
    than per-axis classes: every side's cells pool into one class, so even few
    training images give each class many good vectors (measured: per-axis classes,
    9 instead of 3, raised false alarms with 10 training images).
    """
    gh, gw = grid_hw
    dy = np.minimum(np.arange(gh), np.arange(gh)[::-1])
    dx = np.minimum(np.arange(gw), np.arange(gw)[::-1])
    out: np.ndarray = np.minimum(np.minimum(dy[:, None], dx[None, :]), band).astype(np.int32)
    return out


def _gabor_sigma(wavelength: float) -> float:
    return 0.5 * wavelength


@cache
def _gabor_pair(wavelength: float, angle: float) -> tuple[np.ndarray, np.ndarray]:
    sigma = _gabor_sigma(wavelength)
    half = math.ceil(2.0 * sigma)
    size = (2 * half + 1, 2 * half + 1)
    even = cv2.getGaborKernel(size, sigma, angle, wavelength, 1.0, 0.0, ktype=cv2.CV_32F)
    odd = cv2.getGaborKernel(size, sigma, angle, wavelength, 1.0, math.pi / 2, ktype=cv2.CV_32F)
    even -= even.mean()  # no response to flat grey
    for k in (even, odd):
        k /= np.abs(k).sum()
    return even, odd


def smoothest_spot(grey: np.ndarray, grid_hw: tuple[int, int], cell_px: int) -> np.ndarray:
    """Per cell, the lowest standard deviation of a 3x3 window centred in it,
    ``(gh, gw)`` float32 (``grey``: ``(h, w)`` float32; windows at the image edge
    see reflected pixels)."""
    k = (_SPOT_PX, _SPOT_PX)
    border = cv2.BORDER_REFLECT_101
    mean = cv2.blur(grey, k, borderType=border)
    var = cv2.blur(grey * grey, k, borderType=border) - mean * mean
    gh, gw = grid_hw
    cells = var[: gh * cell_px, : gw * cell_px].reshape(gh, cell_px, gw, cell_px)
    out: np.ndarray = np.sqrt(np.maximum(cells.min(axis=(1, 3)), 0.0)).astype(np.float32)
    return out


# The 8 neighbours at radius 1, in order around the centre (dy, dx).
_NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))


def binary_pattern_codes(grey: np.ndarray) -> np.ndarray:
    """Rotation-invariant uniform local binary pattern of every pixel (Ojala et al.
    2002, LBP riu2 with 8 neighbours at radius 1), ``(h, w)`` uint8 in ``0..9``.

    grey: ``(h, w)`` float32 or uint8. A neighbour is *on* when it is at least as
    bright as the centre. A pattern whose ring of 8 neighbours switches between on
    and off at most twice (a spot, an edge, a corner, a line end, flat) gets the
    number of neighbours on, ``0..8``; every other pattern gets 9. Pixels at the
    image edge see reflected neighbours.
    """
    h, w = grey.shape
    padded = cv2.copyMakeBorder(grey, 1, 1, 1, 1, cv2.BORDER_REFLECT_101)
    on = [padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] >= grey for dy, dx in _NEIGHBOURS]
    ones = np.zeros((h, w), np.uint8)
    switches = np.zeros((h, w), np.uint8)
    for k, bit in enumerate(on):
        ones += bit
        switches += bit != on[(k + 1) % len(on)]
    out: np.ndarray = np.where(switches <= 2, ones, np.uint8(LBP_CODES - 1)).astype(np.uint8)
    return out


def local_binary_patterns(grey: np.ndarray, grid_hw: tuple[int, int], cell_px: int) -> np.ndarray:
    """Per cell, the share of its pixels with each local binary pattern
    (:func:`binary_pattern_codes`), ``(gh, gw, 10)`` float32, each cell summing to 1.

    grey: ``(h, w)`` float32 or uint8; the cells are the ``cell_px`` squares from the
    top left (a partial row or column of cells at the far edges is left out).
    """
    gh, gw = grid_hw
    codes = binary_pattern_codes(grey)[: gh * cell_px, : gw * cell_px]
    cell = (np.arange(gh * cell_px) // cell_px)[:, None] * gw + (
        np.arange(gw * cell_px) // cell_px
    )[None, :]
    counts = np.bincount((cell * LBP_CODES + codes).ravel(), minlength=gh * gw * LBP_CODES)
    out: np.ndarray = (counts.reshape(gh, gw, LBP_CODES) / np.float32(cell_px * cell_px)).astype(
        np.float32
    )
    return out


def _pool(planes: list[np.ndarray], grid_hw: tuple[int, int], cell_px: int) -> np.ndarray:
    """Cell means of each ``(h, w)`` plane -> ``(gh, gw, len(planes))`` float32."""
    gh, gw = grid_hw
    stack = np.stack([p[: gh * cell_px, : gw * cell_px] for p in planes], axis=-1)
    pooled = stack.reshape(gh, cell_px, gw, cell_px, len(planes)).mean(axis=(1, 3))
    out: np.ndarray = pooled.astype(np.float32)
    return out


def _responses(grey: np.ndarray, kind: FeatureKind) -> list[np.ndarray]:
    """Band-pass energy planes of one pyramid level (same size as ``grey``)."""
    border = cv2.BORDER_REFLECT_101
    fine = cv2.GaussianBlur(grey, (0, 0), _DOG_SIGMA, borderType=border)
    coarse = cv2.GaussianBlur(grey, (0, 0), 2.0 * _DOG_SIGMA, borderType=border)
    planes = [cv2.absdiff(fine, coarse)]
    if kind == "filterbank":
        for angle in _GABOR_ANGLES:
            even, odd = _gabor_pair(_GABOR_WAVELENGTH, angle)
            re = cv2.filter2D(grey, cv2.CV_32F, even, borderType=border)
            im = cv2.filter2D(grey, cv2.CV_32F, odd, borderType=border)
            planes.append(cv2.magnitude(re, im))
    return planes


def working_image(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` resized by ``scale``: area-shrunk below 1, unchanged at 1, enlarged
    bilinearly above 1 (``cnn`` features on images smaller than the working size)."""
    if scale == 1.0:
        return image
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interpolation)


def anomaly_scale(size_wh: tuple[int, int], resolution: int, kind: FeatureKind) -> float:
    """Working pixels per image pixel for ``kind``: the longest side brought to
    ``resolution`` (0 = full size). The classical features never enlarge (measured:
    no gain); ``cnn`` also enlarges a smaller image to it, so the network sees
    textures nearer the scale of its ImageNet training (measured on 128-px texture
    photos at 256: mean image AUROC 0.65 -> 0.79; filterbank 0.71 either way)."""
    longest = max(size_wh)
    if resolution <= 0 or (longest <= resolution and kind != "cnn"):
        return 1.0
    return resolution / longest


def cell_features(
    image: np.ndarray,
    *,
    scale: float,
    kind: FeatureKind = "filterbank",
    cell_px: int = 8,
    roi: np.ndarray | None = None,
) -> CellFeatures:
    """Feature vectors of every cell of ``image`` at working scale ``scale``.

    image: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR (colour adds chroma).
    scale: working pixels per image pixel (see :func:`anomaly_scale`).
    roi: optional ``(H, W)`` mask, non-zero = inspected; cells not wholly inside
        are invalid.
    """
    if cell_px % 2:
        msg = f"cell_px: expected an even number of working pixels, got {cell_px}"
        raise ValueError(msg)
    small = working_image(image, scale)
    if small.ndim == 3:
        lab = cv2.cvtColor(small, cv2.COLOR_BGR2LAB)
        grey = lab[..., 0].astype(np.float32) / np.float32(255.0)
    else:
        lab = None
        grey = small.astype(np.float32) / np.float32(255.0)
    h, w = grey.shape
    grid_hw = (h // cell_px, w // cell_px)
    if kind == "cnn":
        from edged.checks.anomaly._cnn import CELL_PX, cnn_planes

        if cell_px != CELL_PX:
            msg = f"cell_px: features cnn expect {CELL_PX} working pixels, got {cell_px}"
            raise ValueError(msg)
        return _finish(cnn_planes(small, grid_hw), kind, cell_px, scale, roi)
    centred = grey - np.float32(0.5)  # smaller squares: less float32 cancellation in the std
    pooled_levels = [_pool([grey, centred * centred], grid_hw, cell_px)]
    level = grey
    for k in range(_LEVELS):
        if k:
            level = cv2.resize(
                level, (level.shape[1] // 2, level.shape[0] // 2), interpolation=cv2.INTER_AREA
            )
        planes = _responses(level, kind)
        pooled_levels.append(_pool(planes, grid_hw, cell_px >> k))
    if lab is not None:
        chroma = [lab[..., c].astype(np.float32) / np.float32(255.0) for c in (1, 2)]
        pooled_levels.append(_pool(chroma, grid_hw, cell_px))
    pooled_levels.insert(1, smoothest_spot(grey, grid_hw, cell_px)[..., None])
    pooled = np.concatenate(pooled_levels, axis=-1)
    mean, mean_sq = pooled[..., 0] - np.float32(0.5), pooled[..., 1]
    pooled[..., 1] = np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))
    # the contrast features: std, smoothest spot, band-pass and Gabor energy
    contrast = pooled[..., 1 : pooled.shape[-1] - (2 if lab is not None else 0)]
    np.log(contrast + np.float32(ENERGY_FLOOR), out=contrast)
    pooled = np.concatenate([pooled, local_binary_patterns(grey, grid_hw, cell_px)], axis=-1)
    return _finish(pooled, kind, cell_px, scale, roi)


def _box3(pooled: np.ndarray) -> np.ndarray:
    """3x3 mean of each cell's neighbourhood, edge cells replicated, ``(gh, gw, D)``
    float32 (NumPy: OpenCV's filters take at most 128 channels)."""
    gh, gw = int(pooled.shape[0]), int(pooled.shape[1])
    if gh == 0 or gw == 0:  # smaller than one cell
        return pooled.copy()
    padded = np.pad(pooled, ((1, 1), (1, 1), (0, 0)), mode="edge")
    rows = padded[:-2] + padded[1:-1] + padded[2:]
    out: np.ndarray = ((rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]) / np.float32(9.0)).astype(
        np.float32
    )
    return out


def _finish(
    pooled: np.ndarray, kind: FeatureKind, cell_px: int, scale: float, roi: np.ndarray | None
) -> CellFeatures:
    """Add the 3x3 context to the cell features, classify the cells' positions and
    mark the inspected cells."""
    grid_hw = (int(pooled.shape[0]), int(pooled.shape[1]))
    context = _box3(pooled)
    features = np.concatenate([pooled, context], axis=-1)
    valid = np.ones(grid_hw, dtype=bool)
    position = position_classes(grid_hw, border_cells(kind, cell_px))
    if roi is not None:
        small_roi = working_image(np.where(roi > 0, 255, 0).astype(np.uint8), scale)
        inside = _pool([small_roi.astype(np.float32)], grid_hw, cell_px)[..., 0] >= 254.5
        valid &= inside
    return CellFeatures(
        features=features, valid=valid, position=position, cell_px=cell_px, scale=scale
    )
