"""Variation model: what good parts look like, pixel by pixel, learned from N good images.

Industrial users expect more than one golden image (MVTec HALCON's variation model):
train on N registered good images, then accept each pixel of a query within
per-pixel limits::

    bright limit = mean + max(abs_threshold, var_threshold * std)
    dark limit   = mean - max(abs_threshold, var_threshold * std)

edged adds one thing: the ``abs_threshold`` term is taken around the *local* extremes
of the mean (``edge_tolerance_px``, a small dilation/erosion), so residual sub-pixel
misregistration at edges does not read as a defect even when few images were
trained. With ``edge_tolerance_px=0`` the limits are exactly HALCON's.

Training is incremental (Welford's mean and variance, images may arrive one by one,
each with a validity mask); ``robust=True`` keeps the images and uses the median and
the MAD (scaled by 1.4826) instead. A model of one image has ``std = 0``: the
single-reference difference is the same code with a zero variation.

Limits are precomputed as ``uint8`` images, so comparing a query costs one pass
(two saturating subtractions and a max): :func:`excess`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from edged.core.errors import InputError

MAD_TO_SIGMA = 1.4826
CONTRAST_RADIUS_PX = 3  # the local contrast of ``contrast_tolerance``: a 7x7 window


@dataclass(frozen=True, slots=True, eq=False)
class Limits:
    """Per-pixel acceptance limits of one channel: a pixel value ``v`` is good when
    ``dark <= v <= bright``. Both ``(H, W)`` uint8 (0 / 255 mean "no limit")."""

    dark: np.ndarray
    bright: np.ndarray


@dataclass(frozen=True, slots=True, eq=False)
class VariationModel:
    """Per-pixel statistics of one channel of N good images (working geometry).

    ``mean`` and ``std`` are ``(H, W)`` float32; ``count`` is ``(H, W)`` float32, how
    many training images covered each pixel; ``n`` is the number of images.
    """

    mean: np.ndarray
    std: np.ndarray
    count: np.ndarray
    n: int
    robust: bool = False

    @property
    def shape(self) -> tuple[int, int]:
        h, w = self.mean.shape
        return h, w

    def limits(
        self,
        *,
        abs_threshold: float,
        var_threshold: float,
        smooth_sigma: float = 0.0,
        edge_tolerance_px: int = 1,
        contrast_tolerance: float = 0.0,
        contrast_guide: np.ndarray | None = None,
    ) -> Limits:
        """Precompute the dark/bright limits.

        abs_threshold: grey levels always tolerated beyond the (local) mean.
        var_threshold: how many standard deviations are tolerated.
        smooth_sigma: Gaussian sigma the query will be smoothed with (working pixels);
            the statistics are smoothed alike (``std`` conservatively, as a smoothed
            std bounds the std of the smoothed images from above).
        edge_tolerance_px: radius of the local min/max taken around the mean (0 = off).
        contrast_tolerance: fraction of the mean's local contrast (max - min within
            ``CONTRAST_RADIUS_PX``) added to the tolerance: next to strong edges a query
            carries JPEG ringing and blur the reference does not; flat areas keep the
            bare ``abs_threshold`` (so faint hairlines on smooth surfaces stay visible).
        contrast_guide: ``(H, W)`` float32 image whose local contrast is used instead of
            the mean's (the chroma channels follow the luma's edges).
        """
        if abs_threshold < 0 or var_threshold < 0:
            msg = (
                "thresholds: expected abs_threshold >= 0 and var_threshold >= 0, "
                f"got {abs_threshold!r} and {var_threshold!r}"
            )
            raise InputError(msg)
        mean, std = self.mean, self.std
        if smooth_sigma > 0:
            k = (gaussian_ksize(smooth_sigma),) * 2
            mean = cv2.GaussianBlur(mean, k, smooth_sigma, borderType=cv2.BORDER_REPLICATE)
            if self.n > 1:
                std = cv2.GaussianBlur(std, k, smooth_sigma, borderType=cv2.BORDER_REPLICATE)
        if edge_tolerance_px > 0:
            k = cv2.getStructuringElement(
                cv2.MORPH_RECT, (2 * edge_tolerance_px + 1, 2 * edge_tolerance_px + 1)
            )
            high, low = cv2.dilate(mean, k), cv2.erode(mean, k)
        else:
            high, low = mean, mean
        tol: np.ndarray | np.float32 = np.float32(abs_threshold)
        if contrast_tolerance > 0:
            k = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * CONTRAST_RADIUS_PX + 1,) * 2)
            base = mean if contrast_guide is None else contrast_guide
            if contrast_guide is not None and smooth_sigma > 0:
                ks = (gaussian_ksize(smooth_sigma),) * 2
                base = cv2.GaussianBlur(base, ks, smooth_sigma, borderType=cv2.BORDER_REPLICATE)
            contrast = cv2.subtract(cv2.dilate(base, k), cv2.erode(base, k))
            tol = contrast * np.float32(contrast_tolerance) + np.float32(abs_threshold)
        bright = high + tol
        dark = low - tol
        if self.n > 1 and var_threshold > 0:
            spread = std * np.float32(var_threshold)
            bright = np.maximum(bright, mean + spread)
            dark = np.minimum(dark, mean - spread)
        # Queries are integers: v > bright <=> v > floor(bright); v < dark <=> v < ceil(dark).
        return Limits(
            dark=np.clip(np.ceil(dark), 0, 255).astype(np.uint8),
            bright=np.clip(np.floor(bright), 0, 255).astype(np.uint8),
        )


def gaussian_ksize(sigma: float) -> int:
    """The Gaussian kernel size edged smooths with: odd, covering +-2.5 sigma."""
    return 2 * math.ceil(2.5 * sigma) + 1


def excess(
    limits: Limits,
    image: np.ndarray,
    *,
    for_dark: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """How far each pixel lies outside its limits: ``(bright, dark)`` uint8 excesses.

    image: ``(H, W)`` uint8 channel in the model's geometry.
    for_dark: optional variant of ``image`` used for the dark test (edged passes the
        upper bound of a saturated pixel's true value here, so clipping is not a defect).
    """
    bright = cv2.subtract(image, limits.bright)
    dark = cv2.subtract(limits.dark, image if for_dark is None else for_dark)
    return bright, dark


def single(image: np.ndarray) -> VariationModel:
    """The model of one good image (``(H, W)`` uint8 or float32 channel): the image as
    the mean, ``std = 0``, a count of one everywhere — what :class:`VariationTrainer`
    gives for a single image, robust or not, without training."""
    shape = image.shape[:2]
    return VariationModel(
        mean=image.astype(np.float32),
        std=np.zeros(shape, np.float32),
        count=np.ones(shape, np.float32),
        n=1,
    )


class VariationTrainer:
    """Incremental training of a :class:`VariationModel`.

    ``shape`` is ``(H, W)`` of the working geometry; call :meth:`add` per registered,
    photometrically normalised good image, then :meth:`model`.
    """

    def __init__(self, shape: tuple[int, int], *, robust: bool = False) -> None:
        self._shape = shape
        self._robust = robust
        self._n = 0
        self._count = np.zeros(shape, np.float32)
        self._mean = np.zeros(shape, np.float32)
        self._m2 = np.zeros(shape, np.float32)
        self._kept: list[np.ndarray] = []

    @property
    def n(self) -> int:
        return self._n

    def add(self, image: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Add one good image: ``(H, W)`` uint8 or float32; ``valid`` ``(H, W)`` bool/uint8
        marks the pixels it covers (default: all)."""
        if image.shape != self._shape:
            msg = f"training image: expected shape {self._shape}, got {image.shape}"
            raise InputError(msg)
        x = image.astype(np.float32)
        if self._n == 0 and valid is None and not self._robust:
            # The first image covering everything: the mean is the image (a single
            # reference is prepared on every one-shot LTU request: keep it cheap).
            self._mean, self._count[:] = x, 1.0
            self._n = 1
            return
        v = np.ones(self._shape, np.float32) if valid is None else (valid > 0).astype(np.float32)
        self._count += v
        delta = x - self._mean
        safe = np.maximum(self._count, 1.0)
        self._mean += v * delta / safe
        self._m2 += v * delta * (x - self._mean)
        if self._robust:
            kept = x.copy()
            kept[v == 0] = np.nan
            self._kept.append(kept)
        self._n += 1

    def model(self) -> VariationModel:
        """The trained model (at least one image)."""
        if self._n == 0:
            msg = "variation model: expected at least one training image, got none"
            raise InputError(msg)
        count = self._count.copy()
        if self._robust and self._n > 2:
            stack = np.stack(self._kept)
            mean = np.nanmedian(stack, axis=0)
            mad = np.nanmedian(np.abs(stack - mean), axis=0)
            std = mad * np.float32(MAD_TO_SIGMA)
            # Pixels no image covered keep the running mean.
            mean = np.where(np.isnan(mean), self._mean, mean).astype(np.float32)
            std = np.where(np.isnan(std), 0.0, std).astype(np.float32)
        elif self._n == 1:
            mean, std = self._mean.copy(), np.zeros(self._shape, np.float32)
        else:
            mean = self._mean.copy()
            std = np.sqrt(np.maximum(self._m2, 0.0) / np.maximum(count - 1.0, 1.0))
        return VariationModel(
            mean=mean.astype(np.float32),
            std=std.astype(np.float32),
            count=count,
            n=self._n,
            robust=self._robust and self._n > 2,
        )


def train(
    images: list[np.ndarray], *, robust: bool = False, valid: list[np.ndarray] | None = None
) -> VariationModel:
    """Train a model from registered good images of one channel (``(H, W)`` uint8 each)."""
    if not images:
        msg = "variation model: expected at least one training image, got none"
        raise InputError(msg)
    trainer = VariationTrainer(images[0].shape[:2], robust=robust)
    for i, img in enumerate(images):
        trainer.add(img, None if valid is None else valid[i])
    return trainer.model()
