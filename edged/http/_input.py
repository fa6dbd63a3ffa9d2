"""Reading image-service requests: images and options from any of the usual shapes.

An image arrives as

- a multipart/form-data **file part** (e.g. ``-F image=@part.png``),
- a **base64 text** field in multipart, urlencoded or JSON bodies (a ``data:`` URL
  prefix and URL-safe base64 are accepted; urlencoded ``+`` turned to spaces is
  repaired),
- a raw body with an ``image/*`` or ``application/octet-stream`` content type
  (read as the field ``image``), or
- an ``http(s)://`` URL in the field — fetched only when ``http.url_fetch_hosts``
  allows its host (empty by default: URLs are refused with 400; see
  :mod:`edged.http._fetch`).

Options are the other form/JSON fields plus the query parameters (a key given in
both is an error). A multipart part given twice with the same content counts once
(the LTU document's Python samples send the image both as a file and as a field);
file parts of one name with different contents are kept in order
(``RequestForm.repeated``: LTU's distance example sends two parts named ``image``)
and are an error for a service that wants one. The body is read once per request
and cached on it, so a service may read several images (``read_image_field(request, "reference")``).
Bodies over ``http.max_body_bytes`` and images over ``http.max_pixels`` are 413.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import json
import re
import urllib.parse
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import numpy as np
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import BaseModel, ValidationError

from edged.config import HttpConfig
from edged.core.errors import InputError, TooLargeError
from edged.http._fetch import FetchPolicy, fetch, open_session, policy_for
from edged.http._imagecodec import decode_image
from edged.http._keys import RUNTIME

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

_NOT_OPTIONS = frozenset({"api_key"})
_DATA_URL = re.compile(r"^data:[\w/+.-]*(;[\w=.-]+)*;base64,", re.IGNORECASE)
_CHUNK = 1 << 16


@dataclass(frozen=True, slots=True)
class InputLimits:
    """What a request may bring (from ``http`` settings)."""

    max_body_bytes: int = 64 * 1024 * 1024
    max_pixels: int = 50_000_000
    url_fetch_hosts: tuple[str, ...] = ()
    fetch_timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, http: HttpConfig) -> InputLimits:
        return cls(
            max_body_bytes=http.max_body_bytes,
            max_pixels=http.max_pixels,
            url_fetch_hosts=tuple(http.url_fetch_hosts),
            fetch_timeout_s=http.url_fetch_timeout_s,
        )

    @property
    def fetch_policy(self) -> FetchPolicy:
        return policy_for(self.url_fetch_hosts)


def limits_of(app: web.Application) -> InputLimits:
    """The app's input limits: from the runtime's settings, else the defaults."""
    runtime = app.get(RUNTIME)
    if runtime is None:
        return InputLimits()
    return InputLimits.from_settings(runtime.settings.http)


async def run_pixels(request: web.Request, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` off the event loop: in the runtime's bounded worker pool when
    the app has one, else in the loop's default executor."""
    runtime = request.app.get(RUNTIME)
    if runtime is not None:
        return await runtime.pool.run(fn, *args)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(fn, *args))


@dataclass(frozen=True, slots=True)
class RequestForm:
    """A parsed request: raw file parts and text/JSON fields (query included)."""

    files: Mapping[str, bytes] = field(default_factory=dict)
    fields: Mapping[str, Any] = field(default_factory=dict)
    repeated: Mapping[str, tuple[bytes, ...]] = field(default_factory=dict)

    def parts(self, name: str) -> tuple[bytes, ...]:
        """Every file part named ``name``, in the order sent."""
        first = self.files.get(name)
        return () if first is None else (first, *self.repeated.get(name, ()))


# aiohttp >= 3.12 wants typed request keys; older versions take a string.
_FORM_KEY: Any = (
    web.RequestKey("edged.http.form", RequestForm)
    if hasattr(web, "RequestKey")
    else "edged.http.form"
)


async def read_form(request: web.Request) -> RequestForm:
    """Parse the request body and query once (cached on the request)."""
    cached = request.get(_FORM_KEY)
    if isinstance(cached, RequestForm):
        return cached
    limits = limits_of(request.app)
    if request.content_length is not None and request.content_length > limits.max_body_bytes:
        raise _too_large(request.content_length, limits)
    files: dict[str, bytes] = {}
    fields: dict[str, Any] = {}
    repeated: dict[str, list[bytes]] = {}
    ctype = request.content_type
    if ctype.startswith("multipart/"):
        await _read_multipart(request, limits, files, fields, repeated)
    elif ctype == "application/x-www-form-urlencoded":
        body = await _read_body(request, limits)
        try:
            text = body.decode("utf-8")
            pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, max_num_fields=1000)
        except (UnicodeDecodeError, ValueError) as exc:
            msg = f"body: expected application/x-www-form-urlencoded UTF-8 text ({exc})"
            raise InputError(msg) from exc
        for key, value in pairs:
            _put(fields, key, value, "form field")
    elif ctype == "application/json":
        body = await _read_body(request, limits)
        try:
            doc = json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise InputError(f"body: expected a JSON object, got invalid JSON ({exc})") from exc
        if not isinstance(doc, dict):
            raise InputError(f"body: expected a JSON object, got {type(doc).__name__}")
        fields.update(doc)
    elif ctype.startswith("image/") or ctype == "application/octet-stream":
        body = await _read_body(request, limits)
        if body:
            files["image"] = body
    elif request.can_read_body:
        body = await _read_body(request, limits)
        if body:
            msg = (
                "body: expected multipart/form-data, application/x-www-form-urlencoded, "
                f"application/json or an image, got content type {ctype!r}"
            )
            raise InputError(msg)
    for key, value in request.query.items():
        if key in fields or key in files:
            raise InputError(f"{key}: given twice (query and body); expected it once")
        _put(fields, key, value, "query parameter")
    form = RequestForm(files, fields, {k: tuple(v) for k, v in repeated.items()})
    request[_FORM_KEY] = form
    return form


async def read_image_bytes(
    request: web.Request, name: str = "image", index: int | None = None
) -> bytes:
    """The encoded bytes of image field ``name`` (file part, base64 text or URL);
    ``index`` picks one of several file parts of that name (None: there must be one)."""
    form = await read_form(request)
    parts = form.parts(name)
    if index is not None or len(parts) > 1:
        if index is None or index >= len(parts):
            msg = f"{name}: expected one file part named {name!r}, got {len(parts)}"
            raise InputError(msg)
        return parts[index]
    if name in form.files:
        return form.files[name]
    value = form.fields.get(name)
    if value is None:
        msg = (
            f"{name}: missing; expected a multipart file part named {name!r}, a base64 "
            f"form or JSON field {name!r}, or an image body"
        )
        raise InputError(msg)
    return await image_from_text(request, value, name)


async def image_from_text(request: web.Request, value: Any, name: str = "image") -> bytes:
    """Encoded image bytes from a text value: an allowed ``http(s)://`` URL or base64."""
    if not isinstance(value, str) or not value.strip():
        msg = f"{name}: expected base64 image text or a URL, got {_short(value)}"
        raise InputError(msg)
    text = value.strip()
    if text.lower().startswith(("http://", "https://")):
        limits = limits_of(request.app)
        return await fetch(
            request.app[FETCH_SESSION],
            limits.fetch_policy,
            text,
            name,
            max_bytes=limits.max_body_bytes,
            timeout_s=limits.fetch_timeout_s,
        )
    return decode_base64(text, name)


async def read_image_field(
    request: web.Request, name: str = "image", index: int | None = None
) -> np.ndarray:
    """Image field ``name`` decoded (off the event loop) to ``(H, W)`` uint8 grey or
    ``(H, W, 3)`` uint8 BGR; 400 for bad input, 413 over ``http.max_pixels``."""
    return await decode_image_bytes(request, await read_image_bytes(request, name, index), name)


async def read_options(
    request: web.Request, model: type[M], *, image_fields: tuple[str, ...] = ("image",)
) -> M:
    """The request's options (every field but the image fields and ``api_key``)
    validated by ``model``; InputError naming each bad option otherwise."""
    form = await read_form(request)
    raw = {
        k: v
        for k, v in form.fields.items()
        if k not in image_fields and k not in _NOT_OPTIONS and k not in form.files
    }
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise InputError("; ".join(_describe(e) for e in exc.errors())) from exc


def decode_base64(text: str, name: str = "image") -> bytes:
    """Base64 (standard or URL-safe, padding optional, ``data:`` prefix allowed)."""
    text = _DATA_URL.sub("", text.strip(), count=1)
    # urlencoded bodies whose "+" was not percent-encoded arrive with spaces;
    # MIME-wrapped base64 has line breaks.
    text = "".join(text.replace(" ", "+").split())
    if "-" in text or "_" in text:
        text = text.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        msg = f"{name}: expected base64 image text, got invalid base64 ({exc}): {_short(text)}"
        raise InputError(msg) from exc


async def decode_image_bytes(request: web.Request, data: bytes, name: str = "image") -> np.ndarray:
    """Decode ``data`` off the event loop (400 bad image, 413 over ``http.max_pixels``)."""
    return await run_pixels(request, decode_field, data, limits_of(request.app).max_pixels, name)


def decode_field(data: bytes, max_pixels: int, name: str) -> np.ndarray:
    """Decode image field ``name``'s bytes (errors name the field); see ``decode_image``."""
    try:
        return decode_image(data, max_pixels=max_pixels)
    except (InputError, TooLargeError) as exc:
        # name the field: "image: ..." -> "reference: ..."
        text = str(exc)
        if name != "image" and text.startswith("image:"):
            text = f"{name}:{text[len('image:') :]}"
        raise type(exc)(text) from exc


def _describe(err: Any) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ()))
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if err.get("type") == "extra_forbidden":
        return f"{loc}: unknown option (got {_short(err.get('input'))})"
    if not loc:
        return msg
    return f"{loc}: {msg} (got {_short(err.get('input'))})"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _put(fields: dict[str, Any], key: str, value: Any, what: str) -> None:
    if key in fields:
        raise InputError(f"{key}: {what} given twice; expected it once")
    fields[key] = value


def _too_large(size: int, limits: InputLimits) -> TooLargeError:
    return TooLargeError(
        f"body: expected at most {limits.max_body_bytes} bytes (http.max_body_bytes), got {size}"
    )


async def _read_body(request: web.Request, limits: InputLimits) -> bytes:
    buf = bytearray()
    async for chunk in request.content.iter_chunked(_CHUNK):
        buf += chunk
        if len(buf) > limits.max_body_bytes:
            raise _too_large(len(buf), limits)
    return bytes(buf)


async def _read_multipart(
    request: web.Request,
    limits: InputLimits,
    files: dict[str, bytes],
    fields: dict[str, Any],
    repeated: dict[str, list[bytes]],
) -> None:
    try:
        reader = await request.multipart()
        total = 0
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, aiohttp.BodyPartReader):
                raise InputError("body: nested multipart parts are not supported")
            name = part.name
            if not name:
                raise InputError("body: multipart part without a name")
            buf = bytearray()
            while chunk := await part.read_chunk(_CHUNK):
                buf += chunk
                total += len(chunk)
                if total > limits.max_body_bytes:
                    raise _too_large(total, limits)
            value = _part_text(part, buf)
            if name in files or name in fields:
                if files.get(name) == bytes(buf) or (
                    value is not None and fields.get(name) == value
                ):
                    continue  # the same content twice counts once
                if name in files and value is None:
                    repeated.setdefault(name, []).append(bytes(buf))
                    continue
                raise InputError(f"{name}: multipart part given twice; expected it once")
            if value is None:  # a file part, or binary data without a file name
                files[name] = bytes(buf)
            else:
                fields[name] = value
    except (ValueError, AssertionError, aiohttp.ClientPayloadError, HttpProcessingError) as exc:
        reason = exc.message if isinstance(exc, HttpProcessingError) else str(exc)
        raise InputError(f"body: malformed multipart/form-data ({reason.strip()})") from exc


def _part_text(part: aiohttp.BodyPartReader, buf: bytearray) -> str | None:
    """A text field's value, or None for a file part or non-text content."""
    if part.filename is not None:
        return None
    try:
        return buf.decode(part.get_charset(default="utf-8"))
    except (UnicodeDecodeError, LookupError):
        return None


FETCH_SESSION = web.AppKey("edged.http.fetch_session", aiohttp.ClientSession)
"""The client session of URL inputs (``http.url_fetch_hosts``), one per app."""


async def fetch_session(app: web.Application) -> AsyncIterator[None]:
    """``app.cleanup_ctx``: open the URL-input client session (it connects only where
    the running settings' ``http.url_fetch_hosts`` allows), close it with the app."""
    async with open_session(lambda: limits_of(app).fetch_policy) as session:
        app[FETCH_SESSION] = session
        yield
