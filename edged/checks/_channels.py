"""Colour spaces and channels, as the object-mask and contour checks name them.

``color_space`` is one of ``RGB, G, HSV, XYZ, YRB, LAB, LUV, YUV, HLS`` (LTU's
names; ``G`` is grey, ``YRB`` is YCrCb). ``channel`` is an index (0, 1, 2 — or 0
only for ``G``), a channel name from the table below (case-insensitive), or
``"auto"``: the channel whose histogram separates best into two classes (largest
Otsu between-class variance ratio).

==========  ==========================  =====================================
space       channel names (index order) OpenCV conversion from BGR, 8-bit
==========  ==========================  =====================================
RGB         R, G, B                     channels reordered
G           G (also GREY, GRAY, L)      COLOR_BGR2GRAY (BT.601 luma)
HSV         H, S, V                     COLOR_BGR2HSV (H in 0..179)
XYZ         X, Y, Z                     COLOR_BGR2XYZ
YRB         Y, CR, CB (also R, B)       COLOR_BGR2YCrCb
LAB         L, A, B                     COLOR_BGR2LAB
LUV         L, U, V                     COLOR_BGR2LUV
YUV         Y, U, V                     COLOR_BGR2YUV
HLS         H, L, S                     COLOR_BGR2HLS (H in 0..179)
==========  ==========================  =====================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from edged.checks._hist import hist256
from edged.checks._image import to_bgr, to_grey

ColorSpace = Literal["RGB", "G", "HSV", "XYZ", "YRB", "LAB", "LUV", "YUV", "HLS"]
COLOR_SPACES: tuple[ColorSpace, ...] = (
    "RGB", "G", "HSV", "XYZ", "YRB", "LAB", "LUV", "YUV", "HLS",
)  # fmt: skip

# space -> (names in index order, aliases -> index)
_NAMES: dict[str, tuple[tuple[str, ...], dict[str, int]]] = {
    "RGB": (("R", "G", "B"), {}),
    "G": (("G",), {"GREY": 0, "GRAY": 0, "L": 0}),
    "HSV": (("H", "S", "V"), {}),
    "XYZ": (("X", "Y", "Z"), {}),
    "YRB": (("Y", "CR", "CB"), {"R": 1, "B": 2}),
    "LAB": (("L", "A", "B"), {}),
    "LUV": (("L", "U", "V"), {}),
    "YUV": (("Y", "U", "V"), {}),
    "HLS": (("H", "L", "S"), {}),
}
_CODES: dict[str, int] = {
    "HSV": cv2.COLOR_BGR2HSV,
    "XYZ": cv2.COLOR_BGR2XYZ,
    "YRB": cv2.COLOR_BGR2YCrCb,
    "LAB": cv2.COLOR_BGR2LAB,
    "LUV": cv2.COLOR_BGR2LUV,
    "YUV": cv2.COLOR_BGR2YUV,
    "HLS": cv2.COLOR_BGR2HLS,
}
# Channels that are angles (OpenCV 8-bit hue is 0..179 and wraps around).
HUE_PERIOD = 180


def channel_names(color_space: str) -> tuple[str, ...]:
    return _NAMES[color_space][0]


def resolve_channel(color_space: str, channel: int | str) -> int | None:
    """The channel index for ``channel`` in ``color_space``; None for ``"auto"``.

    Raises ValueError saying which channels exist when ``channel`` is not one of them.
    """
    if color_space not in _NAMES:
        msg = f"color_space: expected one of {list(COLOR_SPACES)}, got {color_space!r}"
        raise ValueError(msg)
    names, aliases = _NAMES[color_space]
    if isinstance(channel, str):
        key = channel.strip().upper()
        if key == "AUTO":
            return None
        if key.isdigit():
            channel = int(key)
        elif key in names:
            return names.index(key)
        elif key in aliases:
            return aliases[key]
    if isinstance(channel, int) and not isinstance(channel, bool) and 0 <= channel < len(names):
        return channel
    allowed = ", ".join(str(i) for i in range(len(names)))
    msg = (
        f"channel for color_space {color_space}: expected one of {allowed}, "
        f"{', '.join(names)} or 'auto', got {channel!r}"
    )
    raise ValueError(msg)


def is_hue(color_space: str, index: int) -> bool:
    """Whether channel ``index`` of ``color_space`` is a hue angle (0..179, wrapping)."""
    return color_space in ("HSV", "HLS") and index == 0


@dataclass(frozen=True, slots=True)
class Channel:
    """One 8-bit channel of an image in a colour space, and its name."""

    data: np.ndarray
    color_space: str
    index: int

    @property
    def name(self) -> str:
        return channel_names(self.color_space)[self.index]

    @property
    def hue(self) -> bool:
        return is_hue(self.color_space, self.index)


def smooth_channel(channel: Channel) -> np.ndarray:
    """A 5×5 denoised copy: Gaussian, or median for hue (averaging angles across the
    179 -> 0 wrap would invent hues in between)."""
    if channel.hue:
        return np.asarray(cv2.medianBlur(channel.data, 5), np.uint8)
    return np.asarray(cv2.GaussianBlur(channel.data, (5, 5), 0), np.uint8)


def convert(image: np.ndarray, color_space: str) -> list[np.ndarray]:
    """All channels of ``image`` (``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR) in
    ``color_space``, each ``(H, W)`` uint8, in the table's index order."""
    if color_space == "G":
        return [to_grey(image)]
    bgr = to_bgr(image)
    if color_space == "RGB":
        b, g, r = cv2.split(bgr)
        return [r, g, b]
    return list(cv2.split(cv2.cvtColor(bgr, _CODES[color_space])))


def otsu_separability(channel: np.ndarray) -> tuple[float, float]:
    """Otsu's threshold of an 8-bit channel and its separability η = σ_between² / σ_total²
    in [0, 1] (1: two perfectly distinct levels; 0: one level).

    The threshold ``t`` splits the channel into ``<= t`` and ``> t``.
    """
    return otsu_from_hist(hist256(channel))


def otsu_from_hist(hist: np.ndarray) -> tuple[float, float]:
    """Otsu's threshold and separability from a 256-bin histogram (see otsu_separability)."""
    total = hist.sum()
    if total <= 0:
        return 0.0, 0.0
    p = hist / total
    levels = np.arange(hist.size, dtype=np.float64)
    omega = np.cumsum(p)
    mu = np.cumsum(p * levels)
    mu_t = mu[-1]
    var_t = float((p * (levels - mu_t) ** 2).sum())
    if var_t <= 0:
        return float(levels[0] if hist[0] else np.argmax(hist)), 0.0
    denom = omega * (1.0 - omega)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = np.where(denom > 0, (mu_t * omega - mu) ** 2 / denom, 0.0)
    t = int(np.argmax(between))
    return float(t), float(min(1.0, between[t] / var_t))


def pick_channel(image: np.ndarray, color_space: str, channel: int | str) -> Channel:
    """One channel of ``image`` (``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR) in
    ``color_space``; ``"auto"`` picks the channel with the largest Otsu separability
    (ties: the lowest index)."""
    index = resolve_channel(color_space, channel)
    channels = convert(image, color_space)
    if index is None:
        # every other row and column is plenty to rank the channels' histograms
        scores = [otsu_separability(np.ascontiguousarray(c[::2, ::2]))[1] for c in channels]
        index = int(np.argmax(scores))
    return Channel(channels[index], color_space, index)
