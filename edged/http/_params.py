"""Small request-parsing helpers for JSON admin endpoints."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from edged.core.errors import InputError

_INT_RE = re.compile(r"^[0-9]{1,9}$")


class ClientGoneError(InputError):
    """The client closed the connection before its request body was complete."""


async def read_all(request: web.Request) -> bytes:
    """``request.read()`` with a lost connection reported as a 400, not an internal error."""
    try:
        return await request.read()
    except ConnectionError as exc:
        msg = "request body: expected all of it, got a connection closed part-way"
        raise ClientGoneError(msg) from exc


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object (an empty body is ``{}``); anything else is a 400."""
    raw = await read_all(request)
    if not raw.strip():
        return {}
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"request body: expected a JSON object, got invalid JSON ({exc})"
        raise InputError(msg) from exc
    if not isinstance(doc, dict):
        msg = f"request body: expected a JSON object, got {type(doc).__name__}"
        raise InputError(msg)
    return doc


def int_param(request: web.Request, key: str, *, default: int, low: int, high: int) -> int:
    """Integer query parameter ``key`` in ``[low, high]`` (``default`` when absent)."""
    raw = request.query.get(key)
    if raw is None:
        return default
    if _INT_RE.match(raw) is None or not low <= int(raw) <= high:
        msg = f"{key}: expected an integer in [{low}, {high}], got {raw!r}"
        raise InputError(msg)
    return int(raw)
