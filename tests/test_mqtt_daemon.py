"""The whole daemon on a real broker: two synthetic 10 fps cameras through an outage,
then a restart that continues each camera's seq."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import paho.mqtt.client as mqtt
import pytest
from _broker import Broker, broker_fixture, require  # noqa: F401
from _mqtt_helpers import Collector, first_seen
from paho.mqtt.enums import CallbackAPIVersion

from edged.config import Settings, load_settings
from edged.daemon import Daemon
from edged.publish._topics import Topics
from edged.publish.command_auth import sign_command

SECRET = "daemon-test-secret-0123456789"


def _signed(topic: str, fields: dict[str, Any]) -> str:
    return json.dumps(sign_command(SECRET.encode(), topic, fields))


def _settings(write_config: Callable[..., Path], broker: Broker, prefix: str) -> Settings:
    cam = {
        "recipe": "plain",
        "fps": 10,
        "synthetic": {"width": 160, "height": 128, "pixel_format": "BayerRG8", "seed": 3},
    }
    return load_settings(
        write_config(
            {
                "node_id": "line-9",
                "cameras": {
                    "cam1": cam,
                    "cam2": {**cam, "synthetic": {**cam["synthetic"], "seed": 4}},
                },
                "recipes": {"plain": {}},
                "mqtt": {
                    "host": broker.host,
                    "port": broker.port,
                    "prefix": prefix,
                    "protocol": "5" if broker.mqtt5 else "3.1.1",
                    "reconnect_min_s": 0.1,
                    "reconnect_max_s": 0.5,
                    "command_secret": SECRET,
                },
                "http": {"enabled": False},
                "pipeline": {"workers": 2},
            }
        )
    )


def _results(col: Collector, topic: str) -> list[dict[str, Any]]:
    return first_seen(col.on(topic))


@pytest.mark.slow
async def test_daemon_outage_and_restart_lose_nothing(
    write_config: Callable[..., Path], broker: Broker
) -> None:
    """Synthetic cameras at 10 fps; the broker is stopped for 3 s and started again:
    every result of both cameras arrives, in seq order, and validates against the
    schema. A restarted daemon continues each camera's seq where it stopped.
    (3 s instead of the issue's 10 s keeps the suite fast; tests/test_mqtt_publish.py
    explains why the outage length does not change what is exercised.)"""
    require(broker, persistent=True)
    prefix = f"d{uuid.uuid4().hex[:6]}"
    settings = _settings(write_config, broker, prefix)
    t = Topics(prefix, "line-9")
    col = Collector(broker, [t.result("cam1"), t.result("cam2"), t.status]).start()
    daemon = Daemon(settings)
    await daemon.start()
    try:
        await asyncio.sleep(1.0)
        await asyncio.to_thread(broker.stop)
        await asyncio.sleep(3.0)
        await asyncio.to_thread(broker.start)
        await asyncio.sleep(1.0)
    finally:
        await daemon.stop()
    assert daemon.exit_code == 0
    produced = {
        cam: int(
            daemon.runtime.metrics.registry.get_sample_value(
                "edged_results_total", {"camera": cam, "recipe": "plain", "verdict": "pass"}
            )
            or 0
        )
        for cam in ("cam1", "cam2")
    }
    for cam in ("cam1", "cam2"):
        await asyncio.to_thread(
            col.wait_for,
            lambda ms, c=cam: len(_results(col, t.result(c))) >= produced[c],
            15,
        )
    assert min(produced.values()) >= 35  # ~5 s at 10 fps
    schema = json.loads(resources.files("edged").joinpath("schemas/result.v1.json").read_text())
    for cam in ("cam1", "cam2"):
        docs = _results(col, t.result(cam))
        assert [d["seq"] for d in docs] == list(range(produced[cam])), cam
        for doc in docs:
            jsonschema.validate(doc, schema)
            assert doc["camera"] == cam
            assert doc["node"] == "line-9"

    # restart on the same state_dir: seq continues
    daemon2 = Daemon(settings)
    await daemon2.start()
    try:
        await asyncio.to_thread(
            col.wait_for,
            lambda ms: len(_results(col, t.result("cam1"))) >= produced["cam1"] + 3,
            10,
        )
    finally:
        await daemon2.stop()
        col.stop()
    after = [d["seq"] for d in _results(col, t.result("cam1"))][produced["cam1"] :]
    assert after[:3] == [produced["cam1"], produced["cam1"] + 1, produced["cam1"] + 2]
    statuses = [m.payload for m in col.on(t.status)]
    assert statuses[0] == b"online"
    assert statuses[-1] == b"stopped"


async def test_daemon_answers_commands(write_config: Callable[..., Path], broker: Broker) -> None:
    """The daemon wires MQTT commands to its camera lines: a recipe switch applies to the
    following results; a trigger on a free-running camera is refused with the reason."""
    prefix = f"c{uuid.uuid4().hex[:6]}"
    settings = _settings(write_config, broker, prefix)
    settings = settings.model_copy(
        update={"recipes": {**settings.recipes, "other": settings.recipes["plain"]}}
    )
    t = Topics(prefix, "line-9")
    col = Collector(broker, [t.reply("cam1"), t.result("cam1")]).start()
    daemon = Daemon(settings)
    await daemon.start()
    try:
        await asyncio.to_thread(col.wait_count, t.result("cam1"), 2)
        plc = mqtt.Client(CallbackAPIVersion.VERSION2)
        plc.connect(broker.host, broker.port)
        plc.loop_start()
        cmd = t.command("cam1", "recipe")
        plc.publish(cmd, _signed(cmd, {"recipe": "other", "id": 1}), 1)
        cmd = t.command("cam1", "trigger")
        plc.publish(cmd, _signed(cmd, {"id": 2}), 1)
        await asyncio.to_thread(col.wait_count, t.reply("cam1"), 2)
        n = len(col.on(t.result("cam1")))
        await asyncio.to_thread(col.wait_count, t.result("cam1"), n + 3)
        plc.disconnect()
        plc.loop_stop()
    finally:
        await daemon.stop()
        col.stop()
    replies = {m.json()["id"]: m.json() for m in col.on(t.reply("cam1"))}
    assert replies[1] == {
        "ok": True,
        "command": "recipe",
        "camera": "cam1",
        "id": 1,
        "result": {"recipe": "other", "previous": "plain"},
    }
    assert replies[2]["ok"] is False
    assert "expected a source with a software trigger" in replies[2]["error"]
    assert col.on(t.result("cam1"))[-1].json()["recipe"] == "other"


async def test_trigger_command_fires_a_triggered_line(
    write_config: Callable[..., Path], broker: Broker
) -> None:
    """On a triggered line nothing is inspected until a PLC sends cmd/trigger; each
    trigger gives exactly one result."""
    prefix = f"t{uuid.uuid4().hex[:6]}"
    settings = _settings(write_config, broker, prefix)
    cam1 = settings.cameras["cam1"]
    assert cam1.synthetic is not None
    triggered = cam1.model_copy(
        update={"synthetic": cam1.synthetic.model_copy(update={"triggered": True})}
    )
    settings = settings.model_copy(update={"cameras": {"cam1": triggered}})
    t = Topics(prefix, "line-9")
    col = Collector(broker, [t.reply("cam1"), t.result("cam1")]).start()
    daemon = Daemon(settings)
    await daemon.start()
    try:
        await asyncio.sleep(0.5)
        assert col.on(t.result("cam1")) == []  # no trigger, no part
        plc = mqtt.Client(CallbackAPIVersion.VERSION2)
        plc.connect(broker.host, broker.port)
        plc.loop_start()
        for i in (1, 2):
            cmd = t.command("cam1", "trigger")
            plc.publish(cmd, _signed(cmd, {"id": i}), 1)
        await asyncio.to_thread(col.wait_count, t.reply("cam1"), 2)
        await asyncio.to_thread(col.wait_count, t.result("cam1"), 2)
        await asyncio.sleep(0.5)
        plc.disconnect()
        plc.loop_stop()
    finally:
        await daemon.stop()
        col.stop()
    replies = {m.json()["id"]: m.json() for m in col.on(t.reply("cam1"))}
    assert replies[1]["ok"] is True
    assert replies[2]["ok"] is True
    assert [r["frame"]["seq"] for r in _results(col, t.result("cam1"))] == [0, 1]


async def test_mqtt_teach_is_pending_until_confirmed_and_memory_bounded(
    write_config: Callable[..., Path], broker: Broker, tmp_path: Path
) -> None:
    """Issue 20: a taught reference is not active until a second, confirming command;
    a teach whose frames would exceed mqtt.teach_max_bytes is refused, nothing stored."""
    from edged.references import ReferenceStore

    prefix = f"k{uuid.uuid4().hex[:6]}"
    settings = _settings(write_config, broker, prefix)
    mqtt_cfg = settings.mqtt.model_copy(update={"teach_max_bytes": 1024 * 1024})
    settings = settings.model_copy(update={"mqtt": mqtt_cfg, "references_dir": tmp_path / "refs"})
    t = Topics(prefix, "line-9")
    col = Collector(broker, [t.reply("cam1"), t.result("cam1")]).start()
    daemon = Daemon(settings)
    await daemon.start()
    store = ReferenceStore(tmp_path / "refs")
    teach = t.command("cam1", "teach")
    plc = mqtt.Client(CallbackAPIVersion.VERSION2)
    try:
        await asyncio.to_thread(col.wait_count, t.result("cam1"), 2)
        plc.connect(broker.host, broker.port)
        plc.loop_start()
        # 160 x 128 x 3 bytes a frame: 20 frames = 1.2 MB > the 1 MiB budget
        plc.publish(teach, _signed(teach, {"frames": 20, "id": "big"}), 1)
        plc.publish(teach, _signed(teach, {"frames": 2, "id": "teach"}), 1)
        await asyncio.to_thread(col.wait_count, t.reply("cam1"), 2, 30)
        pending = {m.json()["id"]: m.json() for m in col.on(t.reply("cam1"))}
        current_before = store.current("plain", "cam1")
        versions_before = [i.version_id for i in store.versions("plain", "cam1")]
        plc.publish(teach, _signed(teach, {"confirm": "v1", "id": "ok"}), 1)
        await asyncio.to_thread(col.wait_count, t.reply("cam1"), 3)
    finally:
        plc.disconnect()
        plc.loop_stop()
        await daemon.stop()
        col.stop()
    assert pending["big"]["ok"] is False
    assert "exceed the teach memory budget of 1048576 bytes" in pending["big"]["error"]
    assert pending["teach"]["result"] == {
        "recipe": "plain",
        "frames": 2,
        "references": ["v1"],
        "pending": True,
        "confirm": {"recipe": "plain", "confirm": "v1"},
    }
    assert current_before is None
    assert versions_before == ["v1"]
    confirmed = {m.json()["id"]: m.json() for m in col.on(t.reply("cam1"))}["ok"]
    assert confirmed["result"] == {"recipe": "plain", "active": "v1"}
    current = store.current("plain", "cam1")
    assert current is not None
    assert current.version_id == "v1"
