"""`edged run` as systemd runs it: a real process, NOTIFY_SOCKET, WATCHDOG_USEC,
/metrics scraped while the synthetic line runs, SIGHUP, SIGTERM, JSON logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _ops_helpers import NotifyListener
from conftest import free_port
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def _doc(port: int, limits: list[str]) -> dict[str, Any]:
    return {
        "node_id": "svc",
        "cameras": {
            "cam1": {
                "recipe": "plain",
                "fps": 30,
                "synthetic": {"width": 192, "height": 128, "pixel_format": "BayerRG8"},
            }
        },
        "recipes": {"plain": {"checks": {"quality": {}}, "limits": limits}},
        "mqtt": {"enabled": False},
        "http": {"port": port},
        "logging": {"format": "json"},
        "pipeline": {"watchdog_stall_s": 10},
    }


@pytest.mark.slow
def test_service_lifecycle_metrics_reload_and_stop(
    tmp_path: Path, write_config: Callable[[dict[str, Any]], Path]
) -> None:
    port = free_port()
    path = write_config(_doc(port, []))
    listener = NotifyListener(tmp_path / "notify.sock")
    env = {
        **os.environ,
        "NOTIFY_SOCKET": listener.address,
        "WATCHDOG_USEC": "1000000",  # heartbeat every 0.5 s
        "PYTHONPATH": str(ROOT),
    }
    env.pop("JOURNAL_STREAM", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edged", "run", "--config", str(path)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = listener.wait_for(lambda m: "READY" in m, timeout_s=30)
        assert ready["STATUS"].startswith("1/1 cameras up (cam1 ")
        c = ("camera", "cam1")
        first = _scrape(port)
        time.sleep(1.0)
        second = _scrape(port)
        for name in ("edged_frames_grabbed_total", "edged_frames_inspected_total"):
            key = next(k for k in second if k[0] == name and c in k[1])
            assert second[key] > first.get(key, 0.0), name
        passed = ("edged_results_total", (c, ("recipe", "plain"), ("verdict", "pass")))
        assert second[passed] > first.get(passed, 0.0)
        decode = ("edged_stage_seconds_count", (c, ("stage", "decode")))
        assert second[decode] > first.get(decode, 0.0)
        queued = ("edged_stage_seconds_count", (c, ("stage", "queue")))
        assert second[queued] > first.get(queued, 0.0)
        assert (
            second[("edged_stage_seconds_bucket", (c, ("le", "+Inf"), ("stage", "decode")))]
            == (second[decode])
        )
        assert second[("edged_watchdog_healthy", ())] == 1.0
        assert second[("edged_workers", ())] == 2.0
        assert any(k[0] == "process_resident_memory_bytes" for k in second)
        build = next(k for k in second if k[0] == "edged_build_info")
        assert dict(build[1])["version"]
        # The watchdog beats while frames flow.
        listener.wait_for(lambda m: "WATCHDOG" in m)

        # SIGHUP: a new limit no frame can meet makes every next verdict fail.
        write_config(_doc(port, ["quality.brightness.l_mean < 0"]))
        proc.send_signal(signal.SIGHUP)
        listener.wait_for(lambda m: "RELOADING" in m)
        fail = ("edged_results_total", (c, ("recipe", "plain"), ("verdict", "fail")))
        deadline = time.monotonic() + 10
        while _scrape(port).get(fail, 0.0) < 5:
            assert time.monotonic() < deadline, "verdicts did not follow the reload"
            time.sleep(0.1)
        assert _scrape(port)[("edged_config_reloads_total", (("result", "applied"),))] == 1.0

        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        listener.close()
    _, err = proc.communicate()
    assert code == 0, err
    kinds = [
        k for _, m in listener.snapshot() for k in ("READY", "RELOADING", "STOPPING") if k in m
    ]
    assert kinds == ["READY", "RELOADING", "READY", "STOPPING"]
    # Every stderr line is one JSON event.
    events = [json.loads(line) for line in err.splitlines()]
    msgs = [e["msg"] for e in events]
    assert any(m.startswith("edged started: node svc, 1 camera(s)") for m in msgs)
    assert any(m.startswith("config reloaded from ") for m in msgs)
    assert msgs[-1] == "edged stopped"
    assert {e["level"] for e in events} <= {"INFO", "WARNING"}
