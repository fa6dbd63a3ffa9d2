"""Query parameters of the PEKAT-compatible analyze endpoints, validated once.

PEKAT clients send flags without a value (``&context_in_body``), ``data=None``
when they have no data (the official SDK does), and extra parameters edged does
not know (ignored). Known parameters given twice, sizes that are not positive
decimal integers and unknown ``response_type`` values are 400s that say what
was expected and what came.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, cast, get_args

from multidict import MultiMapping

from edged.core.errors import InputError
from edged.core.names import NAME_RE
from edged.http._decode import check_pixels
from edged.imaging.pixfmt import BayerPattern

ResponseType = Literal["context", "image", "annotated_image", "heatmap"]
RESPONSE_TYPES: tuple[str, ...] = get_args(ResponseType)

MAX_SIDE_PX = 1 << 20
"""Largest width or height accepted (the pixel limit usually bites first)."""

_TRUE = frozenset({"", "1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_BAYER: tuple[BayerPattern, ...] = ("RG", "GR", "GB", "BG")
_DIGITS_RE = re.compile(r"^[0-9]{1,8}$")


@dataclass(frozen=True, slots=True)
class AnalyzeQuery:
    """What every analyze endpoint takes besides the pixels."""

    response_type: ResponseType
    context_in_body: bool
    data: str
    recipe: str | None


def _one(query: MultiMapping[str], key: str) -> str | None:
    values = query.getall(key, [])
    if len(values) > 1:
        msg = f"{key}: expected at most one value, got {len(values)}: {values[:4]!r}"
        raise InputError(msg)
    return values[0] if values else None


def parse_flag(query: MultiMapping[str], key: str) -> bool:
    """A flag: absent is false; present bare or as 1/true/yes/on is true; 0/false/no/off false."""
    raw = _one(query, key)
    if raw is None:
        return False
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    msg = f"{key}: expected a flag (bare, or one of 1/true/0/false), got {raw!r}"
    raise InputError(msg)


def parse_analyze_query(query: MultiMapping[str]) -> AnalyzeQuery:
    """``response_type`` (default context), ``context_in_body``, ``data``, ``recipe``."""
    rtype = _one(query, "response_type")
    if rtype is None or rtype == "":
        rtype = "context"
    if rtype not in RESPONSE_TYPES:
        msg = f"response_type: expected one of {', '.join(RESPONSE_TYPES)}, got {rtype!r}"
        raise InputError(msg)
    recipe = _one(query, "recipe")
    if recipe is not None and NAME_RE.match(recipe) is None:
        msg = (
            "recipe: expected a recipe name (letters, digits, '_', '.', '-', up to 64), "
            f"got {recipe!r}"
        )
        raise InputError(msg)
    return AnalyzeQuery(
        response_type=cast(ResponseType, rtype),
        context_in_body=parse_flag(query, "context_in_body"),
        data=_one(query, "data") or "",
        recipe=recipe or None,
    )


def _side(query: MultiMapping[str], key: str) -> int:
    raw = _one(query, key)
    if raw is None:
        msg = f"{key}: expected a positive integer number of pixels, got none"
        raise InputError(msg)
    if _DIGITS_RE.match(raw) is None or not 1 <= int(raw) <= MAX_SIDE_PX:
        msg = f"{key}: expected a positive integer number of pixels <= {MAX_SIDE_PX}, got {raw!r}"
        raise InputError(msg)
    return int(raw)


def parse_size(query: MultiMapping[str], *, max_pixels: int) -> tuple[int, int]:
    """``(width, height)`` from the query; over ``max_pixels`` is a 413."""
    width, height = _side(query, "width"), _side(query, "height")
    check_pixels(width, height, max_pixels, "raw image")
    return width, height


def parse_bayer(query: MultiMapping[str]) -> BayerPattern | None:
    """``bayer`` as a flag (BayerRG8, as PEKAT) or a PFNC pattern RG/GR/GB/BG."""
    raw = _one(query, "bayer")
    if raw is None:
        return None
    upper = raw.strip().upper()
    for pattern in _BAYER:
        if upper == pattern:
            return pattern
    low = raw.strip().lower()
    if low in _TRUE:
        return "RG"
    if low in _FALSE:
        return None
    msg = f"bayer: expected a flag (bare, 1/true, 0/false) or a pattern RG/GR/GB/BG, got {raw!r}"
    raise InputError(msg)
