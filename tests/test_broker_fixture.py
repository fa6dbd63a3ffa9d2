"""The test broker itself: private port, stop/kill/restart on the same port, persistence,
passwords, and the amqtt fallback for machines without mosquitto."""

from __future__ import annotations

import asyncio
import os
import pwd
import threading
from pathlib import Path

import _broker
import paho.mqtt.client as mqtt
import pytest
from _broker import Broker, mosquitto_available, port_open
from _mqtt_helpers import Collector, make_result, make_settings
from paho.mqtt.enums import CallbackAPIVersion

from edged.publish import Publisher

needs_mosquitto = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")


def _publish_once(
    broker: Broker,
    topic: str,
    payload: bytes,
    *,
    retain: bool = False,
    username: str | None = None,
    password: str | None = None,
) -> str:
    """Connect, publish QoS 1, wait for PUBACK, disconnect; returns the CONNACK reason."""
    done = threading.Event()
    outcome: list[str] = []
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311, reconnect_on_failure=False)
    if username is not None:
        c.username_pw_set(username, password)

    def on_connect(client, userdata, flags, rc, props):  # type: ignore[no-untyped-def]
        outcome.append(str(rc))
        if rc.is_failure:
            done.set()
        else:
            client.publish(topic, payload, 1, retain)

    c.on_connect = on_connect
    c.on_publish = lambda *a: done.set()
    c.connect(broker.host, broker.port)
    c.loop_start()
    assert done.wait(5)
    c.disconnect()
    c.loop_stop()
    return outcome[0]


@needs_mosquitto
def test_mosquitto_stop_and_restart_on_the_same_port(tmp_path: Path) -> None:
    b = Broker(tmp_path / "b")
    b.start()
    port, pid = b.port, b.pid
    assert b.kind == "mosquitto"
    assert port_open(b.host, port)
    assert f"listener {port} 127.0.0.1" in b.conf_path.read_text()
    _publish_once(b, "keep/me", b"retained", retain=True)
    b.stop()  # SIGTERM: persistence saved
    assert not port_open(b.host, port)
    assert (b.dir / "mosquitto.db").exists()
    b.start()
    assert (b.port, b.starts) == (port, 2)
    assert b.pid != pid
    col = Collector(b, ["keep/me"]).start()
    col.wait_for(lambda ms: len(ms) == 1)
    col.stop()
    assert (col.messages[0].payload, col.messages[0].retain) == (b"retained", True)
    b.stop(kill=True)  # SIGKILL
    assert not b.running
    assert not port_open(b.host, port)
    b.restart()
    assert port_open(b.host, port)
    b.close()
    assert "mosquitto version" in b.log_text()


@needs_mosquitto
def test_mosquitto_password_file(tmp_path: Path) -> None:
    with Broker(tmp_path / "b", passwords={"edged": "pw"}) as b:
        assert _publish_once(b, "t", b"x", username="edged", password="pw") == "Success"
        assert _publish_once(b, "t", b"x", username="edged", password="nope") != "Success"
        assert _publish_once(b, "t", b"x") != "Success"  # anonymous refused


@needs_mosquitto
def test_shipped_mosquitto_conf_is_valid_and_persists(tmp_path: Path) -> None:
    """configs/mosquitto.conf starts (listener and paths moved to the test's own),
    refuses anonymous clients (issue 20) and keeps a persistent consumer's queued
    messages across a restart."""
    configs = Path(__file__).resolve().parent.parent / "configs"
    shipped = (configs / "mosquitto.conf").read_text()
    assert "set_tcp_nodelay true" in shipped
    assert "autosave_interval 10" in shipped
    acl = (configs / "mosquitto.acl").read_text().replace("edged/", "q/")
    (tmp_path / "acl").write_text(acl)
    (tmp_path / "passwd").write_text(_broker.mosquitto_password_line("mes", "pw-m") + "\n")
    (tmp_path / "passwd").chmod(0o600)

    def conf(b: Broker) -> str:
        text = shipped.replace("listener 1883 127.0.0.1", f"listener {b.port} 127.0.0.1")
        text = text.replace("/var/lib/mosquitto/", f"{b.dir}/")
        text = text.replace("log_dest syslog", f"log_dest file {b.log_path}")
        text = text.replace("/etc/mosquitto/passwd", str(tmp_path / "passwd"))
        text = text.replace("/etc/mosquitto/acl", str(tmp_path / "acl"))
        user = pwd.getpwuid(os.getuid()).pw_name
        return f"user {user}\n{text}"

    b = Broker(tmp_path / "shipped", conf_text=conf)
    b.start()
    try:
        assert _publish_once(b, "q/x", b"anon") == "Not authorized"
        creds = {"username": "mes", "password": "pw-m"}
        col = Collector(b, ["q/#"], **creds).start()
        col.stop()  # offline, persistent session: the broker queues for it
        # `mes` may only read: edged's own user publishes (added to the password file)
        (tmp_path / "passwd").write_text(
            _broker.mosquitto_password_line("mes", "pw-m")
            + "\n"
            + _broker.mosquitto_password_line("edged", "pw-e")
            + "\n"
        )
        b.restart()
        for i in range(3):
            _publish_once(b, "q/x", str(i).encode(), username="edged", password="pw-e")
        b.restart()
        col2 = Collector(b, ["q/#"], client_id=col.client_id, **creds).start()
        col2.wait_for(lambda ms: len(ms) == 3)
        col2.stop()
    finally:
        b.close()
    assert [m.payload for m in col2.messages] == [b"0", b"1", b"2"]
    assert "Config loaded from" in b.log_text()


def test_amqtt_fallback_pub_sub_and_restart(tmp_path: Path) -> None:
    b = Broker(tmp_path / "a", kind="amqtt")
    b.start()
    try:
        assert (b.mqtt5, b.persistent) == (False, False)
        col = Collector(b, ["fb/#"]).start()
        _publish_once(b, "fb/1", b"hello")
        col.wait_for(lambda ms: len(ms) == 1)
        col.stop()
        assert col.messages[0].payload == b"hello"
        port = b.port
        b.stop()
        assert not port_open(b.host, port)
        b.start()
        assert port_open(b.host, port)
    finally:
        b.close()


def test_auto_kind_falls_back_without_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_broker, "MOSQUITTO", str(tmp_path / "no-such-mosquitto"))
    assert Broker(tmp_path / "x").kind == "amqtt"
    with pytest.raises(ValueError, match="amqtt fallback supports neither"):
        Broker(tmp_path / "y", acl="topic read #")


async def test_publisher_over_amqtt_fallback(tmp_path: Path) -> None:
    """The whole publisher works on the fallback broker (MQTT 3.1.1)."""
    b = Broker(tmp_path / "a", kind="amqtt")
    await asyncio.to_thread(b.start)
    settings = make_settings(tmp_path, b)
    pub = Publisher(settings)
    col = Collector(b, [pub.topics.result("cam1")]).start()
    try:
        await pub.start()
        for i in range(10):
            await pub.publish_result(make_result(i))
        await asyncio.to_thread(col.wait_count, pub.topics.result("cam1"), 10)
    finally:
        await pub.stop(grace_s=2)
        col.stop()
        await asyncio.to_thread(b.close)
    assert settings.mqtt.protocol == "3.1.1"
    assert [m.json()["seq"] for m in col.messages] == list(range(10))
