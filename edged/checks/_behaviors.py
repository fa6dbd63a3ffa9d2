"""The channels reference inspection compares (LTU ``behaviors``), at working size.

``L`` luma (edged's default: contrast as industrial users measure it), ``V`` HSV value
(max of B, G, R), ``S`` HSV saturation, ``H`` hue as the CIELAB chroma pair ``a``/``b``
(hue is circular and meaningless on grey pixels; a*/b* carry it linearly and fade with
saturation, so it can be compared like any other channel).
"""

from __future__ import annotations

from typing import Literal, get_args

import cv2
import numpy as np

from edged.core.errors import InputError

Behavior = Literal["L", "V", "S", "H"]
BEHAVIORS: tuple[str, ...] = get_args(Behavior)

# Behaviour -> the channel images it compares.
CHANNELS: dict[str, tuple[str, ...]] = {"L": ("L",), "V": ("V",), "S": ("S",), "H": ("a", "b")}
# Channels whose values scale with lighting (gain/offset normalisation applies).
PHOTOMETRIC: frozenset[str] = frozenset({"L", "V"})
# The CIELAB a/b chroma that ``colour: auto`` adds for colour references, at half the
# working resolution (like JPEG's 4:2:0 and most cameras' colour: wrong ink is an area).
CHROMA: tuple[str, str] = ("ca", "cb")
# Channels that carry colour (their threshold is divided by the colour ``weight``).
COLOUR: frozenset[str] = frozenset({"S", "a", "b", *CHROMA})


def chroma_size(work_wh: tuple[int, int]) -> tuple[int, int]:
    """The ``(width, height)`` the :data:`CHROMA` channels are compared at."""
    return max(1, (work_wh[0] + 1) // 2), max(1, (work_wh[1] + 1) // 2)


def chroma(bgr: np.ndarray, size_wh: tuple[int, int]) -> dict[str, np.ndarray]:
    """The :data:`CHROMA` channels of an ``(H, W, 3)`` uint8 BGR image, area-resized to
    ``size_wh`` (:func:`chroma_size` of its working size) first."""
    w, h = size_wh
    small = bgr
    while small.shape[1] >= 2 * w and small.shape[0] >= 2 * h:
        small = cv2.resize(
            small, (small.shape[1] // 2, small.shape[0] // 2), interpolation=cv2.INTER_AREA
        )
    if (small.shape[1], small.shape[0]) != (w, h):
        small = cv2.resize(small, (w, h), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small, cv2.COLOR_BGR2Lab)
    return {
        CHROMA[0]: np.ascontiguousarray(lab[..., 1]),
        CHROMA[1]: np.ascontiguousarray(lab[..., 2]),
    }


def parse_behaviors(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``"L"``, ``"SV"``, ``"H,S"`` or ``["H", "V"]`` -> sorted unique behaviours."""
    items = list(value.replace(",", "").replace(" ", "")) if isinstance(value, str) else value
    out = []
    for item in items:
        key = str(item).strip().upper()
        if key not in BEHAVIORS:
            msg = f"behaviors: expected letters from {list(BEHAVIORS)}, got {value!r}"
            raise InputError(msg)
        if key not in out:
            out.append(key)
    if not out:
        msg = f"behaviors: expected at least one of {list(BEHAVIORS)}, got {value!r}"
        raise InputError(msg)
    return tuple(sorted(out, key=BEHAVIORS.index))


def channel_names(behaviors: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(ch for b in behaviors for ch in CHANNELS[b])


def needs_colour(behaviors: tuple[str, ...]) -> bool:
    return any(b in ("S", "H") for b in behaviors)


def extract(image: np.ndarray, names: tuple[str, ...], grey: np.ndarray) -> dict[str, np.ndarray]:
    """Channel images of a working-size image.

    image: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR at working size.
    grey: its luma (already computed by the caller).
    """
    out: dict[str, np.ndarray] = {}
    colour = image.ndim == 3
    if any(n in ("S", "a", "b") for n in names) and not colour:
        msg = "behaviors S and H compare colour: expected (H, W, 3) BGR images, got grey"
        raise InputError(msg)
    for name in names:
        if name == "L":
            out[name] = grey
        elif name == "V":
            out[name] = (
                cv2.max(cv2.max(image[..., 0], image[..., 1]), image[..., 2]) if colour else grey
            )
        elif name == "S":
            out[name] = np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2HSV)[..., 1])
        elif name in ("a", "b") and name not in out:
            lab = cv2.cvtColor(image, cv2.COLOR_BGR2Lab)
            out["a"] = np.ascontiguousarray(lab[..., 1])
            out["b"] = np.ascontiguousarray(lab[..., 2])
    return {n: out[n] for n in names}
