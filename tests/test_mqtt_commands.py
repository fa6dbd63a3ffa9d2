"""MQTT commands end to end: a real broker, the Publisher, and an in-test handler that
records what it was asked to do."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from _broker import Broker, broker_fixture, require  # noqa: F401
from _mqtt_helpers import make_settings
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edged.core.errors import InputError, NotFoundError, SourceError
from edged.publish import Publisher, RuntimeCommandHandler
from edged.publish.command_auth import sign_command
from edged.publish.commands import MAX_WAITING, parse_command

SECRET = "s3cret-for-tests-0123456789"


class Recorder:
    """A real CommandHandler: records calls; teach with 13 frames fails like a lost camera."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.activations: list[bool] = []
        self.gate: asyncio.Event | None = None

    async def trigger(self, camera: str, data: str | None = None) -> Mapping[str, Any] | None:
        self.calls.append(("trigger", camera) if data is None else ("trigger", camera, data))
        if self.gate is not None:
            await self.gate.wait()
        return {"queued": True}

    async def set_recipe(
        self, camera: str, recipe: str, data: str | None = None
    ) -> Mapping[str, Any] | None:
        call = ("recipe", camera, recipe) if data is None else ("recipe", camera, recipe, data)
        self.calls.append(call)
        return {"recipe": recipe}

    async def teach(
        self, camera: str, recipe: str | None, frames: int, *, activate: bool
    ) -> Mapping[str, Any] | None:
        self.calls.append(("teach", camera, recipe, frames))
        self.activations.append(activate)
        if frames == 13:
            msg = f"camera {camera!r}: device lost"
            raise SourceError(msg)
        if frames == 14:
            raise RuntimeError("boom")
        return {"references": [f"{recipe}-{i}" for i in range(frames)]}

    async def confirm_teach(
        self, camera: str, recipe: str | None, version: str
    ) -> Mapping[str, Any] | None:
        self.calls.append(("confirm", camera, recipe, version))
        return {"active": version}


class Requester:
    """A PLC-side client: sends commands (optionally MQTT 5 request/response) and
    collects replies."""

    def __init__(
        self,
        broker: Broker,
        reply_topics: list[str],
        *,
        secret: str | None = SECRET,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.mqtt5 = broker.mqtt5
        self.secret = secret
        proto = mqtt.MQTTv5 if self.mqtt5 else mqtt.MQTTv311
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"plc-{uuid.uuid4().hex[:6]}", protocol=proto
        )
        self.replies: list[tuple[str, dict[str, Any], Any]] = []
        self._cond = threading.Condition()
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = self._on_message
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe([(t, 1) for t in reply_topics])
        assert subscribed.wait(5)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.replies.append((msg.topic, json.loads(msg.payload), msg.properties))
            self._cond.notify_all()

    def send(
        self,
        topic: str,
        payload: bytes | str,
        *,
        retain: bool = False,
        response_topic: str | None = None,
        correlation: bytes | None = None,
    ) -> None:
        if self.secret is not None and not retain:
            payload = signed(self.secret, topic, payload)
        props = None
        if response_topic or correlation:
            props = Properties(PacketTypes.PUBLISH)
            if response_topic:
                props.ResponseTopic = response_topic
            if correlation:
                props.CorrelationData = correlation
        info = self.client.publish(topic, payload, 1, retain, props)
        info.wait_for_publish(5)

    def wait(self, n: int, timeout_s: float = 5.0) -> list[tuple[str, dict[str, Any], Any]]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.replies) >= n, timeout_s), self.replies
            return list(self.replies)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def signed(secret: str, topic: str, payload: bytes | str) -> bytes | str:
    """``payload`` with a valid token when it is a JSON object, else as it is (the
    malformed-payload tests send what they send)."""
    try:
        fields = json.loads(payload or "{}")
    except (ValueError, UnicodeDecodeError):
        return payload
    if not isinstance(fields, dict):
        return payload
    return json.dumps(sign_command(secret.encode(), topic, fields))


async def _started(
    tmp_path: Path, broker: Broker, handler: Recorder, **mqtt_opts: Any
) -> Publisher:
    mqtt_opts.setdefault("command_secret", SECRET)
    pub = Publisher(make_settings(tmp_path, broker, **mqtt_opts), command_handler=handler)
    await pub.start()
    async with asyncio.timeout(5):
        await pub.wait_connected()
    await asyncio.sleep(0.2)  # SUBACK
    return pub


async def test_each_command_runs_and_replies(tmp_path: Path, broker: Broker) -> None:
    handler = Recorder()
    pub = await _started(tmp_path, broker, handler)
    t = pub.topics
    plc = await asyncio.to_thread(Requester, broker, [t.reply("cam1"), t.reply("cam2")])
    try:
        plc.send(t.command("cam1", "trigger"), "")
        plc.send(t.command("cam2", "recipe"), json.dumps({"recipe": "r2", "id": 7}))
        plc.send(t.command("cam1", "teach"), json.dumps({"recipe": "r2", "frames": 3, "id": "a"}))
        plc.send(t.command("cam1", "teach"), "{}")
        replies = await asyncio.to_thread(plc.wait, 4)
    finally:
        plc.close()
        await pub.stop(grace_s=1)
    assert sorted(handler.calls, key=str) == sorted(
        [
            ("trigger", "cam1"),
            ("recipe", "cam2", "r2"),
            ("teach", "cam1", "r2", 3),
            ("teach", "cam1", None, 1),
        ],
        key=str,
    )
    by_cmd = {(topic, body["command"], body["id"]): body for topic, body, _ in replies}
    assert by_cmd[(t.reply("cam1"), "trigger", None)] == {
        "ok": True,
        "command": "trigger",
        "camera": "cam1",
        "id": None,
        "result": {"queued": True},
    }
    assert by_cmd[(t.reply("cam2"), "recipe", 7)]["result"] == {"recipe": "r2"}
    assert by_cmd[(t.reply("cam1"), "teach", "a")]["result"] == {
        "references": ["r2-0", "r2-1", "r2-2"]
    }
    assert by_cmd[(t.reply("cam1"), "teach", None)]["ok"] is True


async def test_mqtt5_response_topic_is_ignored_correlation_data_kept(
    tmp_path: Path, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 20: a command must not make edged publish on a topic of the sender's
    choosing (its own verdict topic, say). The reply goes to cmd/reply, with the
    request's correlation data; the response topic is logged as ignored."""
    require(broker, mqtt5=True)
    handler = Recorder()
    pub = await _started(tmp_path, broker, handler)
    t = pub.topics
    hijack = t.verdict("cam1")
    plc = await asyncio.to_thread(Requester, broker, [hijack, "plc/answers", t.reply("cam1")])
    try:
        plc.send(
            t.command("cam1", "recipe"),
            '{"recipe": "r2"}',
            response_topic=hijack,
            correlation=b"\x01req-42",
        )
        [(topic, body, props)] = await asyncio.to_thread(plc.wait, 1)
        await asyncio.sleep(0.3)  # nothing else comes
    finally:
        plc.close()
        await pub.stop(grace_s=1)
    assert [r[0] for r in plc.replies] == [t.reply("cam1")]
    assert topic == t.reply("cam1")
    assert body == {
        "ok": True,
        "command": "recipe",
        "camera": "cam1",
        "id": None,
        "result": {"recipe": "r2"},
    }
    assert props.CorrelationData == b"\x01req-42"
    assert props.ContentType == "application/json"
    assert any(f"response topic {hijack!r} ignored" in r.getMessage() for r in caplog.records)


MALFORMED = [
    ("trigger", b"{not json", "payload: expected a JSON object, got invalid JSON"),
    ("trigger", b"[1, 2]", "payload: expected a JSON object, got list [1, 2]"),
    ("trigger", b'{"bogus": 1}', "bogus: unknown key (got 1)"),
    ("trigger", b"\xff\xfe", "payload: expected UTF-8 JSON, got bytes that are not UTF-8"),
    ("recipe", b"{}", "recipe: Field required"),
    ("recipe", b'{"recipe": "nope"}', "recipe: expected one of ['r1', 'r2'], got 'nope'"),
    ("recipe", b'{"recipe": 5}', "recipe: Input should be a valid string (got 5)"),
    ("teach", b'{"frames": 0}', "frames: Input should be greater than or equal to 1 (got 0)"),
    ("teach", b'{"frames": "x"}', "frames: Input should be a valid integer"),
]


async def test_malformed_commands_get_error_replies(tmp_path: Path, broker: Broker) -> None:
    handler = Recorder()
    pub = await _started(tmp_path, broker, handler)
    t = pub.topics
    plc = await asyncio.to_thread(Requester, broker, [t.reply("cam1")])
    try:
        for name, payload, _ in MALFORMED:
            plc.send(t.command("cam1", name), payload)
        replies = await asyncio.to_thread(plc.wait, len(MALFORMED))
    finally:
        plc.close()
        await pub.stop(grace_s=1)
    assert handler.calls == []
    # A payload that is not a JSON object is refused on arrival, before it could queue
    # behind other commands (issue 20), so replies need not come in arrival order.
    assert len(replies) == len(MALFORMED)
    unmatched = [(body["command"], body["error"]) for _, body, _ in replies]
    assert all(body["ok"] is False for _, body, _ in replies)
    for name, _, expected in MALFORMED:
        hit = next(i for i, (n, e) in enumerate(unmatched) if n == name and e.startswith(expected))
        unmatched.pop(hit)
    assert unmatched == []


async def test_handler_errors_become_error_replies(tmp_path: Path, broker: Broker) -> None:
    handler = Recorder()
    pub = await _started(tmp_path, broker, handler)
    t = pub.topics
    plc = await asyncio.to_thread(Requester, broker, [t.reply("cam1")])
    try:
        plc.send(t.command("cam1", "teach"), '{"frames": 13}')
        plc.send(t.command("cam1", "teach"), '{"frames": 14}')
        plc.send(t.command("cam1", "trigger"), "{}")  # still serving
        replies = await asyncio.to_thread(plc.wait, 3)
    finally:
        plc.close()
        await pub.stop(grace_s=1)
    errors = [body.get("error") for _, body, _ in replies]
    assert errors == ["camera 'cam1': device lost", "internal error: RuntimeError: boom", None]


async def test_retained_commands_are_ignored(tmp_path: Path, broker: Broker) -> None:
    """A stale retained command waiting on the broker does not act when edged
    (re)subscribes; with MQTT 5 a live publish with retain set is refused with a reply."""
    handler = Recorder()
    settings = make_settings(tmp_path, broker, command_secret=SECRET)
    from edged.publish._topics import Topics

    t = Topics(settings.mqtt.prefix, settings.node_id)
    plc = await asyncio.to_thread(Requester, broker, [t.reply("cam1")])
    try:
        plc.send(t.command("cam1", "recipe"), '{"recipe": "r2"}', retain=True)  # stale
        pub = Publisher(settings, command_handler=handler)
        await pub.start()
        await pub.wait_connected()
        await asyncio.sleep(0.5)
        stale_calls = list(handler.calls)
        if broker.mqtt5:
            plc.send(t.command("cam1", "trigger"), "{}", retain=True)  # live, retained
            [(_, body, _)] = await asyncio.to_thread(plc.wait, 1)
            assert body["ok"] is False
            assert body["error"].startswith(
                "retained: commands must be published with retain=false"
            )
        plc.send(t.command("cam1", "trigger"), "{}")
        replies = await asyncio.to_thread(plc.wait, 2 if broker.mqtt5 else 1)
        await pub.stop(grace_s=1)
    finally:
        plc.close()
    assert stale_calls == []
    assert handler.calls == [("trigger", "cam1")]
    assert replies[-1][1]["ok"] is True


async def test_retained_command_ignored_with_mqtt_311(
    tmp_path: Path, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    handler = Recorder()
    settings = make_settings(tmp_path, broker, protocol="3.1.1", command_secret=SECRET)
    from edged.publish._topics import Topics

    t = Topics(settings.mqtt.prefix, settings.node_id)
    plc = await asyncio.to_thread(Requester, broker, [t.reply("cam1")])
    pub = Publisher(settings, command_handler=handler)
    try:
        plc.send(t.command("cam1", "recipe"), '{"recipe": "r2"}', retain=True)
        await pub.start()
        await pub.wait_connected()
        await asyncio.sleep(0.5)  # the broker delivers the retained message on SUBSCRIBE
        plc.send(t.command("cam1", "recipe"), '{"recipe": "r1"}')
        replies = await asyncio.to_thread(plc.wait, 1)
    finally:
        await pub.stop(grace_s=1)
        plc.close()
    assert handler.calls == [("recipe", "cam1", "r1")]
    assert [body["result"] for _, body, _ in replies] == [{"recipe": "r1"}]
    ignored = [r.getMessage() for r in caplog.records if "retained message on" in r.getMessage()]
    assert ignored == [
        f"MQTT command ignored: retained message on {t.command('cam1', 'recipe')} (retained "
        "commands never act; clear it by publishing an empty retained message to that topic)"
    ]


async def test_commands_disabled_or_limited_to_cameras(tmp_path: Path, broker: Broker) -> None:
    handler = Recorder()
    off = await _started(tmp_path / "off", broker, handler, commands=False)
    limited = await _started(
        tmp_path / "lim", broker, handler, command_cameras=["cam1"], client_id="lim"
    )
    plc = await asyncio.to_thread(
        Requester,
        broker,
        [off.topics.reply("cam1"), limited.topics.reply("cam1"), limited.topics.reply("cam2")],
    )
    try:
        plc.send(off.topics.command("cam1", "trigger"), "{}")
        plc.send(limited.topics.command("cam2", "trigger"), "{}")
        plc.send(limited.topics.command("cam1", "trigger"), "{}")
        replies = await asyncio.to_thread(plc.wait, 1)
        await asyncio.sleep(0.5)  # nothing else comes
    finally:
        plc.close()
        await off.stop(grace_s=1)
        await limited.stop(grace_s=1)
    assert handler.calls == [("trigger", "cam1")]
    assert [(topic, body["ok"]) for topic, body, _ in plc.replies] == [
        (limited.topics.reply("cam1"), True)
    ]
    assert len(replies) == 1


async def test_too_many_waiting_commands_are_refused_busy(tmp_path: Path, broker: Broker) -> None:
    handler = Recorder()
    handler.gate = asyncio.Event()
    pub = await _started(tmp_path, broker, handler)
    t = pub.topics
    plc = await asyncio.to_thread(Requester, broker, [t.reply("cam1")])
    try:
        for i in range(MAX_WAITING + 2):
            plc.send(t.command("cam1", "trigger"), json.dumps({"id": i}))
        busy = await asyncio.to_thread(plc.wait, 2)
        handler.gate.set()
        replies = await asyncio.to_thread(plc.wait, MAX_WAITING + 2)
    finally:
        plc.close()
        await pub.stop(grace_s=1)
    assert [body["error"] for _, body, _ in busy] == [
        f"busy: {MAX_WAITING} commands already waiting for camera 'cam1'"
    ] * 2
    ok_ids = [body["id"] for _, body, _ in replies if body["ok"]]
    assert ok_ids == list(range(MAX_WAITING))  # in arrival order
    assert len(handler.calls) == MAX_WAITING


def test_parse_command_unknown_name() -> None:
    with pytest.raises(
        InputError, match=r"command: expected one of \['trigger', 'recipe', 'teach'\], got 'reboot'"
    ):
        parse_command("reboot", b"{}")


class _Camera:
    """A live camera line as the daemon exposes it (CameraControl)."""

    def __init__(self, camera: str) -> None:
        self.camera = camera
        self._recipe = "r1"
        self.log: list[tuple[Any, ...]] = []

    @property
    def recipe(self) -> str:
        return self._recipe

    async def trigger(self) -> None:
        self.log.append(("trigger",))

    async def set_recipe(self, recipe: str) -> None:
        self.log.append(("recipe", recipe))
        self._recipe = recipe

    async def teach(self, recipe: str, frames: int, *, activate: bool = True) -> list[str]:
        self.log.append(("teach", recipe, frames, activate))
        return [f"ref-{i}" for i in range(frames)]

    async def activate_reference(self, recipe: str, version: str) -> str:
        self.log.append(("activate", recipe, version))
        return version


async def test_runtime_command_handler_adapts_camera_control(tmp_path: Path) -> None:
    from edged.config import Settings
    from edged.runtime.shared import Runtime

    settings = Settings(
        cameras={"cam1": {"recipe": "r1"}}, recipes={"r1": {}, "r2": {}}, state_dir=tmp_path
    )
    runtime = Runtime.build(settings)
    cam = _Camera("cam1")
    runtime.cameras["cam1"] = cam  # type: ignore[assignment]
    handler = RuntimeCommandHandler(runtime)
    try:
        assert await handler.trigger("cam1") == {}
        assert await handler.set_recipe("cam1", "r2") == {"recipe": "r2", "previous": "r1"}
        assert await handler.teach("cam1", None, 2, activate=True) == {
            "recipe": "r2",
            "frames": 2,
            "references": ["ref-0", "ref-1"],
        }
        assert await handler.teach("cam1", None, 1, activate=False) == {
            "recipe": "r2",
            "frames": 1,
            "references": ["ref-0"],
            "pending": True,
            "confirm": {"recipe": "r2", "confirm": "ref-0"},
        }
        assert await handler.confirm_teach("cam1", None, "v3") == {"recipe": "r2", "active": "v3"}
        with pytest.raises(NotFoundError, match="camera: expected one of \\['cam1'\\], got 'cam9'"):
            await handler.trigger("cam9")
    finally:
        runtime.pool.shutdown()
    assert cam.log == [
        ("trigger",),
        ("recipe", "r2"),
        ("teach", "r2", 2, True),
        ("teach", "r2", 1, False),
        ("activate", "r2", "v3"),
    ]
