"""Request parsing and the LTU envelope for the reference services (local helpers).

Interim helpers for :mod:`edged.http.ltu_reference` and :mod:`edged.http.pixlab`
until the shared ones (``edged.http._input``, ``_envelope``, ``_imagecodec`` of the
image-checks area) are on main; the names mirror them so the swap is mechanical:
``read_form``, ``read_image_field``, ``run_pixels``, ``ltu_endpoint``, ``LtuAnswer``.

Images come as multipart file parts, or base64 text (optionally a ``data:`` URL) in
multipart, urlencoded or JSON fields. Before decoding, the width and height are read
from the PNG/JPEG/BMP/TIFF/WebP header so a decompression bomb is refused (413)
without being inflated. Bodies over ``http.max_body_bytes`` are 413.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import json
import re
import struct
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import cv2
import numpy as np
from aiohttp import web

from edged._version import __version__
from edged.errors import BusyError, EdgedError, InputError, TooLargeError
from edged.http._keys import RUNTIME

T = TypeVar("T")
_DATA_URL = re.compile(r"^data:[\w/+.-]*(;[\w=.-]+)*;base64,", re.IGNORECASE)
_DEFAULT_MAX_BODY = 64 * 1024 * 1024
_DEFAULT_MAX_PIXELS = 50_000_000


@dataclass(frozen=True, slots=True)
class RequestForm:
    """Parsed request: raw file parts and text fields (query parameters included)."""

    files: Mapping[str, bytes] = field(default_factory=dict)
    fields: Mapping[str, Any] = field(default_factory=dict)


_FORM_KEY: Any = web.RequestKey("edged.refs.form", RequestForm)


def _limits(request: web.Request) -> tuple[int, int]:
    runtime = request.app.get(RUNTIME)
    if runtime is None:
        return _DEFAULT_MAX_BODY, _DEFAULT_MAX_PIXELS
    http = runtime.settings.http
    return http.max_body_bytes, http.max_pixels


async def run_pixels(request: web.Request, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` off the event loop (the runtime's worker pool when there is one)."""
    runtime = request.app.get(RUNTIME)
    if runtime is not None:
        return await runtime.pool.run(fn, *args)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(fn, *args))


async def _body(request: web.Request, max_bytes: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > max_bytes:
            msg = f"body: expected at most {max_bytes} bytes (http.max_body_bytes), got more"
            raise TooLargeError(msg)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_form(request: web.Request) -> RequestForm:
    """Parse body and query once per request (multipart, urlencoded or JSON)."""
    cached = request.get(_FORM_KEY)
    if isinstance(cached, RequestForm):
        return cached
    max_body, _ = _limits(request)
    if request.content_length is not None and request.content_length > max_body:
        got = request.content_length
        msg = f"body: expected at most {max_body} bytes (http.max_body_bytes), got {got}"
        raise TooLargeError(msg)
    files: dict[str, bytes] = {}
    fields: dict[str, Any] = {}
    ctype = request.content_type
    try:
        if ctype.startswith("multipart/"):
            reader = await request.multipart()
            size = 0
            while (part := await reader.next()) is not None:
                if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                    continue
                data = bytes(await part.read())
                size += len(data)
                if size > max_body:
                    msg = f"body: expected at most {max_body} bytes (http.max_body_bytes)"
                    raise TooLargeError(msg)
                if part.filename is not None:
                    files[part.name] = data
                else:
                    try:
                        fields[part.name] = data.decode("utf-8")
                    except UnicodeDecodeError:  # binary sent without a filename
                        files[part.name] = data
        elif ctype == "application/x-www-form-urlencoded":
            text = (await _body(request, max_body)).decode("utf-8")
            fields.update(urllib.parse.parse_qsl(text, keep_blank_values=True, max_num_fields=200))
        elif ctype == "application/json":
            doc = json.loads(await _body(request, max_body))
            if not isinstance(doc, dict):
                msg = f"body: expected a JSON object, got {type(doc).__name__}"
                raise InputError(msg)
            fields.update(doc)
        elif request.can_read_body:
            msg = (
                "body: expected multipart/form-data, application/x-www-form-urlencoded or "
                f"application/json, got content type {ctype!r}"
            )
            raise InputError(msg)
    except (UnicodeDecodeError, ValueError) as exc:
        msg = f"body: expected a well-formed {ctype} body ({exc})"
        raise InputError(msg) from exc
    for key, value in request.query.items():
        if key in fields or key in files:
            msg = f"{key}: given twice (query and body); expected it once"
            raise InputError(msg)
        fields[key] = value
    form = RequestForm(files, fields)
    request[_FORM_KEY] = form
    return form


def _image_bytes(form: RequestForm, names: tuple[str, ...]) -> bytes | None:
    for name in names:
        if name in form.files:
            return form.files[name]
        value = form.fields.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            msg = (
                f"{name}: expected an image file part or base64 image text, got {str(value)[:40]!r}"
            )
            raise InputError(msg)
        text = _DATA_URL.sub("", value.strip())
        if text.lower().startswith(("http://", "https://")):
            msg = f"{name}: fetching images from URLs is not enabled; send the image itself"
            raise InputError(msg)
        text = text.replace(" ", "+").replace("-", "+").replace("_", "/")
        try:
            return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError) as exc:
            msg = f"{name}: expected base64 image text, got invalid base64 ({exc})"
            raise InputError(msg) from exc
    return None


async def read_image_field(
    request: web.Request, name: str, *, aliases: tuple[str, ...] = (), required: bool = True
) -> np.ndarray | None:
    """Image field ``name`` (or an alias) decoded off the loop to ``(H, W)`` uint8 grey
    or ``(H, W, 3)`` uint8 BGR; None when absent and not ``required``."""
    form = await read_form(request)
    data = _image_bytes(form, (name, *aliases))
    if data is None:
        if not required:
            return None
        also = f" (or {', '.join(repr(a) for a in aliases)})" if aliases else ""
        msg = f"{name}: missing; expected a multipart file part or base64 field {name!r}{also}"
        raise InputError(msg)
    _, max_pixels = _limits(request)
    return await run_pixels(request, decode_image, data, max_pixels, name)


def field_value(form: RequestForm, name: str, default: Any = None) -> Any:
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


# --------------------------------------------------------------------------- decoding


def image_size(data: bytes, name: str) -> tuple[str, int, int]:
    """(format, width, height) from the header, without decoding."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            w, h = struct.unpack(">II", data[16:24])
            return "PNG", w, h
        if data.startswith(b"\xff\xd8"):
            i = 2
            while i + 9 < len(data):
                if data[i] != 0xFF:
                    break
                marker = data[i + 1]
                if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                    i += 2
                    continue
                (length,) = struct.unpack(">H", data[i + 2 : i + 4])
                if marker in (
                    0xC0,
                    0xC1,
                    0xC2,
                    0xC3,
                    0xC5,
                    0xC6,
                    0xC7,
                    0xC9,
                    0xCA,
                    0xCB,
                    0xCD,
                    0xCE,
                    0xCF,
                ):
                    h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                    return "JPEG", w, h
                i += 2 + length
        if data.startswith(b"BM"):
            w, h = struct.unpack("<ii", data[18:26])
            return "BMP", abs(w), abs(h)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and data[12:16] == b"VP8X":
            return (
                "WebP",
                int.from_bytes(data[24:27], "little") + 1,
                int.from_bytes(data[27:30], "little") + 1,
            )
    except struct.error:
        pass
    if data[:4] in (b"II*\x00", b"MM\x00*") or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return "other", 0, 0  # size read after decoding (bounded by the body size)
    msg = (
        f"{name}: expected a PNG, JPEG, BMP, TIFF or WebP image, "
        f"got data starting with {data[:8]!r}"
    )
    raise InputError(msg)


def decode_image(data: bytes, max_pixels: int, name: str = "image") -> np.ndarray:
    """Decode to ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR; 413 over ``max_pixels``."""
    fmt, w, h = image_size(data, name)
    if w * h > max_pixels:
        msg = (
            f"{name}: expected at most {max_pixels} pixels (http.max_pixels), "
            f"got a {fmt} of {w}x{h}"
        )
        raise TooLargeError(msg)
    image = cv2.imdecode(
        np.frombuffer(data, np.uint8), cv2.IMREAD_ANYCOLOR | cv2.IMREAD_IGNORE_ORIENTATION
    )
    if image is None:
        msg = f"{name}: the {fmt} image could not be decoded (corrupt or truncated)"
        raise InputError(msg)
    if image.shape[0] * image.shape[1] > max_pixels:
        msg = (
            f"{name}: expected at most {max_pixels} pixels (http.max_pixels), "
            f"got {image.shape[1]}x{image.shape[0]}"
        )
        raise TooLargeError(msg)
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / float(np.iinfo(image.dtype).max))
    return np.ascontiguousarray(image)


# --------------------------------------------------------------------------- LTU envelope


@dataclass(frozen=True, slots=True)
class LtuAnswer:
    """A service's result with its score and extra info for ``details``."""

    result: Mapping[str, Any]
    score: float | None = None
    info: Mapping[str, Any] = field(default_factory=dict)


def envelope(
    name: str,
    result: Mapping[str, Any] | None,
    *,
    score: float | None = None,
    message: str = "OK",
    info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "result": dict(result) if result is not None else None,
        "details": {"name": name, "score": score, "message": message, "info": dict(info or {})},
        "version": __version__,
    }


Service = Callable[[web.Request], Awaitable[LtuAnswer]]
Handler = Callable[[web.Request], Awaitable[web.Response]]


def ltu_endpoint(name: str) -> Callable[[Service], Handler]:
    """Wrap a service: time it, envelope its answer, map every edged error (and
    aiohttp's 4xx) to an envelope with that status and the reason in ``message``."""

    def wrap(fn: Service) -> Handler:
        @functools.wraps(fn)
        async def handler(request: web.Request) -> web.Response:
            t0 = time.perf_counter()
            try:
                answer = await fn(request)
            except EdgedError as exc:
                info = {"status": exc.http_status, "error": type(exc).__name__}
                resp = web.json_response(
                    envelope(name, None, message=str(exc), info=info), status=exc.http_status
                )
                if isinstance(exc, BusyError):
                    resp.headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
                return resp
            except web.HTTPClientError as exc:
                info = {"status": exc.status, "error": type(exc).__name__}
                body = envelope(name, None, message=exc.text or exc.reason, info=info)
                return web.json_response(body, status=exc.status)
            info = {**answer.info, "elapsed_ms": round((time.perf_counter() - t0) * 1000.0, 3)}
            return web.json_response(envelope(name, answer.result, score=answer.score, info=info))

        return handler

    return wrap
