"""Helpers for the MQTT tests: settings for a private broker, hand-built Results, and a
real subscriber (paho in its own thread, persistent session, QoS 1) that records
everything it receives."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from _broker import Broker
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edged.config import Settings
from edged.core.result import FrameInfo, Result, iso_utc, new_result_id


def make_settings(tmp_path: Path, broker: Broker, **mqtt: Any) -> Settings:
    """Settings for one node with cameras cam1/cam2 and recipes r1/r2 on ``broker``."""
    options: dict[str, Any] = {
        "host": broker.host,
        "port": broker.port,
        "prefix": f"t{uuid.uuid4().hex[:8]}",
        "protocol": "5" if broker.mqtt5 else "3.1.1",
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5,
        "keepalive_s": 5,
    }
    options.update(mqtt)
    return Settings(
        node_id="line-7",
        cameras={"cam1": {"recipe": "r1"}, "cam2": {"recipe": "r1"}},
        recipes={"r1": {}, "r2": {}},
        state_dir=tmp_path / "state",
        references_dir=tmp_path / "refs",
        mqtt=options,
    )


def make_result(seq: int, *, camera: str = "cam1", verdict: str = "pass") -> Result:
    """A small, valid Result for frame ``seq`` (hand-built, like the Inspector makes them)."""
    now = iso_utc(time.time_ns())
    return Result(
        id=new_result_id(),
        seq=seq,
        node="line-7",
        camera=camera,
        recipe="r1",
        ts=now,
        frame=FrameInfo(width=64, height=48, pixel_format="Mono8", seq=seq, host_ts=now),
        verdict=verdict,  # type: ignore[arg-type]
        reasons=[] if verdict == "pass" else ["quality.brightness.mean_level <= 200"],
        checks={"quality": {"brightness": {"mean_level": 100.0 + seq % 7}}},
        timings_ms={"decode": 0.1, "inspect": 1.5},
    )


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    qos: int
    properties: Any
    dup: bool = False  # a QoS 1 redelivery (e.g. of an unacknowledged message after a restart)

    def json(self) -> Any:
        return json.loads(self.payload)


class Collector:
    """A real MQTT subscriber in paho's network thread.

    Persistent session (MQTT 5: clean_start=False with a long session expiry;
    3.1.1: clean_session=False) and QoS 1, like docs/mqtt.md tells consumers, so
    messages published while it is reconnecting are queued for it by the broker.
    """

    def __init__(
        self,
        broker: Broker,
        topics: list[str],
        *,
        client_id: str | None = None,
        qos: int = 1,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.broker = broker
        self.topics = topics
        self.qos = qos
        self.mqtt5 = broker.mqtt5
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        cid = self.client_id = client_id or f"collector-{uuid.uuid4().hex[:8]}"
        if self.mqtt5:
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5
            )
        else:
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=cid,
                protocol=mqtt.MQTTv311,
                clean_session=False,
            )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()

    def start(self, timeout_s: float = 5.0) -> Collector:
        if self.mqtt5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
            self.client.connect(
                self.broker.host, self.broker.port, 5, clean_start=False, properties=props
            )
        else:
            self.client.connect(self.broker.host, self.broker.port, 5)
        self.client.loop_start()
        if not self._subscribed.wait(timeout_s):
            msg = f"collector: no SUBACK within {timeout_s} s"
            raise TimeoutError(msg)
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        if not rc.is_failure:
            client.subscribe([(t, self.qos) for t in self.topics])

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(
                Received(
                    msg.topic,
                    bytes(msg.payload),
                    bool(msg.retain),
                    msg.qos,
                    msg.properties,
                    bool(msg.dup),
                )
            )
            self._cond.notify_all()

    def on(self, topic: str) -> list[Received]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, pred: Callable[[list[Received]], bool], timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not pred(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    n = len(self.messages)
                    msg = f"collector: condition not met within {timeout_s} s ({n} received)"
                    raise TimeoutError(msg)
                self._cond.wait(left)

    def wait_count(self, topic: str, n: int, timeout_s: float = 10.0) -> list[Received]:
        self.wait_for(lambda ms: len({m.payload for m in ms if m.topic == topic}) >= n, timeout_s)
        return self.on(topic)


async def eventually(pred: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll ``pred`` every 20 ms until it holds; TimeoutError after ``timeout_s``."""
    for _ in range(max(1, int(timeout_s / 0.02))):
        if pred():
            return
        await asyncio.sleep(0.02)
    if not pred():
        msg = f"condition not met within {timeout_s} s"
        raise TimeoutError(msg)


def first_seen(messages: list[Received]) -> list[Any]:
    """Decoded payloads de-duplicated by Result id, in order of first arrival
    (what a consumer of at-least-once delivery does)."""
    seen: set[str] = set()
    out = []
    for m in messages:
        doc = m.json()
        if doc["id"] not in seen:
            seen.add(doc["id"])
            out.append(doc)
    return out
