"""The command line, run as users run it: a real process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import free_port

ROOT = Path(__file__).parent.parent


def edged(*args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "edged", *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, **kw,
    )  # fmt: skip


GOOD = {
    "cameras": {"c1": {"recipe": "plain", "fps": 20, "synthetic": {"width": 320, "height": 240}}},
    "recipes": {"plain": {}},
    "mqtt": {"enabled": False},
}


def test_check_config_ok(write_config) -> None:
    p = edged("check-config", "--config", str(write_config(GOOD)))
    assert p.returncode == 0, p.stdout + p.stderr
    # node_id defaults to the host name (two stations must not share MQTT topics)
    host = socket.gethostname().split(".")[0]
    assert f"OK (node {host}, 1 camera(s), 1 recipe(s))" in p.stdout


def test_default_node_id_is_a_valid_name_from_the_host_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from edged import config

    monkeypatch.setattr(config.socket, "gethostname", lambda: "Line 3 PC.plant.local")
    assert config.default_node_id() == "Line-3-PC"
    monkeypatch.setattr(config.socket, "gethostname", lambda: "")
    assert config.default_node_id() == "edge-1"
    monkeypatch.setattr(config.socket, "gethostname", lambda: "x" * 80)
    assert config.Settings().node_id == "x" * 64


@pytest.mark.parametrize(
    ("camera", "expected"),
    [
        ({"recipe": "plain", "fsp": 5}, "cameras.c1.fsp: unknown key"),
        ({"recipe": "plain", "fps": "fast"}, "cameras.c1.fps: Input should be a valid number"),
        ({"recipe": "plain", "fps": -2}, "cameras.c1.fps: Input should be greater than 0 (got -2)"),
    ],
)
def test_check_config_rejects_with_key_path(write_config, camera, expected) -> None:  # type: ignore[no-untyped-def]
    p = edged("check-config", "--config", str(write_config({**GOOD, "cameras": {"c1": camera}})))
    assert p.returncode == 1
    assert expected in p.stdout


def test_run_refuses_bad_config_with_one_line(write_config) -> None:
    p = edged("run", "--config", str(write_config({**GOOD, "mqtt": {"port": -1}})))
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("edged: cannot start: invalid config")
    assert "mqtt.port" in lines[0]


def test_run_serves_and_exits_zero_on_sigterm(write_config) -> None:
    port = free_port()
    cfg = write_config({**GOOD, "http": {"port": port}, "pipeline": {"shutdown_grace_s": 5}})
    proc = subprocess.Popen(
        [sys.executable, "-m", "edged", "run", "--config", str(cfg)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        metrics = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    metrics = r.read().decode()
                if 'edged_results_total{camera="c1",recipe="plain",verdict="pass"}' in metrics:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        assert 'verdict="pass"' in metrics
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert time.monotonic() - t0 < 5
        assert "edged stopped" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_analyze_prints_result_json_lines(tmp_path: Path, write_config) -> None:
    img = np.full((60, 80, 3), 128, np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), img)
    cv2.imwrite(str(tmp_path / "b.png"), img[:, :, 0])
    (tmp_path / "c.png").write_bytes(b"not an image")
    cfg = write_config(GOOD)
    p = edged("analyze", str(tmp_path), "--config", str(cfg))
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert [r["frame"]["seq"] for r in rows] == [0, 1, 2]
    assert [r["verdict"] for r in rows] == ["pass", "pass", "error"]
    assert (rows[0]["frame"]["width"], rows[0]["frame"]["height"]) == (80, 60)
    assert rows[1]["frame"]["pixel_format"] == "Mono8"
    # each line names the file it judged, unreadable ones included
    names = [str(tmp_path / n) for n in ("a.png", "b.png", "c.png")]
    assert [r["frame"]["source"] for r in rows] == names
    assert "expected a PNG/JPEG/BMP/TIFF image" in rows[2]["reasons"][0]
    assert p.returncode == 1  # one image did not pass
    assert "[3/3] c.png: error" in p.stderr  # progress for several files


def test_analyze_without_images(tmp_path: Path) -> None:
    p = edged("analyze", str(tmp_path))
    assert p.returncode == 2
    assert "expected image files" in p.stderr


def test_version() -> None:
    p = edged("--version")
    assert p.returncode == 0
    assert p.stdout.startswith("edged ")


def test_module_and_console_script_agree() -> None:
    env = {**os.environ}
    p = edged("--help", env=env)
    assert "check-config" in p.stdout
    assert "analyze" in p.stdout
