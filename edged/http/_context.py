"""The PEKAT "context": edged's Result plus the fields PEKAT clients read, and how
analyze responses carry it.

- ``response_type=context``: the context as the JSON body.
- image responses: the PNG as the body with the context base64-encoded (UTF-8 JSON)
  in the header ``ContextBase64utf`` (the full PEKAT document's name) and as JSON
  (ASCII, non-ASCII characters escaped) in the header ``context`` (the short document's
  name); with ``context_in_body`` the body is the PNG followed by the context JSON,
  and the header ``ImageLen`` gives the PNG's length.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from aiohttp import web

from edged.core.result import Result

HEADER_CONTEXT_MAX_CHARS = 60_000
"""Keep each context header under common 64 KiB header-line limits (Python's
http.client, which ``requests`` uses); longer contexts drop region lists."""


def detected_rectangles(result: Result) -> list[dict[str, Any]]:
    """PEKAT ``detectedRectangles``: one per Result region, same order and pixels."""
    rects: list[dict[str, Any]] = []
    for i, r in enumerate(result.regions):
        rect: dict[str, Any] = {
            "id": i,
            "x": r.x,
            "y": r.y,
            "width": r.width,
            "height": r.height,
            "classNames": [{"label": r.label}],
            "check": r.check,
        }
        if r.score is not None:
            rect["confidence"] = r.score
        rects.append(rect)
    return rects


def pekat_context(result: Result, *, data: str, complete_time_s: float) -> dict[str, Any]:
    """The Result's JSON plus ``detectedRectangles``, ``result`` (true = OK), ``data``,
    ``completeTime`` (seconds) and ``imageShape`` {height, width}."""
    ctx = result.to_json_dict()
    ctx["detectedRectangles"] = detected_rectangles(result)
    ctx["result"] = result.verdict == "pass"
    ctx["data"] = data
    ctx["completeTime"] = round(complete_time_s, 6)
    ctx["imageShape"] = {"height": result.frame.height, "width": result.frame.width}
    return ctx


def _plain(obj: Any) -> Any:
    """JSON fallback: NumPy scalars/arrays as numbers/lists, anything else as its text."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=str)
    return str(obj)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def dumps(obj: Any) -> bytes:
    """Strict JSON (NaN/inf become null, NumPy values plain numbers) as UTF-8 bytes."""
    opts: dict[str, Any] = {"separators": (",", ":"), "ensure_ascii": False}
    try:
        text = json.dumps(obj, allow_nan=False, default=_plain, **opts)
    except ValueError:
        plain = json.loads(json.dumps(obj, default=_plain))
        text = json.dumps(_finite(plain), allow_nan=False, **opts)
    return text.encode("utf-8", "replace")  # a lone surrogate cannot become a 500


def _base64(ctx: Mapping[str, Any]) -> str:
    return base64.b64encode(dumps(ctx)).decode("ascii")


def _ascii_json(ctx: Mapping[str, Any]) -> str:
    return json.dumps(json.loads(dumps(ctx)), separators=(",", ":"), ensure_ascii=True)


def header_context(ctx: Mapping[str, Any]) -> str:
    """``ContextBase64utf``: base64 of the context JSON, shortened to fit a header
    line when needed (see :func:`_fit`)."""
    return _fit(ctx, _base64)


def header_context_json(ctx: Mapping[str, Any]) -> str:
    """``context``: the context as one line of ASCII JSON, shortened like
    :func:`header_context`."""
    return _fit(ctx, _ascii_json)


def _fit(ctx: Mapping[str, Any], encode: Callable[[Mapping[str, Any]], str]) -> str:
    """``encode(ctx)``, shortened to fit a header line when needed.

    When too long, ``regions`` and ``detectedRectangles`` are cut to the first N that
    fit and ``truncated`` says how many there were (use ``context_in_body`` for all).
    """
    encoded = encode(ctx)
    if len(encoded) <= HEADER_CONTEXT_MAX_CHARS:
        return encoded
    total = len(ctx.get("detectedRectangles", []))
    keep = total
    while True:
        keep //= 2
        short = dict(ctx)
        short["regions"] = list(ctx.get("regions", []))[:keep]
        short["detectedRectangles"] = list(ctx.get("detectedRectangles", []))[:keep]
        short["truncated"] = {"detectedRectangles": total, "kept": keep}
        encoded = encode(short)
        if len(encoded) <= HEADER_CONTEXT_MAX_CHARS or keep == 0:
            return encoded


def json_response(doc: Any, *, status: int = 200) -> web.Response:
    """A JSON response through :func:`dumps` (strict JSON whatever a check put in)."""
    return web.Response(body=dumps(doc), status=status, content_type="application/json")


def context_response(ctx: Mapping[str, Any]) -> web.Response:
    return json_response(ctx)


def image_response(
    png: bytes,
    ctx: Mapping[str, Any],
    *,
    context_in_body: bool,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """A PNG with the context in the body (after ``ImageLen`` bytes) or in a header."""
    extra = dict(headers or {})
    if context_in_body:
        extra["ImageLen"] = str(len(png))
        return web.Response(
            body=png + dumps(ctx), content_type="application/octet-stream", headers=extra
        )
    extra["ContextBase64utf"] = header_context(ctx)
    extra["context"] = header_context_json(ctx)
    return web.Response(body=png, content_type="image/png", headers=extra)
