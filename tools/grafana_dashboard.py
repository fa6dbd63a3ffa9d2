"""Generate configs/grafana-dashboard.json (the edged overview dashboard).

    python tools/grafana_dashboard.py            # rewrite configs/grafana-dashboard.json
    python tools/grafana_dashboard.py --check    # exit 1 when the file is out of date

Import the JSON in Grafana (Dashboards -> New -> Import) and pick the Prometheus
data source. Variables: data source, instance, camera. Every query uses metric
names from edged/runtime/metrics.py (a test checks it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "configs" / "grafana-dashboard.json"
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'instance=~"$instance"'
CAM = 'instance=~"$instance", camera=~"$camera"'
RI = "$__rate_interval"


class _Layout:
    """Places panels left to right on Grafana's 24-column grid."""

    def __init__(self) -> None:
        self.y = 0
        self.x = 0
        self.row_h = 0
        self.next_id = 1
        self.panels: list[dict[str, Any]] = []

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "type": "row",
                "id": self._id(),
                "title": title,
                "collapsed": False,
                "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1},
                "panels": [],
            }
        )
        self.y += 1

    def add(self, panel: dict[str, Any], w: int, h: int) -> None:
        if self.x + w > 24:
            self._newline()
        panel["id"] = self._id()
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)

    def _newline(self) -> None:
        self.y += self.row_h
        self.x = 0
        self.row_h = 0

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def _target(expr: str, legend: str, ref: str = "A", **extra: Any) -> dict[str, Any]:
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref, **extra}


def _timeseries(
    title: str,
    targets: list[dict[str, Any]],
    *,
    unit: str = "short",
    stack: bool = False,
    description: str = "",
) -> dict[str, Any]:
    custom: dict[str, Any] = {"lineWidth": 1, "fillOpacity": 20 if stack else 5}
    if stack:
        custom["stacking"] = {"mode": "normal", "group": "A"}
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit, "custom": custom}, "overrides": []},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def _stat(
    title: str,
    expr: str,
    legend: str,
    *,
    unit: str = "short",
    mappings: list[dict[str, Any]] | None = None,
    thresholds: Sequence[tuple[float | None, str]] | None = None,
    text_mode: str = "auto",
    description: str = "",
) -> dict[str, Any]:
    steps = [{"value": v, "color": c} for v, c in (thresholds or [(None, "green")])]
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": [_target(expr, legend, instant=True)],
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "mappings": mappings or [],
                "thresholds": {"mode": "absolute", "steps": steps},
            },
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
            "textMode": text_mode,
            "justifyMode": "auto",
            "orientation": "auto",
        },
    }


def _updown(up: str, down: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "value",
            "options": {
                "0": {"text": down, "color": "red", "index": 0},
                "1": {"text": up, "color": "green", "index": 1},
            },
        }
    ]


def build() -> dict[str, Any]:
    g = _Layout()
    red_green = [(None, "red"), (1, "green")]

    g.row("Overview")
    g.add(
        _stat(
            "Cameras",
            f"edged_camera_connected{{{CAM}}}",
            "{{camera}}",
            mappings=_updown("UP", "DOWN"),
            thresholds=red_green,
            text_mode="value_and_name",
        ),
        8,
        4,
    )
    g.add(
        _stat(
            "Watchdog",
            f"edged_watchdog_healthy{{{SEL}}}",
            "{{instance}}",
            mappings=_updown("progressing", "STALLED"),
            thresholds=red_green,
            description="1 while the pipeline makes progress or has nothing pending.",
        ),
        4,
        4,
    )
    g.add(
        _stat(
            "MQTT",
            f"edged_mqtt_connected{{{SEL}}}",
            "{{instance}}",
            mappings=_updown("connected", "DISCONNECTED"),
            thresholds=red_green,
        ),
        4,
        4,
    )
    g.add(
        _stat(
            "Outbox",
            f"edged_outbox_messages{{{SEL}}}",
            "{{instance}}",
            thresholds=[(None, "green"), (100, "orange"), (10000, "red")],
            description="Results waiting for the broker.",
        ),
        3,
        4,
    )
    g.add(
        _stat(
            "Uptime",
            f"time() - edged_start_time_seconds{{{SEL}}}",
            "{{instance}}",
            unit="s",
            thresholds=[(None, "orange"), (600, "green")],
        ),
        3,
        4,
    )
    g.add(
        _stat(
            "Version",
            f"edged_build_info{{{SEL}}}",
            "{{version}}",
            text_mode="name",
            thresholds=[(None, "blue")],
        ),
        2,
        4,
    )

    g.row("Frames")
    g.add(
        _timeseries(
            "Frames per second",
            [
                _target(
                    f"sum by (camera) (rate(edged_frames_grabbed_total{{{CAM}}}[{RI}]))",
                    "{{camera}} grabbed",
                    "A",
                ),
                _target(
                    f"sum by (camera) (rate(edged_frames_inspected_total{{{CAM}}}[{RI}]))",
                    "{{camera}} inspected",
                    "B",
                ),
            ],
            unit="fps",
        ),
        8,
        8,
    )
    g.add(
        _timeseries(
            "Dropped frames by reason",
            [
                _target(
                    f"sum by (camera, reason) (rate(edged_frames_dropped_total{{{CAM}}}[{RI}]))",
                    "{{camera}} {{reason}}",
                )
            ],
            unit="fps",
            stack=True,
        ),
        8,
        8,
    )
    g.add(
        _timeseries(
            "Queue depth and reconnects",
            [
                _target(f"edged_queue_depth{{{CAM}}}", "{{camera}} queued", "A"),
                _target(
                    f"increase(edged_camera_reconnects_total{{{CAM}}}[{RI}])",
                    "{{camera}} reconnects",
                    "B",
                ),
            ],
        ),
        8,
        8,
    )

    g.row("Verdicts")
    g.add(
        _timeseries(
            "Results by verdict",
            [
                _target(
                    f"sum by (verdict) (rate(edged_results_total{{{CAM}}}[{RI}]))", "{{verdict}}"
                )
            ],
            unit="ops",
            stack=True,
        ),
        12,
        8,
    )
    g.add(
        _timeseries(
            "Fail rate by camera and recipe",
            [
                _target(
                    f'sum by (camera, recipe) (rate(edged_results_total{{{CAM}, verdict="fail"}}'
                    f"[{RI}])) / sum by (camera, recipe) "
                    f"(rate(edged_results_total{{{CAM}}}[{RI}]))",
                    "{{camera}} {{recipe}}",
                )
            ],
            unit="percentunit",
            description="Share of inspected parts that failed (alert EdgedFailRateHigh: > 20 %).",
        ),
        12,
        8,
    )

    g.row("Latency")
    g.add(
        _timeseries(
            "Frame to broker acknowledgement",
            [
                _target(
                    f"histogram_quantile({q}, sum by (le) "
                    f"(rate(edged_frame_to_publish_seconds_bucket{{{CAM}}}[{RI}])))",
                    f"p{round(q * 100)}",
                    ref,
                )
                for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))
            ],
            unit="s",
        ),
        8,
        8,
    )
    g.add(
        _timeseries(
            "Stage latency p95 (decode, checks, publish)",
            [
                _target(
                    "histogram_quantile(0.95, sum by (stage, le) "
                    f"(rate(edged_stage_seconds_bucket{{{CAM}}}[{RI}])))",
                    "{{stage}}",
                )
            ],
            unit="s",
        ),
        8,
        8,
    )
    g.add(
        {
            "type": "heatmap",
            "title": "Stage latency distribution",
            "datasource": DS,
            "targets": [
                _target(
                    f"sum by (le) (increase(edged_stage_seconds_bucket{{{CAM}}}[{RI}]))",
                    "{{le}}",
                    format="heatmap",
                )
            ],
            "options": {
                "calculate": False,
                "yAxis": {"unit": "s"},
                "color": {"mode": "scheme", "scheme": "Oranges"},
                "cellGap": 1,
            },
            "fieldConfig": {"defaults": {}, "overrides": []},
        },
        8,
        8,
    )

    g.row("Delivery (MQTT)")
    g.add(
        _timeseries(
            "Outbox",
            [
                _target(f"edged_outbox_messages{{{SEL}}}", "messages", "A"),
                _target(f"edged_outbox_oldest_age_seconds{{{SEL}}}", "oldest age (s)", "B"),
            ],
        ),
        12,
        8,
    )
    g.add(
        _timeseries(
            "Publishing",
            [
                _target(f"rate(edged_mqtt_published_total{{{SEL}}}[{RI}])", "acknowledged", "A"),
                _target(f"rate(edged_mqtt_publish_retries_total{{{SEL}}}[{RI}])", "retries", "B"),
                _target(f"rate(edged_mqtt_dead_letter_total{{{SEL}}}[{RI}])", "dead letters", "C"),
                _target(
                    f"sum by (reason) (rate(edged_outbox_dropped_total{{{SEL}}}[{RI}]))",
                    "dropped {{reason}}",
                    "D",
                ),
            ],
            unit="ops",
        ),
        12,
        8,
    )

    g.row("HTTP")
    g.add(
        _timeseries(
            "Requests by route and status",
            [
                _target(
                    f"sum by (route, status) (rate(edged_http_requests_total{{{SEL}}}[{RI}]))",
                    "{{route}} {{status}}",
                )
            ],
            unit="reqps",
        ),
        12,
        8,
    )
    g.add(
        _timeseries(
            "Analyze latency p95",
            [
                _target(
                    "histogram_quantile(0.95, sum by (route, le) "
                    f"(rate(edged_http_analyze_seconds_bucket{{{SEL}}}[{RI}])))",
                    "{{route}}",
                )
            ],
            unit="s",
        ),
        12,
        8,
    )
    g.add(
        _timeseries(
            "Analysis wait queue and refusals",
            [
                _target(f"sum(edged_http_queue_waiting{{{SEL}}})", "waiting"),
                _target(
                    f"sum by (reason) (rate(edged_http_refused_total{{{SEL}}}[{RI}]))",
                    "429 {{reason}} /s",
                    "B",
                ),
            ],
        ),
        12,
        8,
    )
    g.add(
        _timeseries(
            "LTU prepared-reference cache",
            [
                _target(
                    "sum by (result) "
                    f"(rate(edged_http_reference_cache_requests_total{{{SEL}}}[{RI}]))",
                    "{{result}} /s",
                ),
                _target(
                    f"sum(rate(edged_http_reference_cache_evictions_total{{{SEL}}}[{RI}]))",
                    "evictions /s",
                    "B",
                ),
            ],
            unit="reqps",
        ),
        12,
        8,
    )

    g.row("Process")
    g.add(
        _timeseries(
            "CPU and workers",
            [
                _target(f"rate(process_cpu_seconds_total{{{SEL}}}[{RI}])", "CPU cores", "A"),
                _target(f"edged_workers_busy{{{SEL}}}", "workers busy", "B"),
                _target(f"edged_workers{{{SEL}}}", "workers", "C"),
            ],
        ),
        8,
        8,
    )
    g.add(
        _timeseries(
            "Memory",
            [_target(f"process_resident_memory_bytes{{{SEL}}}", "resident")],
            unit="bytes",
        ),
        8,
        8,
    )
    g.add(
        _timeseries(
            "Liveness",
            [
                _target(f"edged_event_loop_lag_seconds{{{SEL}}}", "event loop lag (s)", "A"),
                _target(f"edged_watchdog_stalled_seconds{{{SEL}}}", "longest stall (s)", "B"),
                _target(
                    f"sum by (component) (increase(edged_component_restarts_total{{{SEL}}}[{RI}]))",
                    "restarts {{component}}",
                    "C",
                ),
                _target(
                    f"sum by (result) (increase(edged_config_reloads_total{{{SEL}}}[{RI}]))",
                    "reload {{result}}",
                    "D",
                ),
            ],
        ),
        8,
        8,
    )

    return {
        "uid": "edged-overview",
        "title": "edged — camera lines",
        "description": "Cameras, verdicts, latency and delivery of edged (see docs/operations.md).",
        "tags": ["edged", "machine-vision"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "10s",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "",
        "annotations": {"list": []},
        "links": [],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                },
                {
                    "name": "instance",
                    "label": "Instance",
                    "type": "query",
                    "datasource": DS,
                    "query": {"query": "label_values(edged_build_info, instance)", "refId": "i"},
                    "definition": "label_values(edged_build_info, instance)",
                    "refresh": 2,
                    "includeAll": True,
                    "multi": True,
                    "current": {},
                    "sort": 1,
                },
                {
                    "name": "camera",
                    "label": "Camera",
                    "type": "query",
                    "datasource": DS,
                    "query": {
                        "query": 'label_values(edged_camera_connected{instance=~"$instance"}, '
                        "camera)",
                        "refId": "c",
                    },
                    "definition": 'label_values(edged_camera_connected{instance=~"$instance"}, '
                    "camera)",
                    "refresh": 2,
                    "includeAll": True,
                    "multi": True,
                    "current": {},
                    "sort": 1,
                },
            ]
        },
        "panels": g.panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate configs/grafana-dashboard.json")
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is out of date: run python tools/grafana_dashboard.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
