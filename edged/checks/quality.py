"""imageQuality: is this image usable — exposure, sharpness, noise.

All figures come from the luma (ITU-R BT.601, OpenCV ``BGR2GRAY``) at full
resolution; nothing is subsampled, because sharpness and noise live at the pixel
scale. Definitions (``L`` is the 8-bit luma, borders excluded from the filters):

brightness
    ``under_per`` / ``over_per``: percent of pixels with ``L <= u`` / ``L >= 255 - u``
    where ``u = floor(tolerance * 255)`` (``tolerance = 0``: only 0 and 255 count).
    ``l_mean``, ``l_std``: mean and standard deviation of ``L`` in grey levels.
    ``l_hist``: pixel counts in ``bins`` equal bins over 0..255.
    ``under_mask`` / ``over_mask``: those pixels as a 1-bit PNG (base64), only when
    ``masks=True`` (else null).
sharpness
    ``val``: variance of the Laplacian (kernel ``[[0,1,0],[1,-4,1],[0,1,0]]``), grey
    levels². ``sml``: the sum-modified Laplacian ``|∂²L/∂x²| + |∂²L/∂y²|`` (second
    differences ``[1,-2,1]``) averaged per pixel, so it does not grow with the image
    size; grey levels. Normalised to [0, 1) by a half-saturation curve,
    ``val_norm = val / (val + val_half)`` and ``sml_norm = sml / (sml + sml_half)``:
    a value of 0.5 means "as sharp as the reference"; the defaults ``val_half = 100``
    and ``sml_half = 8`` put in-focus natural images at 0.6–0.95 and a 1-pixel
    Gaussian defocus at 0.2–0.45. Both measures also rise with noise.
noise
    Immerkær's fast estimate of the noise standard deviation in grey levels:
    ``sigma = sqrt(pi/2) / (6 (W-2) (H-2)) * sum |L * N|`` with
    ``N = [[1,-2,1],[-2,4,-2],[1,-2,1]]`` (J. Immerkær, "Fast Noise Variance
    Estimation", CVIU 64(2), 1996). ``N`` cancels planes and ramps (illumination
    gradients do not count as noise) but not fine texture and edges, which raise the
    estimate; saturated pixels lower it.
encoding
    ``"OK"``, or why the image cannot be judged (wrong type or shape, empty, every
    pixel the same value). When it is not usable as an array, every figure is null.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from pydantic import AliasChoices, Field

from edged.checks._base import CheckOptions, LtuReply, function_spec
from edged.checks._hist import PairHistogram
from edged.checks._image import contract_problem, to_grey
from edged.checks._png import image_object, mask_png_base64

_D2X = np.array([[1, -2, 1]], np.float32)
_D2Y = _D2X.T.copy()
_N = _D2Y @ _D2X  # Immerkær's [[1,-2,1],[-2,4,-2],[1,-2,1]]
_BAND_ROWS = 128


@dataclass(frozen=True, slots=True)
class Brightness:
    """Exposure figures of the luma (see the module doc)."""

    under_per: float
    over_per: float
    l_mean: float
    l_std: float
    l_hist: tuple[int, ...]
    under_mask: np.ndarray | None = field(default=None, compare=False, repr=False)
    over_mask: np.ndarray | None = field(default=None, compare=False, repr=False)

    def to_dict(self, *, images: bool = True) -> dict[str, Any]:
        def png(mask: np.ndarray | None) -> str | None:
            return mask_png_base64(mask) if images and mask is not None else None

        return {
            "under_per": round(self.under_per, 4),
            "under_mask": png(self.under_mask),
            "over_per": round(self.over_per, 4),
            "over_mask": png(self.over_mask),
            "l_mean": round(self.l_mean, 4),
            "l_std": round(self.l_std, 4),
            "l_hist": list(self.l_hist),
        }


@dataclass(frozen=True, slots=True)
class Sharpness:
    """Focus figures of the luma (see the module doc)."""

    val: float
    sml: float
    val_norm: float
    sml_norm: float

    def to_dict(self) -> dict[str, float]:
        return {
            "val": round(self.val, 4),
            "sml": round(self.sml, 4),
            "val_norm": round(self.val_norm, 4),
            "sml_norm": round(self.sml_norm, 4),
        }


@dataclass(frozen=True, slots=True)
class ImageQuality:
    """imageQuality's answer. ``brightness``, ``sharpness`` and ``noise`` are None only
    when ``encoding`` says the input is not an image at all."""

    encoding: str
    brightness: Brightness | None
    sharpness: Sharpness | None
    noise: float | None
    resolution_wh: tuple[int, int] | None

    def to_dict(self, *, images: bool = True) -> dict[str, Any]:
        """The LTU JSON shape; ``images=False`` leaves the mask PNGs null."""
        return {
            "encoding": self.encoding,
            "brightness": self.brightness.to_dict(images=images) if self.brightness else None,
            "sharpness": self.sharpness.to_dict() if self.sharpness else None,
            "noise": round(self.noise, 4) if self.noise is not None else None,
            "resolution_wh": list(self.resolution_wh) if self.resolution_wh else None,
        }


def image_quality(
    image: np.ndarray,
    *,
    bins: int = 32,
    tolerance: float = 0.02,
    masks: bool = False,
    val_half: float = 100.0,
    sml_half: float = 8.0,
) -> ImageQuality:
    """Exposure, sharpness and noise of ``image``.

    image: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR. Anything else is not
        an error: ``encoding`` says what is wrong and the figures are null.
    bins: luma histogram bins, 1..256.
    tolerance: fraction of the luma range counted as under/over exposed, 0..0.5.
    masks: also return the under/over-exposed pixels as masks.
    val_half, sml_half: the ``val`` / ``sml`` that normalise to 0.5 (> 0).

    Raises ValueError for options out of range.
    """
    if not 1 <= bins <= 256:
        msg = f"bins: expected 1..256, got {bins!r}"
        raise ValueError(msg)
    if not 0.0 <= tolerance <= 0.5:
        msg = f"tolerance: expected a fraction in 0..0.5, got {tolerance!r}"
        raise ValueError(msg)
    if not (val_half > 0 and sml_half > 0):
        msg = f"val_half, sml_half: expected > 0, got {val_half!r}, {sml_half!r}"
        raise ValueError(msg)
    problem = contract_problem(image)
    if problem is not None:
        return ImageQuality(f"unusable: {problem}", None, None, None, None)
    h, w = image.shape[:2]
    sums = _scan(image, tolerance=tolerance, masks=masks)
    brightness = _brightness(sums, bins=bins, tolerance=tolerance)
    sharpness, noise = _sharpness_noise(sums, val_half=val_half, sml_half=sml_half)
    encoding = "OK"
    if brightness.l_std == 0.0:
        encoding = f"unusable: constant image (every pixel is {round(brightness.l_mean)})"
    return ImageQuality(encoding, brightness, sharpness, noise, (w, h))


@dataclass(slots=True)
class _Sums:
    """What one pass over the image accumulates."""

    hist: np.ndarray  # 256 luma counts, float64
    interior_px: int = 0  # pixels with a full 3×3 neighbourhood
    lap_sum: float = 0.0
    lap_sq: float = 0.0
    abs_sum: float = 0.0
    n_abs: float = 0.0
    under_mask: np.ndarray | None = None
    over_mask: np.ndarray | None = None


def _scan(image: np.ndarray, *, tolerance: float, masks: bool) -> _Sums:
    """One pass in bands of rows: luma, its histogram, the masks when asked, and the
    filter sums. Bands (with one row of context each side) and reused buffers keep
    the work in cache; whole-frame temporaries cost ~2-3x the time on 5 Mpx.

    Second differences along x and y (int16 holds [-510, 510]): their sum is the
    4-neighbour Laplacian, their absolute sum the modified Laplacian; Immerkær's N
    (range [-2040, 2040]) is the y-difference of the x-difference. Only interior
    pixels (a full 3×3 neighbourhood) enter the filter sums.
    """
    h, w = image.shape[:2]
    sums = _Sums(hist=np.zeros(256, np.float64))
    u = math.floor(tolerance * 255 + 1e-9)
    if masks:
        sums.under_mask = np.empty((h, w), np.uint8)
        sums.over_mask = np.empty((h, w), np.uint8)
    pairs = PairHistogram(sums.hist)
    band = _BAND_ROWS
    d2x = np.empty((band + 2, w), np.int16)
    d2y = np.empty_like(d2x)
    nk = np.empty_like(d2x)
    lap = np.empty((band, max(w - 2, 1)), np.int16)
    for y0 in range(0, h, band):
        y1 = min(y0 + band, h)
        a, b = max(0, y0 - 1), min(h, y1 + 1)
        grey = to_grey(image[a:b])
        core = grey[y0 - a : y1 - a]
        pairs.add(core)
        if sums.under_mask is not None and sums.over_mask is not None:
            cv2.threshold(core, u, 1, cv2.THRESH_BINARY_INV, dst=sums.under_mask[y0:y1])
            cv2.threshold(core, 254 - u, 1, cv2.THRESH_BINARY, dst=sums.over_mask[y0:y1])
        r0, r1 = max(y0, 1), min(y1, h - 1)  # interior rows of this band
        if w < 3 or r1 <= r0:
            continue
        rows = r1 - r0
        src = grey[r0 - 1 - a : r1 + 1 - a]
        cv2.filter2D(src, cv2.CV_16S, _D2X, dst=d2x[: rows + 2])
        cv2.filter2D(src, cv2.CV_16S, _D2Y, dst=d2y[: rows + 2])
        cv2.filter2D(src, cv2.CV_16S, _N, dst=nk[: rows + 2])
        dx, dy = d2x[1 : rows + 1, 1:-1], d2y[1 : rows + 1, 1:-1]
        lp = cv2.add(dx, dy, dst=lap[:rows])
        sums.interior_px += lp.size
        sums.lap_sum += cv2.sumElems(lp)[0]
        sums.lap_sq += cv2.norm(lp, cv2.NORM_L2SQR)
        sums.abs_sum += cv2.norm(dx, cv2.NORM_L1) + cv2.norm(dy, cv2.NORM_L1)
        sums.n_abs += cv2.norm(nk[1 : rows + 1, 1:-1], cv2.NORM_L1)
    pairs.flush()
    return sums


def _brightness(sums: _Sums, *, bins: int, tolerance: float) -> Brightness:
    hist = sums.hist
    n = float(hist.sum())
    levels = np.arange(256, dtype=np.float64)
    mean = float((hist * levels).sum() / n)
    var = float((hist * (levels - mean) ** 2).sum() / n)
    u = math.floor(tolerance * 255 + 1e-9)
    under = float(hist[: u + 1].sum())
    over = float(hist[255 - u :].sum())
    starts = np.ceil(np.arange(bins) * 256 / bins).astype(np.intp)
    l_hist = tuple(int(c) for c in np.add.reduceat(hist, starts))
    return Brightness(
        under_per=100.0 * under / n,
        over_per=100.0 * over / n,
        l_mean=mean,
        l_std=math.sqrt(var),
        l_hist=l_hist,
        under_mask=sums.under_mask,
        over_mask=sums.over_mask,
    )


def _sharpness_noise(sums: _Sums, *, val_half: float, sml_half: float) -> tuple[Sharpness, float]:
    n = float(sums.interior_px)
    if n == 0:
        return Sharpness(0.0, 0.0, 0.0, 0.0), 0.0
    val = max(0.0, sums.lap_sq / n - (sums.lap_sum / n) ** 2)
    sml = sums.abs_sum / n
    noise = math.sqrt(math.pi / 2.0) * sums.n_abs / (6.0 * n)
    sharp = Sharpness(val, sml, val / (val + val_half), sml / (sml + sml_half))
    return sharp, noise


class QualityOptions(CheckOptions):
    """imageQuality (:func:`image_quality`)."""

    bins: int = Field(default=32, ge=1, le=256, description="luma histogram bins")
    tolerance: float = Field(
        default=0.02, ge=0.0, le=0.5, description="fraction of the range counted as under/over"
    )
    masks: bool = Field(default=False, description="return under/over-exposure masks (PNG)")
    val_half: float = Field(default=100.0, gt=0, description="val that normalises to 0.5")
    sml_half: float = Field(default=8.0, gt=0, description="sml that normalises to 0.5")


class LtuQualityOptions(CheckOptions):
    """imageQuality over LTU: ``tolerance`` (or the document's ``tolerence``) in
    percent of the luma range, as the document says; masks returned by default."""

    bins: int = Field(default=32, ge=1, le=256, description="luma histogram bins")
    tolerance: float = Field(
        default=2.0,
        ge=0.0,
        le=50.0,
        validation_alias=AliasChoices("tolerance", "tolerence"),
        description="percent of the luma range counted as under/over exposed",
    )
    masks: bool = Field(default=True, description="return under/over-exposure masks (PNG)")
    val_half: float = Field(default=100.0, gt=0, description="val that normalises to 0.5")
    sml_half: float = Field(default=8.0, gt=0, description="sml that normalises to 0.5")

    def kwargs(self) -> dict[str, Any]:
        return {**super().kwargs(), "tolerance": self.tolerance / 100.0}


def l_hist_bytes(counts: tuple[int, ...]) -> str:
    """The document's ``l_hist``: base64 of one byte per bin, the counts scaled so the
    fullest bin is 255."""
    top = max(max(counts), 1)
    return base64.b64encode(bytes(round(255 * c / top) for c in counts)).decode("ascii")


def ltu_reply(result: ImageQuality, _: object) -> LtuReply:
    """imageQuality as the LTU document shapes it: masks as image objects, ``l_hist``
    a base64 string (edged's counts stay as ``l_hist_counts``), ``noise`` a string
    (edged's estimate stays as the number ``noise_sigma``), ``details.name``
    "quality" and ``details.info.description``."""
    body = result.to_dict()
    b = body["brightness"]
    if b is not None and result.brightness is not None:
        b["under_mask"] = image_object(b["under_mask"])
        b["over_mask"] = image_object(b["over_mask"])
        b["l_hist_counts"] = b["l_hist"]
        b["l_hist"] = l_hist_bytes(result.brightness.l_hist)
    sigma = body["noise"]
    body["noise_sigma"] = sigma
    body["noise"] = "" if sigma is None else f"{sigma:.4f}"
    description = "" if result.encoding == "OK" else result.encoding
    return LtuReply(body, name="quality", info={"description": description})


SPEC = function_spec(
    "quality",
    image_quality,
    QualityOptions,
    figures=(
        "encoding",
        *(
            f"brightness.{k}"
            for k in ("under_per", "under_mask", "over_per", "over_mask", "l_mean", "l_std")
        ),
        "brightness.l_hist.*",
        *(f"sharpness.{k}" for k in ("val", "sml", "val_norm", "sml_norm")),
        "noise",
        "resolution_wh.*",
    ),
    to_figures=lambda result, options: result.to_dict(images=options.masks),
    ltu=("imageQuality", LtuQualityOptions, "Exposure (under/over), sharpness and noise figures"),
    to_ltu=ltu_reply,
    description="exposure, sharpness and noise",
)
