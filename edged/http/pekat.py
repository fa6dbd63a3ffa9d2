"""PEKAT VISION-compatible analyze endpoints (the official ``pekat-vision-sdk`` works unchanged).

Routes: ``POST /analyze_image`` (JPEG/PNG body), ``POST /analyze_raw_image?width&height
[&bayer]`` (raw BGR, grey or Bayer body), ``POST /analyze_image_shared_memory?width&height
&name`` (raw pixels in a local POSIX shared-memory block), ``GET /ping``, ``GET /version``.
Common query: ``api_key``, ``data``, ``response_type=context|image|annotated_image|heatmap``,
``context_in_body``, ``recipe``. See docs/api.md.

Each analysis runs decode → inspect → render as one job in the worker pool, under
the analysis gate (bounded concurrency, deadline). Its Result is recorded in
``runtime.results`` under camera ``http``.
"""

from __future__ import annotations

import ipaddress
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
from aiohttp import web

from edged._version import __version__
from edged.checks import CheckContext
from edged.core.errors import InputError, TooLargeError
from edged.core.result import FrameInfo, iso_utc
from edged.http import _context
from edged.http._decode import decode_encoded, decode_raw, read_shared_memory
from edged.http._errors import ForbiddenError
from edged.http._families import ApiFamily, plain_error_body, register_family
from edged.http._gate import GATE, AnalysisGate, declared_body_bytes
from edged.http._keys import RUNTIME
from edged.http._params import ClientGoneError, read_all
from edged.http._query import AnalyzeQuery, parse_analyze_query, parse_bayer, parse_size
from edged.imaging.png_write import encode_png
from edged.imaging.render import annotate, colorize_heatmap, regions_heatmap
from edged.recipes.inspection import Inspection, Inspector, build_result
from edged.runtime.shared import Runtime

CAMERA = "http"
"""Camera id of HTTP analyses in Results, metrics and ``runtime.results``."""

PEKAT_API_LEVEL = "3.18.0"
"""The PEKAT API level edged implements; the SDK uses shared memory from 3.18 on."""
PEKAT_API_LEVEL_NO_SHM = "3.17.0"


def version_text(shared_memory: bool) -> str:
    """``/version``: the PEKAT API level with edged's version as PEP 440 local label,
    e.g. ``3.18.0+edged.0.1.0`` (``3.17.0+...`` when shared memory is off, so the SDK
    sends NumPy images as raw bodies instead)."""
    level = PEKAT_API_LEVEL if shared_memory else PEKAT_API_LEVEL_NO_SHM
    return f"{level}+edged.{__version__}"


@dataclass
class PekatState:
    """Per-app state of the analyze endpoints."""

    gate: AnalysisGate
    seq: itertools.count[int]


PEKAT_STATE = web.AppKey("edged.pekat", PekatState)


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What the worker job hands back to the event loop."""

    shape_hw: tuple[int, int]
    pixel_format: str
    inspection: Inspection
    png: bytes | None
    heatmap_source: str | None
    timings_ms: dict[str, float]


Body = bytes | bytearray
Decoder = Callable[[Body], tuple[np.ndarray, str]]


def _job(
    decoder: Decoder,
    body: Body,
    inspector: Inspector,
    context: CheckContext,
    response_type: str,
    submitted: float,
) -> _Outcome:
    """Decode, inspect and render in one worker-thread job (no event-loop hops between).

    ``submitted`` is the ``perf_counter()`` when the job was handed to the pool; the
    wait until a worker took it is reported as the ``queue`` timing.
    """
    t0 = time.perf_counter()
    image, pixel_format = decoder(body)
    t1 = time.perf_counter()
    inspection = inspector.inspect(image, context=context)
    t2 = time.perf_counter()
    png, source = _render(image, inspection, response_type)
    t3 = time.perf_counter()
    timings = {
        "queue": round((t0 - submitted) * 1000.0, 3),
        "decode": round((t1 - t0) * 1000.0, 3),
        "inspect": round((t2 - t1) * 1000.0, 3),
    }
    if png is not None:
        timings["render"] = round((t3 - t2) * 1000.0, 3)
    h, w = image.shape[:2]
    return _Outcome((h, w), pixel_format, inspection, png, source, timings)


def _render(
    image: np.ndarray, inspection: Inspection, response_type: str
) -> tuple[bytes | None, str | None]:
    if response_type == "context":
        return None, None
    if response_type == "image":
        return encode_png(image), None
    h, w = image.shape[:2]
    if response_type == "annotated_image":
        drawn = annotate(image, inspection.regions, heatmap=inspection.heatmap)
        return encode_png(drawn), "check" if inspection.heatmap is not None else None
    if inspection.heatmap is not None:
        return encode_png(colorize_heatmap(inspection.heatmap, shape_hw=(h, w))), "check"
    heat = regions_heatmap(inspection.regions, (h, w))
    return encode_png(colorize_heatmap(heat)), "regions"


def _inputs(query: AnalyzeQuery) -> dict[str, str]:
    """Run-time values for checks: ``data`` (e.g. the lot code the part should carry).

    The official SDK sends ``data=None`` when the caller gave none: that is no data.
    """
    return {"data": query.data} if query.data not in ("", "None") else {}


async def read_body(request: web.Request) -> bytes | bytearray:
    """The whole body, at most ``http.max_body_bytes``.

    With a Content-Length the body lands in one preallocated buffer (no growth, no
    final copy: a 12 MP raw frame is copied once); a chunked body goes through
    aiohttp's own reader, which enforces the same limit.
    """
    limit = request.app[RUNTIME].settings.http.max_body_bytes
    size = request.content_length
    if size is None:
        return await read_all(request)
    if size > limit:
        msg = (
            f"request body: expected at most {limit} bytes (http.max_body_bytes), "
            f"got Content-Length {size}"
        )
        raise TooLargeError(msg)
    stream = request.content
    if hasattr(stream, "set_read_chunk_size"):  # aiohttp >= 3.14: fewer, larger chunks
        stream.set_read_chunk_size(max(size, 2**16))
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        try:
            chunk = await stream.readany()
        except ConnectionError as exc:
            msg = (
                f"request body: expected {size} bytes (Content-Length), "
                f"got {got} and a closed connection"
            )
            raise ClientGoneError(msg) from exc
        if not chunk:
            msg = f"request body: expected {size} bytes (Content-Length), got {got}"
            raise InputError(msg)
        view[got : got + len(chunk)] = chunk
        got += len(chunk)
    return buf


async def _no_body(request: web.Request) -> bytes | bytearray:
    return b""


def _content_type_hint(request: web.Request) -> None:
    if request.content_type.startswith("multipart/"):
        msg = (
            "request body: expected the image file itself as the body "
            "(curl --data-binary @part.png), got a multipart/form-data upload"
        )
        raise InputError(msg)


async def _analyze(
    request: web.Request,
    decoder: Decoder,
    *,
    receive: Callable[[web.Request], Awaitable[Body]] = read_body,
) -> web.Response:
    """Shared flow: query, gate (body + job), Result, response."""
    t_start = time.perf_counter()
    arrived_ns = time.time_ns()
    runtime: Runtime = request.app[RUNTIME]
    state = request.app[PEKAT_STATE]
    query = parse_analyze_query(request.query)
    inspector = runtime.inspector(query.recipe)
    ctx = runtime.context(inspector.name, CAMERA, inputs=_inputs(query))

    received_s = 0.0

    async def receive_body() -> Body:
        nonlocal received_s
        body: Body = await receive(request)
        received_s = time.perf_counter() - t_start
        return body

    async def work(body: Body) -> _Outcome:
        return await runtime.pool.run(
            _job, decoder, body, inspector, ctx, query.response_type, time.perf_counter()
        )

    size = declared_body_bytes(request, state.gate.max_body_bytes) if receive is read_body else 0
    outcome = await state.gate.run(receive_body, work, body_bytes=size)
    timings = {"receive": round(received_s * 1000.0, 3), **outcome.timings_ms}
    return _respond(runtime, state, query, outcome, timings, arrived_ns, t_start)


def _respond(
    runtime: Runtime,
    state: PekatState,
    query: AnalyzeQuery,
    outcome: _Outcome,
    timings_ms: dict[str, float],
    arrived_ns: int,
    t_start: float,
) -> web.Response:
    seq = next(state.seq)
    h, w = outcome.shape_hw
    frame = FrameInfo(
        width=w, height=h, pixel_format=outcome.pixel_format, seq=seq, host_ts=iso_utc(arrived_ns)
    )
    result = build_result(
        outcome.inspection,
        node=runtime.settings.node_id,
        camera=CAMERA,
        seq=seq,
        frame=frame,
        timings_ms=timings_ms,
    )
    runtime.results.add(result)
    runtime.metrics.results.labels(CAMERA, result.recipe, result.verdict).inc()
    runtime.metrics.frames_inspected.labels(CAMERA, result.recipe).inc()
    ctx = _context.pekat_context(
        result, data=query.data, complete_time_s=time.perf_counter() - t_start
    )
    if outcome.png is None:
        return _context.context_response(ctx)
    headers = {"X-Edged-Heatmap": outcome.heatmap_source} if outcome.heatmap_source else None
    return _context.image_response(
        outcome.png, ctx, context_in_body=query.context_in_body, headers=headers
    )


async def analyze_image(request: web.Request) -> web.Response:
    """``POST /analyze_image``: the body is a JPEG or PNG file."""
    _content_type_hint(request)
    max_pixels = request.app[RUNTIME].settings.http.max_pixels

    def decoder(body: Body) -> tuple[np.ndarray, str]:
        return decode_encoded(body, max_pixels=max_pixels)

    return await _analyze(request, decoder)


async def analyze_raw_image(request: web.Request) -> web.Response:
    """``POST /analyze_raw_image?width=W&height=H[&bayer]``: raw BGR, grey or Bayer body."""
    max_pixels = request.app[RUNTIME].settings.http.max_pixels
    width, height = parse_size(request.query, max_pixels=max_pixels)
    bayer = parse_bayer(request.query)

    def decoder(body: Body) -> tuple[np.ndarray, str]:
        return decode_raw(body, width=width, height=height, bayer=bayer)

    return await _analyze(request, decoder)


def is_loopback(remote: str | None) -> bool:
    """True for a client address on this host (127.0.0.0/8, ::1, a Unix socket)."""
    if remote is None or remote == "":
        return True  # Unix-domain socket: same host
    try:
        return ipaddress.ip_address(remote.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


async def analyze_image_shared_memory(request: web.Request) -> web.Response:
    """``POST /analyze_image_shared_memory?width&height&name``: pixels in POSIX shared memory."""
    settings = request.app[RUNTIME].settings.http
    if not settings.shared_memory:
        msg = "shared memory: expected http.shared_memory true, got false (send a raw body)"
        raise ForbiddenError(msg)
    if not is_loopback(request.remote):
        msg = f"shared memory: expected a client on this host, got {request.remote!r}"
        raise ForbiddenError(msg)
    width, height = parse_size(request.query, max_pixels=settings.max_pixels)
    bayer = parse_bayer(request.query)
    names = request.query.getall("name", [])
    if len(names) != 1:
        msg = f"name: expected one shared-memory block name, got {len(names)}"
        raise InputError(msg)
    name = names[0]

    def decoder(_body: Body) -> tuple[np.ndarray, str]:
        return read_shared_memory(name, width=width, height=height, bayer=bayer)

    return await _analyze(request, decoder, receive=_no_body)


async def ping(request: web.Request) -> web.Response:
    """``GET /ping``: 200 while edged serves."""
    return web.Response(text="pong")


async def version(request: web.Request) -> web.Response:
    """``GET /version``: plain text the PEKAT SDK parses (see :func:`version_text`)."""
    shm = request.app[RUNTIME].settings.http.shared_memory
    return web.Response(text=version_text(shm), headers={"X-Edged-Version": __version__})


PEKAT_FAMILY = ApiFamily(
    "PEKAT", plain_error_body, prefixes=("/analyze",), paths=frozenset({"/ping", "/version"})
)
"""PEKAT's errors: ``{"error": reason, "status": code}`` with that HTTP status."""


def setup(app: web.Application) -> None:
    """Register the PEKAT-compatible routes, their state and their error family on ``app``.

    The analyses share the app's analysis gate (installed by the app factory).
    """
    register_family(app, PEKAT_FAMILY)
    app[PEKAT_STATE] = PekatState(gate=app[GATE], seq=itertools.count())
    app.router.add_post("/analyze_image", analyze_image)
    app.router.add_post("/analyze_raw_image", analyze_raw_image)
    app.router.add_post("/analyze_image_shared_memory", analyze_image_shared_memory)
    app.router.add_get("/ping", ping)
    app.router.add_get("/version", version)
