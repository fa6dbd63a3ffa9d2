"""Compressed request bodies are refused with 415, never decoded.

aiohttp decompresses ``Content-Encoding: gzip``/``deflate`` bodies by default, on
the event loop: a gzip bomb stalled the loop for seconds and an undecodable body
was a 500. The app turns that off (``auto_decompress=False``) and this middleware
answers any encoding but ``identity`` with 415 before a handler reads the body.
Images are compressed already (PNG, JPEG); compressing them again gains nothing.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from edged.http._errors import UnsupportedMediaError

HANDLER_ARGS = {"auto_decompress": False}
"""aiohttp server options of every edged app (``web.Application(handler_args=...)``)."""


@web.middleware
async def content_encoding_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    encoding = request.headers.get("Content-Encoding")
    if encoding is not None:
        codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
        if any(c != "identity" for c in codings):
            msg = (
                "Content-Encoding: expected none (identity), got "
                f"{encoding[:60]!r}; send images as PNG/JPEG (already compressed) "
                "or raw pixels"
            )
            raise UnsupportedMediaError(msg)
    return await handler(request)
