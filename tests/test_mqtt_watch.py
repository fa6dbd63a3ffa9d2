"""``edged watch`` against a real broker: a table row or a JSON line per result."""

from __future__ import annotations

import asyncio
import io
import json
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from _broker import Broker, broker_fixture  # noqa: F401
from _mqtt_helpers import make_result, make_settings
from paho.mqtt.enums import CallbackAPIVersion

from edged.cli.main import main
from edged.cli.watch import HEADER, format_row, watch
from edged.publish import Publisher

ROOT = Path(__file__).resolve().parent.parent


def test_format_row_is_aligned_and_marks_repeats() -> None:
    doc = {
        "ts": "2026-11-21T12:00:00.123Z",
        "camera": "cam1",
        "seq": 42,
        "recipe": "label",
        "verdict": "fail",
        "timings_ms": {"decode": 1.25, "inspect": 10.0},
        "reasons": ["difference.count == 0"],
    }
    assert format_row(doc) == (
        "2026-11-21T12:00:00.123Z cam1               42  label          FAIL        11.2  "
        "difference.count == 0"
    )
    assert format_row({**doc, "timings_ms": {"total": 3.0}}, repeated=True).split()[2] == "42*"
    assert HEADER.split() == [
        "TIME",
        "(UTC)",
        "CAMERA",
        "SEQ",
        "RECIPE",
        "VERDICT",
        "MS",
        "REASONS",
    ]


async def _watch_while_publishing(
    tmp_path: Path, broker: Broker, *, json_lines: bool, camera: str | None
) -> tuple[str, list]:
    settings = make_settings(tmp_path, broker)
    out = io.StringIO()
    task = asyncio.create_task(
        watch(settings, camera=camera, json_lines=json_lines, out=out, count=3)
    )
    pub = Publisher(settings)
    await pub.start()
    sent = []
    try:
        await pub.wait_connected()
        await asyncio.sleep(0.3)  # the watcher subscribes
        for i in range(3):
            for cam in ("cam1", "cam2"):
                r = make_result(i, camera=cam, verdict="fail" if i == 1 else "pass")
                sent.append(r)
                await pub.publish_result(r)
        async with asyncio.timeout(5):
            printed = await task
    finally:
        await pub.stop(grace_s=1)
    assert printed == 3
    return out.getvalue(), sent


async def test_watch_table_for_one_camera(tmp_path: Path, broker: Broker) -> None:
    text, sent = await _watch_while_publishing(tmp_path, broker, json_lines=False, camera="cam2")
    lines = text.splitlines()
    assert lines[0] == HEADER
    rows = [ln for ln in lines[1:] if not ln.startswith("#")]
    cam2 = [r for r in sent if r.camera == "cam2"]
    assert rows == [format_row(r.to_json_dict()) for r in cam2]
    assert "# line-7 status: online" in lines


async def test_watch_json_lines_all_cameras(tmp_path: Path, broker: Broker) -> None:
    text, sent = await _watch_while_publishing(tmp_path, broker, json_lines=True, camera=None)
    docs = [json.loads(line) for line in text.splitlines()]
    assert docs == [r.to_json_dict() for r in sent[:3]]


def test_cli_watch_json(tmp_path: Path, broker: Broker, write_config: Callable[..., Path]) -> None:
    """``edged watch --config F --json --count 2``, run as a real process, prints the two
    results published."""
    settings = make_settings(tmp_path, broker)
    mqtt_cfg = {"host": broker.host, "port": broker.port, "prefix": settings.mqtt.prefix}
    cfg = write_config(
        {"node_id": "line-7", "mqtt": {**mqtt_cfg, "protocol": settings.mqtt.protocol}}
    )
    topic = f"{settings.mqtt.prefix}/line-7/cam1/result"
    results = [make_result(i) for i in range(2)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "edged", "watch", "--config", str(cfg), "--json", "--count", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    c = mqtt.Client(CallbackAPIVersion.VERSION2)
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        # the first result is retained, so the watcher gets it when it subscribes,
        # before any later publish of the second one
        c.publish(topic, results[0].to_json(), 1, retain=True).wait_for_publish(5)
        for _ in range(150):  # until the watcher has subscribed, printed 2 and exited
            c.publish(topic, results[1].to_json(), 1)
            try:
                out, err = proc.communicate(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            proc.kill()
            out, err = proc.communicate()
    finally:
        c.publish(topic, b"", 1, retain=True).wait_for_publish(5)
        c.disconnect()
        c.loop_stop()
    assert proc.returncode == 0, err
    docs = [json.loads(line) for line in out.splitlines()]
    assert docs == [r.to_json_dict() for r in results]


def test_cli_watch_rejects_bad_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["watch", "--count", "0"]) == 2
    assert "--count: expected >= 1, got 0" in capsys.readouterr().err


def test_cli_watch_into_a_closed_pipe_exits_quietly(tmp_path: Path, broker: Broker) -> None:
    """``edged watch --json | head -1``: once the reader is gone, watch exits 0 with no
    BrokenPipeError traceback, however many results keep arriving. Without --config it
    says on stderr which broker and topic it listens to."""
    node = "pipe-node"
    topic = f"edged/{node}/cam1/result"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edged", "watch", "--json", "--node", node,
         "--host", broker.host, "--port", str(broker.port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stderr is not None
    c = mqtt.Client(CallbackAPIVersion.VERSION2)
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        first = b""
        for i in range(150):  # until the watcher subscribed and printed one line
            c.publish(topic, make_result(i).to_json(), 1).wait_for_publish(5)
            ready, _, _ = select.select([proc.stdout], [], [], 0.2)
            if ready:
                first = proc.stdout.readline()
                break
        assert json.loads(first)["camera"] == "cam1"
        proc.stdout.close()  # the reader goes away, as `head -1` does
        for i in range(200):  # keep publishing: every write now hits a closed pipe
            c.publish(topic, make_result(1000 + i).to_json(), 1)
            if proc.poll() is not None:
                break
            time.sleep(0.02)
        err = proc.stderr.read().decode() if proc.wait(timeout=10) is not None else ""
    finally:
        if proc.poll() is None:
            proc.kill()
        c.disconnect()
        c.loop_stop()
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    assert "BrokenPipe" not in err, err
    assert f"listening on {broker.host}:{broker.port} to edged/{node}/+/result" in err
