"""Admin API for the reference store: list, teach from uploaded images, roll back, delete.

The store itself (``edged/references.py``) is another module's; these handlers
need only :class:`ReferenceAdmin` from it. Without a store (``runtime.references``
is None) every route answers 503 "no reference store configured".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np
from aiohttp import BodyPartReader, web

from edged.core.errors import InputError, NotFoundError, TooLargeError
from edged.http._context import json_response
from edged.http._decode import decode_encoded
from edged.http._errors import UnavailableError
from edged.http._families import ADMIN_FAMILY, register_family
from edged.http._gate import gated
from edged.http._keys import RUNTIME
from edged.http._params import ClientGoneError, int_param, json_body, read_all
from edged.imaging.render import encode_jpeg
from edged.references import MAX_IMAGES, parse_version
from edged.runtime.shared import Runtime

MAX_TEACH_IMAGES = 64


@runtime_checkable
class ReferenceAdmin(Protocol):
    """What the admin API needs from the reference store.

    Methods are called from a worker thread and may block (disk, image work). They
    raise :class:`~edged.core.errors.NotFoundError` for an unknown recipe/camera/version
    and :class:`~edged.core.errors.InputError` for unusable images.
    """

    def entries(self) -> Sequence[Mapping[str, Any]]:
        """One JSON mapping per (recipe, camera) with references::

        {"recipe": str, "camera": str, "active": version | None,
         "versions": [{"version": str, "created": ISO 8601 str, "images": int, ...}]}
        """

    def teach(self, recipe: str, camera: str, images: Sequence[np.ndarray]) -> str:
        """Store ``images`` (each ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR) as a new
        version for ``recipe`` and ``camera``, make it active, return its version id."""

    def rollback(self, recipe: str, camera: str, version: str | None = None) -> str:
        """Make ``version`` active (None: the one before the active); return it."""

    def delete(self, recipe: str, camera: str, version: str | None = None) -> None:
        """Delete one version, or every version of ``recipe`` and ``camera`` (None)."""


@runtime_checkable
class ReferenceImages(Protocol):
    """A store that can show its stored images (for thumbnails)."""

    def image(self, recipe: str, camera: str, version: int, index: int = 0) -> np.ndarray:
        """Image ``index`` of ``version``: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR."""


THUMB_WIDTH_PX = 320
MAX_THUMB_WIDTH_PX = 4096


def _store(runtime: Runtime) -> ReferenceAdmin:
    refs = runtime.references
    if refs is None:
        msg = "no reference store configured"
        raise UnavailableError(msg)
    if not isinstance(refs, ReferenceAdmin):
        msg = "the configured reference store cannot be administered over HTTP"
        raise UnavailableError(msg)
    return refs


def _target(request: web.Request) -> tuple[Runtime, ReferenceAdmin, str, str]:
    """Runtime, store, and the validated recipe and camera of the path."""
    runtime = request.app[RUNTIME]
    store = _store(runtime)
    recipe, camera = request.match_info["recipe"], request.match_info["camera"]
    if recipe not in runtime.inspectors:
        msg = f"recipe: expected one of {sorted(runtime.inspectors)}, got {recipe!r}"
        raise NotFoundError(msg)
    cameras = sorted({"http", *runtime.settings.cameras, *runtime.cameras})
    if camera not in cameras:
        msg = f"camera: expected one of {cameras}, got {camera!r}"
        raise NotFoundError(msg)
    return runtime, store, recipe, camera


def _filter(entries: Sequence[Mapping[str, Any]], **want: str) -> list[dict[str, Any]]:
    return [
        dict(e) for e in entries if all(e.get(k) == v for k, v in want.items() if v is not None)
    ]


async def list_references(request: web.Request) -> web.Response:
    """Every (recipe, camera) with its versions; ``?recipe=`` and ``?camera=`` filter."""
    runtime = request.app[RUNTIME]
    store = _store(runtime)
    entries = await runtime.pool.run(store.entries)
    want = {k: request.query[k] for k in ("recipe", "camera") if k in request.query}
    return json_response({"references": _filter(entries, **want)})


async def get_references(request: web.Request) -> web.Response:
    runtime, store, recipe, camera = _target(request)
    entries = _filter(await runtime.pool.run(store.entries), recipe=recipe, camera=camera)
    if not entries:
        msg = f"references: expected some for recipe {recipe!r} and camera {camera!r}, got none"
        raise NotFoundError(msg)
    return json_response(entries[0])


async def _uploaded_files(request: web.Request, limit: int) -> list[bytes]:
    """The image files of the request: the body itself, or each multipart file part."""
    if not request.content_type.startswith("multipart/"):
        return [await read_all(request)]
    try:
        return await _multipart_files(request, limit)
    except ConnectionError as exc:
        msg = "request body: expected all of it, got a connection closed part-way"
        raise ClientGoneError(msg) from exc


async def _multipart_files(request: web.Request, limit: int) -> list[bytes]:
    files: list[bytes] = []
    total = 0
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            msg = "multipart: expected file parts, got a nested multipart"
            raise InputError(msg)
        chunks: list[bytes] = []
        while chunk := await part.read_chunk(256 * 1024):
            total += len(chunk)
            if total > limit:
                msg = f"request body: expected at most {limit} bytes (http.max_body_bytes)"
                raise TooLargeError(msg)
            chunks.append(chunk)
        if part.filename is None and part.name not in ("image", "images", "file"):
            continue  # a plain form field
        files.append(b"".join(chunks))
        if len(files) > MAX_TEACH_IMAGES:
            msg = f"images: expected at most {MAX_TEACH_IMAGES} per upload, got more"
            raise InputError(msg)
    return files


def _decode_all(files: list[bytes], max_pixels: int) -> list[np.ndarray]:
    images = []
    for i, data in enumerate(files):
        try:
            images.append(decode_encoded(data, max_pixels=max_pixels)[0])
        except (InputError, TooLargeError) as exc:
            msg = f"image {i + 1} of {len(files)}: {exc}"
            raise type(exc)(msg) from exc
    return images


async def teach_references(request: web.Request) -> web.Response:
    """Upload one image (JPEG/PNG body) or several (multipart file parts) as a new version."""
    runtime, store, recipe, camera = _target(request)
    http = runtime.settings.http

    async def receive() -> list[bytes]:
        return await _uploaded_files(request, http.max_body_bytes)

    async def work(files: list[bytes]) -> tuple[str, int]:
        if not files or not any(files):
            msg = "images: expected at least one JPEG or PNG file, got none"
            raise InputError(msg)
        images = await runtime.pool.run(_decode_all, files, http.max_pixels)
        return await runtime.pool.run(store.teach, recipe, camera, images), len(images)

    # decoding and preparing a reference are pixel work: under the analysis gate
    version, count = await gated(request, receive, work)
    body = {"recipe": recipe, "camera": camera, "version": version, "images": count}
    return json_response(body, status=201)


async def rollback_references(request: web.Request) -> web.Response:
    """Activate ``{"version": ...}`` from the body, or the version before the active one."""
    runtime, store, recipe, camera = _target(request)
    body = await json_body(request)
    version = body.get("version")
    if version is not None and not isinstance(version, str):
        msg = f"version: expected a version id string or nothing, got {version!r}"
        raise InputError(msg)
    active = await runtime.pool.run(store.rollback, recipe, camera, version)
    return json_response({"recipe": recipe, "camera": camera, "active": active})


async def delete_references(request: web.Request) -> web.Response:
    """Delete one version (``.../{version}``) or all of a recipe and camera."""
    runtime, store, recipe, camera = _target(request)
    version = request.match_info.get("version")
    await runtime.pool.run(store.delete, recipe, camera, version)
    return json_response({"recipe": recipe, "camera": camera, "deleted": version or "all"})


def _thumbnail(image: np.ndarray, width_px: int) -> bytes:
    h, w = image.shape[:2]
    if w > width_px:
        image = cv2.resize(
            image, (width_px, max(1, round(h * width_px / w))), interpolation=cv2.INTER_AREA
        )
    return encode_jpeg(image, quality=85)


async def reference_image(request: web.Request) -> web.Response:
    """One stored image of a version as JPEG: ``?index=`` (default 0), ``?width=`` in
    pixels (default 320, a thumbnail; larger images are scaled down, never up)."""
    runtime, store, recipe, camera = _target(request)
    if not isinstance(store, ReferenceImages):
        msg = "the configured reference store cannot show its images"
        raise UnavailableError(msg)
    version = parse_version(request.match_info["version"]) or 0
    index = int_param(request, "index", default=0, low=0, high=MAX_IMAGES - 1)
    width = int_param(request, "width", default=THUMB_WIDTH_PX, low=16, high=MAX_THUMB_WIDTH_PX)
    image = await runtime.pool.run(store.image, recipe, camera, version, index)
    jpeg = await runtime.pool.run(_thumbnail, image, width)
    return web.Response(body=jpeg, content_type="image/jpeg")


PREFIX = "/api/v1/references"


def setup(app: web.Application) -> None:
    """Add the reference admin routes (admin JSON errors, the API key is the app's)."""
    register_family(app, ADMIN_FAMILY)
    r, base = app.router, PREFIX
    r.add_get(base, list_references)
    r.add_get(f"{base}/{{recipe}}/{{camera}}", get_references)
    r.add_post(f"{base}/{{recipe}}/{{camera}}", teach_references)
    r.add_post(f"{base}/{{recipe}}/{{camera}}/rollback", rollback_references)
    r.add_delete(f"{base}/{{recipe}}/{{camera}}", delete_references)
    r.add_delete(f"{base}/{{recipe}}/{{camera}}/{{version}}", delete_references)
    r.add_get(f"{base}/{{recipe}}/{{camera}}/{{version}}/image.jpg", reference_image)
