"""Admin API for the station's state: kept failed parts and health, under ``/api/v1/``.

- ``GET /api/v1/failures[?camera=&n=]``: the kept failed parts, newest first
  (:mod:`edged.runtime.failures`; none, ``"enabled": false``, when ``failures.enabled``
  is false);
- ``GET /api/v1/failures/{camera}/{id}``: one part's Result JSON;
- ``GET /api/v1/failures/{camera}/{id}/image.jpg``: its annotated JPEG;
- ``GET /api/v1/health``: MQTT, outbox, dead letters, workers and queues, watchdog —
  read from the same metrics ``/metrics`` exports, so the page and Prometheus agree.

Every route wants the API key when one is configured (the app's auth middleware).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from edged._version import __version__
from edged.core.errors import NotFoundError
from edged.core.result import iso_utc
from edged.http._context import json_response
from edged.http._families import ADMIN_FAMILY, register_family
from edged.http._keys import RUNTIME
from edged.http._params import int_param
from edged.runtime.failures import FailureRing
from edged.runtime.shared import Runtime

PREFIX = "/api/v1"
MAX_LISTED = 500


def _ring(runtime: Runtime) -> FailureRing:
    if runtime.failures is None:
        msg = "failed part: expected a kept one, got none (failures.enabled is false)"
        raise NotFoundError(msg)
    return runtime.failures


def _known_camera(runtime: Runtime, camera: str, ring: FailureRing) -> None:
    known = set(runtime.settings.cameras) | set(runtime.cameras) | set(ring.cameras())
    if camera not in known:
        msg = f"camera: expected one of {sorted(known)}, got {camera!r}"
        raise NotFoundError(msg)


async def list_failures(request: web.Request) -> web.Response:
    """The kept failed parts, newest first: ``?camera=`` one camera, ``?n=`` how many."""
    runtime = request.app[RUNTIME]
    ring = runtime.failures
    camera = request.query.get("camera")
    n = int_param(request, "n", default=50, low=1, high=MAX_LISTED)
    if ring is None:  # failures.enabled is false: nothing is kept
        return json_response({"failures": [], "enabled": False, "bytes": 0,
                              "keep_per_camera": 0, "max_bytes": 0})  # fmt: skip
    if camera is not None:
        _known_camera(runtime, camera, ring)
    parts = ring.parts(camera, n)
    return json_response(
        {
            "failures": [p.to_dict() for p in parts],
            "enabled": True,
            "bytes": ring.total_bytes,
            "keep_per_camera": ring.keep_per_camera,
            "max_bytes": ring.max_bytes,
        }
    )


async def get_failure(request: web.Request) -> web.Response:
    """One kept part's Result JSON."""
    runtime = request.app[RUNTIME]
    ring = _ring(runtime)
    camera, part_id = request.match_info["camera"], request.match_info["id"]
    _known_camera(runtime, camera, ring)
    doc = await asyncio.to_thread(ring.result, camera, part_id)
    return json_response(doc)


async def failure_image(request: web.Request) -> web.Response:
    """One kept part's annotated JPEG (defect boxes and labels drawn in)."""
    runtime = request.app[RUNTIME]
    ring = _ring(runtime)
    camera, part_id = request.match_info["camera"], request.match_info["id"]
    _known_camera(runtime, camera, ring)
    jpeg = await asyncio.to_thread(ring.image, camera, part_id)
    return web.Response(body=jpeg, content_type="image/jpeg")


# ------------------------------------------------------------------ health


def _sample(runtime: Runtime, name: str, **labels: str) -> float | None:
    return runtime.metrics.registry.get_sample_value(name, labels)


def _mqtt(runtime: Runtime) -> dict[str, Any]:
    cfg = runtime.settings.mqtt
    if not cfg.enabled:
        return {"enabled": False}
    changed = _sample(runtime, "edged_mqtt_connection_changed_time_seconds") or 0.0
    return {
        "enabled": True,
        "broker": f"{cfg.host}:{cfg.port}",
        "connected": _sample(runtime, "edged_mqtt_connected") == 1.0,
        "since": iso_utc(round(changed * 1000) * 1_000_000) if changed > 0 else None,
        "outbox": int(_sample(runtime, "edged_outbox_messages") or 0),
        "outbox_oldest_age_s": round(_sample(runtime, "edged_outbox_oldest_age_seconds") or 0, 3),
        "dead_letters": int(_sample(runtime, "edged_mqtt_dead_letter_total") or 0),
        "published": int(_sample(runtime, "edged_mqtt_published_total") or 0),
        "retries": int(_sample(runtime, "edged_mqtt_publish_retries_total") or 0),
    }


def health_doc(runtime: Runtime) -> dict[str, Any]:
    """The station's health as JSON: every figure is one ``/metrics`` also exports."""
    cameras = sorted(set(runtime.cameras) | set(runtime.settings.cameras))
    queues = {cid: int(_sample(runtime, "edged_queue_depth", camera=cid) or 0) for cid in cameras}
    started = _sample(runtime, "edged_start_time_seconds") or time.time()
    ring = runtime.failures
    return {
        "node": runtime.settings.node_id,
        "version": __version__,
        "ready": runtime.health.ready,
        "components": dict(runtime.health.components),
        "uptime_s": round(max(0.0, time.time() - started), 1),
        "mqtt": _mqtt(runtime),
        "workers": {
            "total": int(_sample(runtime, "edged_workers") or runtime.pool.workers),
            "busy": int(_sample(runtime, "edged_workers_busy") or 0),
            "queues": queues,
        },
        "watchdog": {
            "healthy": _sample(runtime, "edged_watchdog_healthy") != 0.0,
            "stalled_s": round(_sample(runtime, "edged_watchdog_stalled_seconds") or 0.0, 3),
            "event_loop_lag_s": round(_sample(runtime, "edged_event_loop_lag_seconds") or 0, 4),
        },
        "failures": None
        if ring is None
        else {"kept": len(ring.parts()), "bytes": ring.total_bytes, "max_bytes": ring.max_bytes},
    }


async def health(request: web.Request) -> web.Response:
    """``GET /api/v1/health``: see :func:`health_doc`."""
    return json_response(health_doc(request.app[RUNTIME]))


def setup(app: web.Application) -> None:
    """Add the failed-part and health routes (admin JSON errors; key: the app's)."""
    register_family(app, ADMIN_FAMILY)
    r, p = app.router, PREFIX
    r.add_get(f"{p}/failures", list_failures)
    r.add_get(f"{p}/failures/{{camera}}/{{id}}", get_failure)
    r.add_get(f"{p}/failures/{{camera}}/{{id}}/image.jpg", failure_image)
    r.add_get(f"{p}/health", health)
