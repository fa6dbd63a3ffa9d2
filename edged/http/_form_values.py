"""Typed values from an image service's form fields (LTU reference services, imgdiff).

Form fields arrive as text (multipart, urlencoded, query) or JSON values; these
helpers turn them into booleans and bounded integers with errors that say what was
expected and what came, and read optional or aliased image fields.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from aiohttp import web

from edged.core.errors import InputError
from edged.http._input import (
    RequestForm,
    decode_image_bytes,
    read_form,
    read_image_bytes,
    read_image_field,
)


def field_value(form: RequestForm, name: str, default: Any = None) -> Any:
    """A text/JSON field's value, ``default`` when absent."""
    return form.fields.get(name, default)


def parse_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    msg = f"{name}: expected true or false, got {value!r}"
    raise InputError(msg)


def parse_int(value: Any, name: str, low: int, high: int) -> int:
    try:
        out = int(str(value).strip())
    except ValueError as exc:
        msg = f"{name}: expected an integer in [{low}, {high}], got {value!r}"
        raise InputError(msg) from exc
    if not low <= out <= high:
        msg = f"{name}: expected an integer in [{low}, {high}], got {out}"
        raise InputError(msg)
    return out


def _present(form: RequestForm, name: str) -> bool:
    return name in form.files or form.fields.get(name) not in (None, "")


async def optional_image(request: web.Request, name: str) -> np.ndarray | None:
    """Image field ``name`` decoded, or None when the request has no such field."""
    if not _present(await read_form(request), name):
        return None
    return await read_image_field(request, name)


async def image_of(request: web.Request, name: str, *aliases: str) -> np.ndarray:
    """Image field ``name``, or the first of ``aliases`` present (LTU's ``refImage`` is
    also accepted as ``image1``); the error names ``name`` when none is."""
    field, data = await image_bytes_of(request, name, *aliases)
    return await decode_image_bytes(request, data, field)


async def image_bytes_of(request: web.Request, name: str, *aliases: str) -> tuple[str, bytes]:
    """``(field, encoded bytes)`` of image field ``name`` or the first of ``aliases``
    present, as :func:`image_of` picks it, not decoded; the error names ``name`` when
    none is."""
    form = await read_form(request)
    for candidate in (name, *aliases):
        if _present(form, candidate):
            return candidate, await read_image_bytes(request, candidate)
    return name, await read_image_bytes(request, name)  # raises "<name>: missing; ..."


async def optional_image_bytes(request: web.Request, name: str) -> bytes | None:
    """Image field ``name``'s encoded bytes, or None when the request has no such field."""
    if not _present(await read_form(request), name):
        return None
    return await read_image_bytes(request, name)


async def images_of(request: web.Request, *fields: tuple[str, ...]) -> list[np.ndarray]:
    """Several image fields, each ``(name, *aliases)`` as for :func:`image_of`, decoded
    at the same time in the worker pool. When several are bad, the first field's error
    is the one raised, whichever decoder failed first."""
    results = await asyncio.gather(*(image_of(request, *f) for f in fields), return_exceptions=True)
    images: list[np.ndarray] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        images.append(result)
    return images
