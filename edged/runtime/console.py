"""The periodic one-line console summary: what a person watching the terminal sees.

Every ``logging.summary_interval_s`` seconds edged logs one line (logger
``edged.summary``), e.g.::

    line1: 1500 frames, 1190 pass, 300 fail, 10 error, 5.0 fps; mqtt connected, backlog 0

Under systemd (``$NOTIFY_SOCKET`` or ``$JOURNAL_STREAM`` set) it stays quiet: the
service status (``STATUS=``, :mod:`edged.runtime.status`) carries the same figures
without filling the journal. Read from the Runtime and its metrics only (no I/O).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from edged.runtime.shared import Runtime

log = logging.getLogger("edged.summary")


def under_systemd(environ: Mapping[str, str]) -> bool:
    """True when started by systemd (a notify socket or the journal on stdout/stderr)."""
    return bool(environ.get("NOTIFY_SOCKET") or environ.get("JOURNAL_STREAM"))


def _camera_part(runtime: Runtime, camera: str) -> str:
    totals = runtime.verdicts.snapshot(camera)["total"]
    live = runtime.cameras.get(camera)
    if live is None:
        return f"{camera}: not running"
    st = live.source_state()
    text = (
        f"{camera}: {st.frames} frames, {totals['pass']} pass, {totals['fail']} fail, "
        f"{totals['error']} error, {st.fps:.1f} fps"
    )
    if st.dropped:
        text += f", {st.dropped} dropped"
    if not st.connected:
        text += f", DOWN ({st.last_error or 'not connected'})"
    return text


def _mqtt_part(runtime: Runtime) -> str:
    if not runtime.settings.mqtt.enabled:
        return "mqtt off"
    registry = runtime.metrics.registry
    connected = registry.get_sample_value("edged_mqtt_connected") == 1.0
    backlog = int(registry.get_sample_value("edged_outbox_messages") or 0)
    return f"mqtt {'connected' if connected else 'DISCONNECTED'}, backlog {backlog}"


def console_line(runtime: Runtime) -> str:
    """One line: per camera frames, verdicts, fps (and why it is down); MQTT and backlog."""
    cameras = sorted(runtime.cameras) or sorted(runtime.settings.cameras)
    parts = [_camera_part(runtime, cid) for cid in cameras] or ["no cameras"]
    return "; ".join([*parts, _mqtt_part(runtime)])


IDLE_CHECK_S = 5.0
"""While the summary is off (interval 0), how often to look whether a reload turned it on."""


async def run_console_summary(runtime: Runtime) -> None:
    """Supervised: log :func:`console_line` every ``logging.summary_interval_s`` seconds
    of the running settings (a SIGHUP reload changes it live; 0 turns it off)."""
    while True:
        interval_s = runtime.settings.logging.summary_interval_s
        if interval_s <= 0:
            await asyncio.sleep(IDLE_CHECK_S)
            continue
        await asyncio.sleep(interval_s)
        if runtime.settings.logging.summary_interval_s > 0:
            log.info("%s", console_line(runtime))
