"""The shipped Prometheus alert rules and Grafana dashboard: valid, and only about metrics
edged really exports."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from edged.runtime.metrics import Metrics

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "configs" / "prometheus-alerts.yml"
ALERT_TESTS = ROOT / "configs" / "prometheus-alerts.test.yml"
DASHBOARD = ROOT / "configs" / "grafana-dashboard.json"
_METRIC_RE = re.compile(r"\b((?:edged|process|python)_[a-z_]+)\b")


def _exported_names() -> set[str]:
    """Every series name a scrape of edged can contain (with type suffixes)."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        base = family.name
        if family.type == "counter":
            names |= {f"{base}_total", f"{base}_created"}
        elif family.type == "histogram":
            names |= {f"{base}_bucket", f"{base}_count", f"{base}_sum", f"{base}_created"}
        elif family.type == "info":
            names.add(f"{base}_info")
        else:
            names.add(base)
    return names


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_alert_rules_structure() -> None:
    doc = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    assert set(doc) == {"groups"}
    for group in doc["groups"]:
        assert set(group) == {"name", "rules"}
        assert group["name"].startswith("edged-")
    rules = _rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
    # What the issue asks for: camera down, no frames, outbox growing, fail rate,
    # and the watchdog / restarts.
    assert {
        "EdgedCameraDown",
        "EdgedNoFrames",
        "EdgedOutboxGrowing",
        "EdgedFailRateHigh",
        "EdgedWatchdogStalled",
        "EdgedRestarting",
    } <= set(names)


def test_alerts_and_dashboard_use_only_exported_metrics() -> None:
    exported = _exported_names()
    used_by_alerts = {m for r in _rules() for m in _METRIC_RE.findall(r["expr"])}
    used_by_dashboard = {
        m
        for panel in _dashboard()["panels"]
        for target in panel.get("targets", [])
        for m in _METRIC_RE.findall(target["expr"])
    }
    assert used_by_alerts - exported == set()
    assert used_by_dashboard - exported == set()
    # The dashboard shows the series the issue lists.
    for name in (
        "edged_frames_grabbed_total",
        "edged_frames_inspected_total",
        "edged_frames_dropped_total",
        "edged_results_total",
        "edged_stage_seconds_bucket",
        "edged_frame_to_publish_seconds_bucket",
        "edged_camera_connected",
        "edged_queue_depth",
        "edged_workers_busy",
        "edged_mqtt_connected",
        "edged_outbox_messages",
        "edged_outbox_oldest_age_seconds",
        "edged_mqtt_publish_retries_total",
        "edged_outbox_dropped_total",
        "edged_http_requests_total",
        "edged_http_analyze_seconds_bucket",
        "edged_build_info",
        "process_resident_memory_bytes",
    ):
        assert name in used_by_dashboard, name


def test_dashboard_layout_and_datasource() -> None:
    dash = _dashboard()
    panels = dash["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in panels:
        pos = p["gridPos"]
        assert pos["x"] >= 0
        assert pos["x"] + pos["w"] <= 24, p["title"]
        mine = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & mine, f"panel {p['title']!r} overlaps another"
        cells |= mine
        for t in p.get("targets", []):
            assert t["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    variables = [v["name"] for v in dash["templating"]["list"]]
    assert variables == ["datasource", "instance", "camera"]
    assert dash["uid"] == "edged-overview"


def test_dashboard_file_is_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location(
        "grafana_dashboard", ROOT / "tools" / "grafana_dashboard.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert DASHBOARD.read_text(encoding="utf-8") == module.render()


promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")


@promtool
def test_promtool_check_rules() -> None:
    p = subprocess.run(
        ["promtool", "check", "rules", str(ALERTS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in p.stdout


@promtool
def test_promtool_alert_unit_tests() -> None:
    p = subprocess.run(
        ["promtool", "test", "rules", str(ALERT_TESTS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SUCCESS" in p.stdout
