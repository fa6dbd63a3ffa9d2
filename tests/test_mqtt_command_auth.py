"""Issue 20, item 1: the MQTT control plane refuses unauthorised commands.

A real broker, the real Publisher and CommandRouter; the attacker is a plain MQTT
client. Every refusal is answered, counted by reason and logged at most once per
interval. With ``trust_broker_acl`` the shipped mosquitto ACL example is the control,
tested on a private mosquitto with that ACL and a password file.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from pathlib import Path

import pytest
from _broker import Broker, broker_fixture, make_broker_fixture, require  # noqa: F401
from _mqtt_helpers import make_settings
from test_mqtt_commands import SECRET, Recorder, Requester

from edged.cli.command_token import cmd_command_token
from edged.cli.main import _parser
from edged.config import load_settings
from edged.core.errors import ConfigError
from edged.publish import Publisher
from edged.publish.command_auth import CommandVerifier, sign_command
from edged.runtime.metrics import Metrics

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


async def _publisher(tmp_path: Path, broker: Broker, metrics: Metrics, **mqtt: object) -> Publisher:
    pub = Publisher(
        make_settings(tmp_path, broker, **mqtt), metrics, command_handler=RECORDER_SLOT[0]
    )
    await pub.start()
    async with asyncio.timeout(5):
        await pub.wait_connected()
    await asyncio.sleep(0.2)  # SUBACK
    return pub


RECORDER_SLOT: list[Recorder] = []


@pytest.fixture(autouse=True)
def _recorder() -> None:
    RECORDER_SLOT[:] = [Recorder()]


def _refused(metrics: Metrics, reason: str) -> float:
    value = metrics.registry.get_sample_value(
        "edged_mqtt_commands_refused_total", {"reason": reason}
    )
    return value or 0.0


async def test_unsigned_forged_stale_and_replayed_commands_are_refused(
    tmp_path: Path, broker: Broker
) -> None:
    """The attack of issue 20: an anonymous client sends cmd/recipe and cmd/teach.
    Today's code ran them; now each is refused with its reason, and a correctly signed
    command still runs exactly once."""
    metrics = Metrics()
    pub = await _publisher(tmp_path, broker, metrics, command_secret=SECRET)
    handler = RECORDER_SLOT[0]
    t = pub.topics
    recipe = t.command("cam1", "recipe")
    attacker = await asyncio.to_thread(Requester, broker, [t.reply("cam1")], secret=None)
    plc = await asyncio.to_thread(Requester, broker, [t.reply("cam2")], secret=None)
    good = sign_command(SECRET.encode(), recipe, {"recipe": "r2", "id": "good"})
    try:
        attacker.send(recipe, json.dumps({"recipe": "r2", "id": "anon"}))
        attacker.send(t.command("cam1", "teach"), json.dumps({"frames": 250, "id": "anon"}))
        forged = sign_command(b"not-the-secret-xxxxxxxx", recipe, {"recipe": "r2", "id": "f"})
        attacker.send(recipe, json.dumps(forged))
        tampered = sign_command(SECRET.encode(), recipe, {"recipe": "r1", "id": "t"})
        tampered["recipe"] = "r2"
        attacker.send(recipe, json.dumps(tampered))
        other_topic = sign_command(SECRET.encode(), t.command("cam2", "recipe"), {"recipe": "r2"})
        attacker.send(recipe, json.dumps({**other_topic, "id": "x"}))
        stale = sign_command(SECRET.encode(), recipe, {"recipe": "r2"}, ts=int(time.time()) - 600)
        attacker.send(recipe, json.dumps({**stale}))
        plc.send(recipe, json.dumps(good))
        replies = await asyncio.to_thread(attacker.wait, 7)
        attacker.send(recipe, json.dumps(good))  # the attacker replays what it saw
        replies = await asyncio.to_thread(attacker.wait, 8)
        await asyncio.sleep(0.3)
    finally:
        attacker.close()
        plc.close()
        await pub.stop(grace_s=1)
    assert handler.calls == [("recipe", "cam1", "r2")]
    errors = [body.get("error", "OK") for _, body, _ in replies]
    assert errors.count("OK") == 1
    assert sum(e.startswith("unauthorised: expected an 'auth' token") for e in errors) == 2
    assert sum("MAC does not match" in e for e in errors) == 3
    assert sum("from this node's clock; expected within ±30 s" in e for e in errors) == 1
    assert errors[-1].startswith("unauthorised: replay of an already accepted command")
    assert _refused(metrics, "missing_token") == 2
    assert _refused(metrics, "bad_token") == 3
    assert _refused(metrics, "stale") == 1
    assert _refused(metrics, "replay") == 1


async def test_refusals_are_logged_rate_limited(
    tmp_path: Path, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    pub = await _publisher(tmp_path, broker, metrics, command_secret=SECRET)
    t = pub.topics
    attacker = await asyncio.to_thread(Requester, broker, [t.reply("cam1")], secret=None)
    try:
        with caplog.at_level(logging.WARNING, logger="edged.publish.commands"):
            for i in range(20):
                attacker.send(t.command("cam1", "trigger"), json.dumps({"id": i}))
            await asyncio.to_thread(attacker.wait, 20)
    finally:
        attacker.close()
        await pub.stop(grace_s=1)
    lines = [r.getMessage() for r in caplog.records if "MQTT command refused" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].startswith("MQTT command refused (missing_token): trigger for cam1")
    assert _refused(metrics, "missing_token") == 20
    assert RECORDER_SLOT[0].calls == []


async def test_without_a_secret_every_command_is_refused_and_start_says_so(
    tmp_path: Path, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    with caplog.at_level(logging.WARNING):
        pub = await _publisher(tmp_path, broker, metrics)
    t = pub.topics
    plc = await asyncio.to_thread(Requester, broker, [t.reply("cam1")])  # signs, to no avail
    try:
        plc.send(t.command("cam1", "trigger"), "{}")
        [(_, body, _)] = await asyncio.to_thread(plc.wait, 1)
    finally:
        plc.close()
        await pub.stop(grace_s=1)
    assert body["error"].startswith("unauthorised: no command secret is configured")
    assert RECORDER_SLOT[0].calls == []
    assert _refused(metrics, "no_secret") == 1
    assert any(
        "MQTT commands are enabled but every one will be refused" in r.getMessage()
        for r in caplog.records
    )


async def test_mqtt_311_start_warns_that_acl_denials_are_invisible(
    tmp_path: Path, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        pub = await _publisher(tmp_path, broker, Metrics(), protocol="3.1.1", command_secret=SECRET)
        await pub.stop(grace_s=1)
    assert any(
        r.getMessage().startswith("MQTT 3.1.1: the broker cannot tell edged that it refused")
        for r in caplog.records
    )


async def test_teach_frames_are_bounded(tmp_path: Path, broker: Broker) -> None:
    """``frames: 250`` (the issue's +955 MB teach) is refused before anything is
    collected; within the bound the router asks for a pending (unconfirmed) teach."""
    pub = await _publisher(tmp_path, broker, Metrics(), command_secret=SECRET)
    t = pub.topics
    plc = await asyncio.to_thread(Requester, broker, [t.reply("cam1")])
    try:
        plc.send(t.command("cam1", "teach"), json.dumps({"frames": 250, "id": 1}))
        plc.send(t.command("cam1", "teach"), json.dumps({"frames": 3, "id": 2}))
        plc.send(t.command("cam1", "teach"), json.dumps({"confirm": "v4", "id": 3}))
        plc.send(t.command("cam1", "teach"), json.dumps({"confirm": "v4", "frames": 2, "id": 4}))
        replies = await asyncio.to_thread(plc.wait, 4)
    finally:
        plc.close()
        await pub.stop(grace_s=1)
    by_id = {body["id"]: body for _, body, _ in replies}
    assert by_id[1]["error"] == "frames: expected 1..20 (mqtt.teach_max_frames), got 250"
    assert by_id[2]["ok"] is True
    assert by_id[3]["result"] == {"active": "v4"}
    assert by_id[4]["error"] == (
        "payload: expected either 'frames' (teach) or 'confirm' (activate), got both"
    )
    handler = RECORDER_SLOT[0]
    assert handler.calls == [("teach", "cam1", None, 3), ("confirm", "cam1", None, "v4")]
    assert handler.activations == [False]


async def test_broker_acl_is_the_control_with_trust_broker_acl(
    tmp_path: Path, make_broker: object
) -> None:
    """The shipped configs/mosquitto.acl on a private mosquitto with passwords: the
    read-only user's command never reaches edged, the PLC user's does (no token
    needed), and anonymous clients cannot connect."""
    from _broker import mosquitto_available

    if not mosquitto_available():
        pytest.skip("needs mosquitto (ACL and password files)")
    prefix = "acl"
    acl = (CONFIGS / "mosquitto.acl").read_text().replace("edged/", f"{prefix}/")
    users = {"edged": "pw-edged", "plc": "pw-plc", "mes": "pw-mes"}
    broker = make_broker(acl=acl, passwords=users)  # type: ignore[operator]
    metrics = Metrics()
    pw = tmp_path / "mqtt-password"
    pw.write_text("pw-edged\n")
    pub = await _publisher(
        tmp_path,
        broker,
        metrics,
        prefix=prefix,
        trust_broker_acl=True,
        username="edged",
        password_file=pw,
    )
    t = pub.topics
    mes = await asyncio.to_thread(
        Requester, broker, [t.reply("cam1")], secret=None, username="mes", password="pw-mes"
    )
    plc = await asyncio.to_thread(
        Requester, broker, [t.reply("cam1")], secret=None, username="plc", password="pw-plc"
    )
    try:
        mes.send(t.command("cam1", "recipe"), json.dumps({"recipe": "r2", "id": "mes"}))
        plc.send(t.command("cam1", "recipe"), json.dumps({"recipe": "r2", "id": "plc"}))
        replies = await asyncio.to_thread(plc.wait, 1)
        await asyncio.sleep(0.5)  # a denied command would have been answered by now
        with pytest.raises(AssertionError):  # anonymous: CONNACK refused, no SUBACK
            Requester(broker, [t.reply("cam1")], secret=None)
    finally:
        mes.close()
        plc.close()
        await pub.stop(grace_s=1)
    assert RECORDER_SLOT[0].calls == [("recipe", "cam1", "r2")]
    assert [body["id"] for _, body, _ in replies] == ["plc"]
    assert [body["id"] for _, body, _ in plc.replies] == ["plc"]


def test_command_token_cli_output_verifies(tmp_path: Path) -> None:
    secret_file = tmp_path / "cmd-secret"
    secret_file.write_text(SECRET + "\n")
    cfg = tmp_path / "edged.yaml"
    cfg.write_text(
        "node_id: line-3\ncameras: {cam1: {recipe: r1}}\nrecipes: {r1: {}, r2: {}}\n"
        f"mqtt: {{prefix: plant, command_secret_file: {secret_file}}}\n"
    )
    args = _parser().parse_args(
        ["command-token", "-c", str(cfg), "--camera", "cam1", "recipe", '{"recipe": "r2"}']
    )
    out, err = io.StringIO(), io.StringIO()
    assert cmd_command_token(args, out, err) == 0
    assert err.getvalue() == "topic: plant/line-3/cam1/cmd/recipe\n"
    payload = json.loads(out.getvalue())
    verifier = CommandVerifier(SECRET.encode(), window_s=30)
    assert verifier.verify("plant/line-3/cam1/cmd/recipe", payload) == {"recipe": "r2"}
    with pytest.raises(Exception, match="MAC does not match"):
        CommandVerifier(SECRET.encode(), window_s=30).verify(
            "plant/line-3/cam2/cmd/recipe", payload
        )


def test_replay_memory_is_bounded() -> None:
    now = [1_000_000.0]
    v = CommandVerifier(b"k" * 16, window_s=30, max_remembered=3, clock=lambda: now[0])
    for i in range(3):
        v.verify("t", sign_command(b"k" * 16, "t", {"id": i}, ts=int(now[0])))
    with pytest.raises(Exception, match="3 commands accepted within the last 30 s"):
        v.verify("t", sign_command(b"k" * 16, "t", {"id": 9}, ts=int(now[0])))
    now[0] += 31  # the remembered ones are stale now: forgotten, room again
    v.verify("t", sign_command(b"k" * 16, "t", {"id": 10}, ts=int(now[0])))
    assert v.remembered == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mqtt: {command_secret: ''}\n", "command_secret: expected at least 16 characters"),
        ("mqtt: {command_secret: short}\n", "command_secret: expected at least 16 characters"),
    ],
)
def test_weak_command_secrets_are_config_errors(tmp_path: Path, text: str, expected: str) -> None:
    cfg = tmp_path / "edged.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=expected):
        load_settings(cfg)


def test_blank_command_secret_file_is_a_config_error(tmp_path: Path) -> None:
    blank = tmp_path / "secret"
    blank.write_text("\n")
    cfg = tmp_path / "edged.yaml"
    cfg.write_text(f"mqtt: {{command_secret_file: {blank}}}\n")
    with pytest.raises(ConfigError, match="expected a file holding the secret, got an empty"):
        load_settings(cfg).command_secret()
