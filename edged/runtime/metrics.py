"""Prometheus metrics: every series edged exports, on a registry of its own.

One :class:`Metrics` object per daemon (tests create as many as they like; nothing
is registered at import time). Label values are bounded: camera ids, recipe names,
check names, verdicts, fixed reason words and HTTP route templates — never frame
ids or free text.
"""

from __future__ import annotations

import platform
import time

import cv2
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from edged._version import __version__

# Latency buckets from 1 ms to 10 s: inspection stages and end-to-end delivery.
_LATENCY_BUCKETS_S = (
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1,
    0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Reasons a frame is dropped (bounded label values).
DROP_QUEUE_FULL = "queue_full"
DROP_INCOMPLETE = "incomplete_buffer"
DROP_DECODE = "decode_error"
DROP_SHUTDOWN = "shutdown"


class Metrics:
    """All of edged's metrics, registered on ``self.registry``."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.build_info = Info("edged_build", "edged build information", registry=r)
        self.build_info.info(
            {
                "version": __version__,
                "python": platform.python_version(),
                "opencv": cv2.__version__,
            }
        )
        self.start_time = Gauge(
            "edged_start_time_seconds", "Unix time the daemon started", registry=r
        )
        self.start_time.set(time.time())
        # ---- frames
        self.frames_grabbed = Counter(
            "edged_frames_grabbed_total", "Frames received from a camera", ["camera"], registry=r
        )
        self.frames_inspected = Counter(
            "edged_frames_inspected_total",
            "Frames inspected",
            ["camera", "recipe"],
            registry=r,
        )
        self.frames_dropped = Counter(
            "edged_frames_dropped_total",
            "Frames dropped before inspection, by reason",
            ["camera", "reason"],
            registry=r,
        )
        self.results = Counter(
            "edged_results_total",
            "Inspection results by verdict",
            ["camera", "recipe", "verdict"],
            registry=r,
        )
        # ---- latency
        self.stage_seconds = Histogram(
            "edged_stage_seconds",
            "Time spent per pipeline stage (acquire, decode, check.<name>, publish)",
            ["camera", "stage"],
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.end_to_end_seconds = Histogram(
            "edged_frame_to_publish_seconds",
            "From a frame reaching edged to its result being acknowledged by the broker",
            ["camera"],
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        # ---- cameras and queues
        self.camera_connected = Gauge(
            "edged_camera_connected", "1 when the camera delivers frames", ["camera"], registry=r
        )
        self.camera_failed = Gauge(
            "edged_camera_failed",
            "1 when a camera stopped for a configuration error (see its state's last_error)",
            ["camera"],
            registry=r,
        )
        self.camera_reconnects = Counter(
            "edged_camera_reconnects_total", "Camera re-opens after a fault", ["camera"], registry=r
        )
        self.camera_fps = Gauge(
            "edged_camera_fps", "Frames per second received recently", ["camera"], registry=r
        )
        self.queue_depth = Gauge(
            "edged_queue_depth", "Frames waiting for inspection", ["camera"], registry=r
        )
        self.component_restarts = Counter(
            "edged_component_restarts_total",
            "Supervised tasks restarted after a crash",
            ["component"],
            registry=r,
        )
        self.workers_busy = Gauge(
            "edged_workers_busy", "Inspection workers running a job", registry=r
        )
        self.workers_total = Gauge("edged_workers", "Inspection worker threads", registry=r)
        self.last_frame_time = Gauge(
            "edged_last_frame_time_seconds",
            "Unix time of the last frame received",
            ["camera"],
            registry=r,
        )
        # ---- liveness (systemd watchdog) and configuration reloads
        self.watchdog_healthy = Gauge(
            "edged_watchdog_healthy",
            "1 while the pipeline makes progress or has nothing pending (WATCHDOG=1 is sent)",
            registry=r,
        )
        self.watchdog_stalled_seconds = Gauge(
            "edged_watchdog_stalled_seconds",
            "Longest time a lane with pending work has made no progress",
            registry=r,
        )
        self.event_loop_lag_seconds = Gauge(
            "edged_event_loop_lag_seconds",
            "How late the heartbeat task last woke up (a busy or blocked event loop)",
            registry=r,
        )
        self.config_reloads = Counter(
            "edged_config_reloads_total",
            "Configuration reloads (SIGHUP) by result: applied or rejected",
            ["result"],
            registry=r,
        )
        self.config_last_reload_successful = Gauge(
            "edged_config_last_reload_successful",
            "1 when the last configuration reload was applied (or none was tried), 0 when rejected",
            registry=r,
        )
        self.config_last_reload_successful.set(1)
        for result in ("applied", "rejected"):
            self.config_reloads.labels(result)
        # ---- MQTT
        self.mqtt_connected = Gauge(
            "edged_mqtt_connected", "1 while connected to the broker", registry=r
        )
        self.mqtt_images = Counter(
            "edged_mqtt_images_total",
            "Annotated part images for the MQTT image topic by outcome: sent, "
            "not_connected (dropped, best effort), too_large (over mqtt.image.max_bytes)",
            ["camera", "outcome"],
            registry=r,
        )
        self.mqtt_connects = Counter(
            "edged_mqtt_connects_total", "Connections to the broker that came up", registry=r
        )
        self.mqtt_disconnects = Counter(
            "edged_mqtt_disconnects_total", "Broker connections that ended", registry=r
        )
        self.mqtt_client_id_clash = Gauge(
            "edged_mqtt_client_id_clash",
            "1 while connections keep ending right after they start: another client is "
            "probably using edged's MQTT client id (two stations with one node_id)",
            registry=r,
        )
        self.mqtt_changed_time = Gauge(
            "edged_mqtt_connection_changed_time_seconds",
            "Unix time the broker connection last came up or went down (0: never)",
            registry=r,
        )
        self.outbox_depth = Gauge(
            "edged_outbox_messages", "Messages waiting in the durable outbox", registry=r
        )
        self.outbox_oldest_age = Gauge(
            "edged_outbox_oldest_age_seconds", "Age of the oldest message in the outbox", registry=r
        )
        self.publish_retries = Counter(
            "edged_mqtt_publish_retries_total", "Messages sent again after a reconnect", registry=r
        )
        self.outbox_dropped = Counter(
            "edged_outbox_dropped_total",
            "Messages dropped by the outbox cap, by reason",
            ["reason"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "edged_mqtt_dead_letter_total",
            "Messages the broker rejected (PUBACK reason >= 0x80)",
            registry=r,
        )
        self.published = Counter(
            "edged_mqtt_published_total", "Messages acknowledged by the broker", registry=r
        )
        self.results_not_durable = Counter(
            "edged_results_not_durable_total",
            "Results the outbox could not store: published live (broker up) or lost",
            ["outcome"],
            registry=r,
        )
        self.outbox_writable = Gauge(
            "edged_outbox_writable", "0 while the outbox cannot be written (disk full?)", registry=r
        )
        self.outbox_damaged = Counter(
            "edged_outbox_damaged_total",
            "Damaged outbox databases moved aside at start (kept for inspection)",
            registry=r,
        )
        self.state_dir_free_bytes = Gauge(
            "edged_state_dir_free_bytes", "Free bytes on the state_dir filesystem", registry=r
        )
        self.state_dir_low_space = Gauge(
            "edged_state_dir_low_space",
            "1 while state_dir has less free space than mqtt.state_dir_min_free_bytes",
            registry=r,
        )
        self.commands_refused = Counter(
            "edged_mqtt_commands_refused_total",
            "MQTT commands refused or failed, by reason (bad_token, replay, stale, ...)",
            ["reason"],
            registry=r,
        )
        # ---- HTTP
        self.http_requests = Counter(
            "edged_http_requests_total",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=r,
        )
        self.http_connections_refused = Counter(
            "edged_http_connections_refused_total",
            "HTTP connections refused (503) at the http.max_connections cap",
            registry=r,
        )
        self.analyze_seconds = Histogram(
            "edged_http_analyze_seconds",
            "Analyze request latency",
            ["route"],
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )

        self.http_queue_waiting = Gauge(
            "edged_http_queue_waiting",
            "Analysis requests waiting in line for a slot (http.queue_depth bounds it)",
            registry=r,
        )
        self.http_queue_wait_seconds = Histogram(
            "edged_http_queue_wait_seconds",
            "Time an analysis request waited in line before it got a slot",
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.http_refused = Counter(
            "edged_http_refused_total",
            "Analysis requests refused with 429 (reason: queue_full, queue_timeout, body_budget)",
            ["reason"],
            registry=r,
        )

        self.reference_cache_requests = Counter(
            "edged_http_reference_cache_requests_total",
            "LTU comparison requests by whether their reference was already prepared "
            "(result: hit, miss)",
            ["result"],
            registry=r,
        )
        self.reference_cache_evictions = Counter(
            "edged_http_reference_cache_evictions_total",
            "Prepared references dropped to stay within the cache's bounds",
            registry=r,
        )
        self.reference_cache_entries = Gauge(
            "edged_http_reference_cache_entries", "Prepared references kept", registry=r
        )
        self.reference_cache_bytes = Gauge(
            "edged_http_reference_cache_bytes", "Bytes held by the kept references", registry=r
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
