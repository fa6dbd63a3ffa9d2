"""Admin API under ``/api/v1/``: cameras, recipes, results (references: :mod:`._refs`).

Every route wants the API key when one is configured (the app's auth middleware;
``/api/v1/openapi.json`` is public and lives in :mod:`.openapi`). Bodies and answers
are JSON (errors ``{"error", "status"}``); the last frame of a camera comes back as a JPEG.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from edged.core.errors import InputError, NotFoundError
from edged.http._context import json_response
from edged.http._families import ADMIN_FAMILY, register_family
from edged.http._keys import RUNTIME
from edged.http._params import int_param, json_body
from edged.http._refs import ReferenceAdmin
from edged.imaging.render import encode_jpeg
from edged.runtime.shared import CameraControl, Runtime

__all__ = ["PREFIX", "ReferenceAdmin", "setup"]

PREFIX = "/api/v1"
MAX_RESULTS = 50


# ------------------------------------------------------------------ cameras


def _camera_doc(runtime: Runtime, cid: str) -> dict[str, Any]:
    cfg = runtime.settings.cameras.get(cid)
    live: CameraControl | None = runtime.cameras.get(cid)
    latest = runtime.results.latest(cid)
    return {
        "id": cid,
        "running": live is not None,
        "source": cfg.source if cfg else None,
        "recipe": live.recipe if live is not None else (cfg.recipe if cfg else None),
        "state": dataclasses.asdict(live.source_state()) if live is not None else None,
        "details": live.source_details() if live is not None else None,
        "last_result": latest[-1].compact() if latest else None,
        "verdicts": runtime.verdicts.snapshot(cid),
    }


def _known_camera(runtime: Runtime, cid: str) -> None:
    if cid not in runtime.cameras and cid not in runtime.settings.cameras:
        known = sorted(set(runtime.cameras) | set(runtime.settings.cameras))
        msg = f"camera: expected one of {known}, got {cid!r}"
        raise NotFoundError(msg)


async def list_cameras(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    ids = sorted(set(runtime.cameras) | set(runtime.settings.cameras))
    return json_response({"cameras": [_camera_doc(runtime, cid) for cid in ids]})


async def get_camera(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    cid = request.match_info["camera"]
    _known_camera(runtime, cid)
    return json_response(_camera_doc(runtime, cid))


async def camera_frame(request: web.Request) -> web.Response:
    """The camera's last decoded frame as JPEG (404 until it has one)."""
    runtime = request.app[RUNTIME]
    cid = request.match_info["camera"]
    cam = runtime.camera(cid)
    quality = int_param(request, "quality", default=90, low=1, high=100)
    image = cam.last_image()
    if image is None:
        msg = f"camera {cid!r}: expected a frame, got none yet"
        raise NotFoundError(msg)
    jpeg = await runtime.pool.run(encode_jpeg, image, quality=quality)
    return web.Response(body=jpeg, content_type="image/jpeg")


async def trigger_camera(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    cid = request.match_info["camera"]
    await runtime.camera(cid).trigger()
    return json_response({"camera": cid, "triggered": True}, status=202)


async def get_camera_recipe(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    cid = request.match_info["camera"]
    return json_response({"camera": cid, "recipe": runtime.camera(cid).recipe})


async def set_camera_recipe(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    cid = request.match_info["camera"]
    cam = runtime.camera(cid)
    body = await json_body(request)
    recipe = body.get("recipe")
    if not isinstance(recipe, str) or recipe not in runtime.inspectors:
        msg = f"recipe: expected one of {sorted(runtime.inspectors)}, got {recipe!r}"
        raise (NotFoundError if isinstance(recipe, str) else InputError)(msg)
    previous = cam.recipe
    await cam.set_recipe(recipe)
    return json_response({"camera": cid, "recipe": cam.recipe, "previous": previous})


async def teach_camera(request: web.Request) -> web.Response:
    """Teach references from the camera's next ``frames`` frames (body ``{"frames", "recipe"}``)."""
    runtime = request.app[RUNTIME]
    cid = request.match_info["camera"]
    cam = runtime.camera(cid)
    body = await json_body(request)
    frames = body.get("frames", 1)
    if isinstance(frames, bool) or not isinstance(frames, int) or not 1 <= frames <= 1000:
        msg = f"frames: expected an integer in [1, 1000], got {frames!r}"
        raise InputError(msg)
    recipe = body.get("recipe", cam.recipe)
    if not isinstance(recipe, str) or recipe not in runtime.inspectors:
        msg = f"recipe: expected one of {sorted(runtime.inspectors)}, got {recipe!r}"
        raise InputError(msg)
    taught = await cam.teach(recipe, frames)
    return json_response(
        {"camera": cid, "recipe": recipe, "frames": frames, "taught": list(taught)}, status=201
    )


# ------------------------------------------------------------------ recipes


def _recipe_doc(runtime: Runtime, name: str) -> dict[str, Any]:
    insp = runtime.inspectors[name]
    cameras = sorted(cid for cid, cam in runtime.cameras.items() if cam.recipe == name)
    return {
        "name": name,
        "description": insp.recipe.description,
        "checks": list(insp.check_names),
        "options": {k: dict(v or {}) for k, v in insp.recipe.checks.items()},
        "limits": list(insp.recipe.limits),
        "needs_reference": insp.needs_reference,
        "http_default": name == runtime.settings.http_recipe,
        "cameras": cameras,
    }


async def list_recipes(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    docs = [_recipe_doc(runtime, name) for name in sorted(runtime.inspectors)]
    return json_response({"recipes": docs, "http_default": runtime.settings.http_recipe})


async def get_recipe(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    name = request.match_info["recipe"]
    if name not in runtime.inspectors:
        msg = f"recipe: expected one of {sorted(runtime.inspectors)}, got {name!r}"
        raise NotFoundError(msg)
    return json_response(_recipe_doc(runtime, name))


# ------------------------------------------------------------------ results


async def latest_results(request: web.Request) -> web.Response:
    """The newest Result of every camera that has one (HTTP analyses under ``http``)."""
    runtime = request.app[RUNTIME]
    latest = {
        cid: runtime.results.latest(cid)[-1].to_json_dict() for cid in runtime.results.cameras()
    }
    return json_response({"results": latest})


async def camera_results(request: web.Request) -> web.Response:
    """The last ``n`` Results of one camera, oldest first."""
    runtime = request.app[RUNTIME]
    cid = request.match_info["camera"]
    if cid != "http" and cid not in runtime.results.cameras():
        _known_camera(runtime, cid)
    n = int_param(request, "n", default=10, low=1, high=MAX_RESULTS)
    items = [r.to_json_dict() for r in runtime.results.latest(cid, n)]
    return json_response({"camera": cid, "results": items})


def setup(app: web.Application) -> None:
    """Add the camera, recipe and result routes (admin JSON errors; key: the app's)."""
    register_family(app, ADMIN_FAMILY)
    r, p = app.router, PREFIX
    r.add_get(f"{p}/cameras", list_cameras)
    r.add_get(f"{p}/cameras/{{camera}}", get_camera)
    r.add_get(f"{p}/cameras/{{camera}}/frame.jpg", camera_frame)
    r.add_post(f"{p}/cameras/{{camera}}/trigger", trigger_camera)
    r.add_get(f"{p}/cameras/{{camera}}/recipe", get_camera_recipe)
    r.add_put(f"{p}/cameras/{{camera}}/recipe", set_camera_recipe)
    r.add_post(f"{p}/cameras/{{camera}}/teach", teach_camera)
    r.add_get(f"{p}/recipes", list_recipes)
    r.add_get(f"{p}/recipes/{{recipe}}", get_recipe)
    r.add_get(f"{p}/results", latest_results)
    r.add_get(f"{p}/results/{{camera}}", camera_results)
