"""Publisher against a real private broker: order, schema, outages, crashes, will, rejection."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from _broker import Broker, broker_fixture, make_broker_fixture, require  # noqa: F401
from _mqtt_helpers import (
    Collector,
    Received,
    eventually,
    first_seen,
    make_result,
    make_settings,
)

from edged.publish import Publisher


def _schema() -> dict:
    return json.loads(resources.files("edged").joinpath("schemas/result.v1.json").read_text())


async def test_results_arrive_in_order_and_validate(tmp_path: Path, broker: Broker) -> None:
    settings = make_settings(tmp_path, broker)
    pub = Publisher(settings)
    topics = pub.topics
    col = Collector(broker, [topics.result("cam1"), topics.verdict("cam1")]).start()
    try:
        await pub.start()
        sent = [make_result(i, verdict="fail" if i % 3 == 0 else "pass") for i in range(20)]
        for r in sent:
            await pub.publish_result(r)
        await asyncio.to_thread(col.wait_count, topics.result("cam1"), 20)
        await asyncio.to_thread(col.wait_count, topics.verdict("cam1"), 20)
    finally:
        await pub.stop(grace_s=2)
        col.stop()
    results = [m.json() for m in col.on(topics.result("cam1"))]
    assert [r["seq"] for r in results] == list(range(20))
    assert [r["id"] for r in results] == [r.id for r in sent]
    validator = jsonschema.Draft202012Validator(_schema())
    for doc in results:
        validator.validate(doc)
    assert results[3] == sent[3].to_json_dict()
    verdicts = [m.json() for m in col.on(topics.verdict("cam1"))]
    assert verdicts[0] == {
        "id": sent[0].id, "seq": 0, "camera": "cam1", "recipe": "r1",
        "verdict": "fail", "ts": sent[0].ts,
    }  # fmt: skip
    assert [v["verdict"] for v in verdicts] == [r.verdict for r in sent]
    assert all(m.qos == 1 for m in col.messages)
    stats = pub.stats()
    assert stats.published == 40
    assert stats.outbox_depth == 0


def _seqs(col: Collector, topic: str) -> list[int]:
    return [doc["seq"] for doc in first_seen(col.on(topic))]


@pytest.mark.slow
async def test_outage_every_seq_arrives_in_order(tmp_path: Path, broker: Broker) -> None:
    """Two 10 fps cameras publish through a 4 s broker outage (SIGTERM, restart on the
    same port): every seq arrives, in order per camera, none lost.

    The issue asks for 10 s; 4 s is used to keep the suite fast. The behaviour under
    test does not depend on the length: with reconnect_max_s=0.5 the publisher makes
    about ten failed connection attempts in 4 s and the outbox accumulates ~160
    messages, so every code path of a long outage (backoff, accumulation, resend of
    the in-flight window, ordered drain) runs; a longer outage only adds rows.
    """
    require(broker, persistent=True)
    settings = make_settings(tmp_path, broker)
    pub = Publisher(settings)
    t = pub.topics
    col = Collector(broker, [t.result("cam1"), t.result("cam2"), t.verdict("cam1")]).start()
    await pub.start()
    await pub.wait_connected()
    producing = True

    async def produce() -> int:
        seq = 0
        while producing:
            for cam in ("cam1", "cam2"):
                await pub.publish_result(make_result(seq, camera=cam))
            seq += 1
            await asyncio.sleep(0.1)
        return seq

    producer = asyncio.create_task(produce())
    try:
        await asyncio.sleep(1.0)
        await asyncio.to_thread(broker.stop)
        await asyncio.sleep(4.0)
        during = pub.stats()
        await asyncio.to_thread(broker.start)
        await asyncio.sleep(1.0)
        producing = False
        n = await producer
        for topic in (t.result("cam1"), t.result("cam2"), t.verdict("cam1")):
            await asyncio.to_thread(
                col.wait_for,
                lambda ms, tp=topic: len(first_seen([m for m in ms if m.topic == tp])) >= n,
                15,
            )
    finally:
        producing = False
        await pub.stop(grace_s=2)
        col.stop()
    assert not during.connected
    assert during.outbox_depth >= 100  # ~4 s x 2 cameras x 10 fps x 2 topics
    assert n >= 55
    for topic in (t.result("cam1"), t.result("cam2"), t.verdict("cam1")):
        assert _seqs(col, topic) == list(range(n)), topic
    after = pub.stats()
    assert after.reconnects >= 1
    assert after.outbox_depth == 0


TESTS = Path(__file__).resolve().parent


def _spawn(settings: object, mode: str) -> subprocess.Popen[str]:
    dump = settings.model_dump_json()  # type: ignore[attr-defined]
    return subprocess.Popen(
        [sys.executable, str(TESTS / "_publisher_child.py"), dump, mode],
        stdout=subprocess.PIPE,
        text=True,
        cwd=TESTS.parent,
    )


async def _read_until(
    proc: subprocess.Popen[str], pred: Callable[[str], bool], timeout_s: float = 15
) -> list[str]:
    """Lines the child printed, up to and including the first one that matches."""
    assert proc.stdout is not None
    lines: list[str] = []
    async with asyncio.timeout(timeout_s):
        while True:
            line = await asyncio.to_thread(proc.stdout.readline)
            if not line:
                msg = f"child exited with {proc.wait()} after {lines[-3:]}"
                raise AssertionError(msg)
            lines.append(line.strip())
            if pred(lines[-1]):
                return lines


def _kill9(proc: subprocess.Popen[str]) -> list[str]:
    """SIGKILL the child; returns what it printed that was not read yet."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.stdout is not None
    rest = proc.stdout.read().splitlines()
    proc.stdout.close()
    return rest


@pytest.mark.slow
async def test_crash_while_broker_down_loses_nothing(tmp_path: Path, broker: Broker) -> None:
    """A daemon streaming results is kill -9'ed while the broker is down; a new one on
    the same state_dir starts, the broker comes back: every result the killed process
    had committed (printed after put) arrives, in order."""
    require(broker, persistent=True)
    settings = make_settings(tmp_path, broker)
    t = Publisher(settings).topics
    col = Collector(broker, [t.result("cam1")]).start()
    child = _spawn(settings, "stream")
    try:
        printed = await _read_until(child, lambda line: line == "seq 5")
        await asyncio.to_thread(col.wait_count, t.result("cam1"), 3)
        await asyncio.to_thread(broker.stop)
        await asyncio.sleep(0.8)  # the child keeps computing results while the broker is down
    finally:
        printed += _kill9(child)
    committed = [int(line.split()[1]) for line in printed if line.startswith("seq ")]
    assert committed == list(range(len(committed)))
    assert len(committed) >= 15  # 0.8 s at 20 results/s after seq 5
    pub = Publisher(settings)
    await pub.start()
    try:
        assert pub.stats().outbox_depth >= 10  # the killed process's undelivered results
        await asyncio.to_thread(broker.start)
        await asyncio.to_thread(col.wait_for, lambda ms: len(first_seen(ms)) >= len(committed), 15)
        await pub.stop(grace_s=2)
    finally:
        await pub.stop(grace_s=0)
        col.stop()
    assert _seqs(col, t.result("cam1"))[: len(committed)] == committed
    assert pub.stats().outbox_depth == 0


async def test_status_online_then_offline_on_kill_then_stopped_on_clean_stop(
    tmp_path: Path, broker: Broker
) -> None:
    """Retained status: ``online`` on connect, the last will ``offline`` when the process
    is killed (-9, no DISCONNECT), ``stopped`` after a clean stop."""
    settings = make_settings(tmp_path, broker)
    status = Publisher(settings).topics.status
    col = Collector(broker, [status]).start()
    child = _spawn(settings, "connect")
    try:
        await _read_until(child, lambda line: line == "connected")
        await asyncio.to_thread(col.wait_for, lambda ms: [m.payload for m in ms] == [b"online"])
    finally:
        _kill9(child)
    await asyncio.to_thread(col.wait_for, lambda ms: len(ms) >= 2)
    pub = Publisher(settings)
    await pub.start()
    await pub.wait_connected()
    await pub.stop(grace_s=2)
    await asyncio.to_thread(col.wait_for, lambda ms: len(ms) >= 4)
    col.stop()
    assert [m.payload for m in col.messages] == [b"online", b"offline", b"online", b"stopped"]
    # a late subscriber sees the retained last word
    late = Collector(broker, [status]).start()
    await asyncio.to_thread(late.wait_for, lambda ms: len(ms) >= 1)
    late.stop()
    assert [(m.payload, m.retain) for m in late.messages] == [(b"stopped", True)]


async def test_rejected_results_go_to_dead_letter_and_publisher_keeps_running(
    tmp_path: Path, make_broker: Callable[..., Broker]
) -> None:
    """mosquitto 2.0.11 answers an ACL-denied QoS 1 PUBLISH from an MQTT 5 client with
    PUBACK reason 135 (Not authorized); such results go to the dead-letter table with
    the reason, are not retried, and everything else keeps flowing."""
    if not Broker(tmp_path / "probe").mqtt5:
        pytest.skip("needs mosquitto (ACL, MQTT 5 reason codes)")
    prefix = "tacl"
    acl = f"topic readwrite #\ntopic deny {prefix}/line-7/cam1/result\n"
    broker = make_broker(acl=acl, verbose_log=True)
    settings = make_settings(tmp_path, broker, prefix=prefix)
    pub = Publisher(settings)
    t = pub.topics
    col = Collector(broker, [t.verdict("cam1"), t.result("cam2")]).start()
    await pub.start()
    try:
        sent = [make_result(i) for i in range(5)]
        for r in sent:
            await pub.publish_result(r)
        await pub.publish_result(make_result(0, camera="cam2"))
        await asyncio.to_thread(col.wait_count, t.verdict("cam1"), 5)
        await asyncio.to_thread(col.wait_count, t.result("cam2"), 1)
        await eventually(lambda: pub.stats().dead_lettered == 5 and not pub.stats().outbox_depth)
        dead = await pub.outbox.dead_letters()
        assert pub.connected
        # still running: a later result is delivered
        await pub.publish_result(make_result(5))
        await asyncio.to_thread(col.wait_count, t.verdict("cam1"), 6)
    finally:
        await pub.stop(grace_s=2)
        col.stop()
    assert [d.topic for d in dead] == [t.result("cam1")] * 5
    assert {(d.reason_code, d.reason) for d in dead} == {(135, "Not authorized")}
    assert [json.loads(d.payload)["id"] for d in dead] == [r.id for r in sent]
    stats = pub.stats()
    assert stats.dead_lettered == 6
    assert stats.dead_letter_depth == 6
    assert stats.published == 8  # cam1: 6 verdicts; cam2: 1 verdict + 1 result
    assert "Sending PUBACK to edged-line-7" in broker.log_text()
    assert "rc135" in broker.log_text()


async def test_outbox_cap_drops_oldest_and_counts(tmp_path: Path, broker: Broker) -> None:
    """With the broker down and a cap of 5 messages, 12 verdicts leave the newest 5;
    the 7 dropped are counted (stats and the Prometheus counter), and the 5 kept are
    delivered, in order, when the broker returns."""
    from edged.runtime.metrics import Metrics

    metrics = Metrics()
    settings = make_settings(
        tmp_path, broker, outbox_max_messages=5, topics={"result": False, "state": False}
    )
    pub = Publisher(settings, metrics=metrics)
    t = pub.topics
    col = Collector(broker, [t.verdict("cam1")]).start()
    await asyncio.to_thread(broker.stop)
    await pub.start()
    try:
        for i in range(12):
            await pub.publish_result(make_result(i))
        stats = pub.stats()
        await asyncio.to_thread(broker.start)
        await asyncio.to_thread(col.wait_count, t.verdict("cam1"), 5)
    finally:
        await pub.stop(grace_s=2)
        col.stop()
    assert (stats.outbox_depth, stats.dropped) == (5, 7)
    assert [m.json()["seq"] for m in col.messages] == [7, 8, 9, 10, 11]
    sample = metrics.registry.get_sample_value(
        "edged_outbox_dropped_total", {"reason": "max_messages"}
    )
    assert sample == 7.0


async def test_state_retained_and_republished_on_reconnect(tmp_path: Path, broker: Broker) -> None:
    """``state`` is retained, republished from live state after every reconnect (a live
    publish, not only the broker's retained copy), and not re-sent while unchanged."""
    require(broker, persistent=True)
    settings = make_settings(tmp_path, broker)
    pub = Publisher(settings)
    topic = pub.topics.state("cam1")
    col = Collector(broker, [topic]).start()

    def live(ms: list[Received]) -> list[dict]:
        # Retained copies come on re-subscribe; a dup is the broker redelivering a message
        # whose PUBACK it had not seen when it stopped (the collector's session persists):
        # at least once, not a second publish by edged.
        return [m.json() for m in ms if not m.retain and not m.dup]

    await pub.start()
    try:
        pub.set_state("cam1", {"connected": True, "fps": 10.0, "recipe": "r1"})
        await pub.wait_connected()
        await asyncio.to_thread(col.wait_for, lambda ms: len(live(ms)) == 1)
        pub.set_state("cam1", {"connected": True, "fps": 10.0, "recipe": "r1"})  # unchanged
        await asyncio.to_thread(broker.restart)
        await asyncio.to_thread(col.wait_for, lambda ms: len(live(ms)) >= 2)
        pub.set_state("cam1", {"connected": False, "fps": 0.0, "recipe": "r1"})
        await asyncio.to_thread(col.wait_for, lambda ms: len(live(ms)) >= 3)
        reconnects = pub.stats().reconnects
    finally:
        await pub.stop(grace_s=2)
        col.stop()
    # One live republish per reconnect (a loaded machine may see the link drop and
    # come back more than once around the broker restart), none for the unchanged set.
    assert reconnects >= 1
    up = {"connected": True, "fps": 10.0, "recipe": "r1"}
    assert live(col.messages) == [
        up,
        *[up] * reconnects,
        {"connected": False, "fps": 0.0, "recipe": "r1"},
    ]
    late = Collector(broker, [topic]).start()
    await asyncio.to_thread(late.wait_for, lambda ms: len(ms) == 1)
    late.stop()
    assert late.messages[0].retain
    assert late.messages[0].json()["connected"] is False


async def test_mqtt_311_option(tmp_path: Path, broker: Broker) -> None:
    settings = make_settings(tmp_path, broker, protocol="3.1.1")
    pub = Publisher(settings)
    t = pub.topics
    col = Collector(broker, [t.result("cam2")]).start()
    await pub.start()
    try:
        for i in range(5):
            await pub.publish_result(make_result(i, camera="cam2"))
        await asyncio.to_thread(col.wait_count, t.result("cam2"), 5)
    finally:
        await pub.stop(grace_s=2)
        col.stop()
    assert [m.json()["seq"] for m in col.messages] == [0, 1, 2, 3, 4]


async def test_password_from_file_and_refused_credentials(
    tmp_path: Path, make_broker: Callable[..., Broker], caplog: pytest.LogCaptureFixture
) -> None:
    if not Broker(tmp_path / "probe").mqtt5:
        pytest.skip("needs mosquitto (password_file)")
    broker = make_broker(passwords={"edged": "s3cret", "watcher": "w"})
    secret = tmp_path / "mqtt-password"
    secret.write_text("s3cret\n")
    good = make_settings(tmp_path, broker, username="edged", password_file=secret)
    bad = make_settings(
        tmp_path / "bad", broker, username="edged", password="wrong", client_id="edged-bad"
    )
    pub_bad = Publisher(bad)
    await pub_bad.start()
    pub = Publisher(good)
    await pub.start()
    try:
        async with asyncio.timeout(5):
            await pub.wait_connected()
        await pub_bad.publish_result(make_result(0))
        await asyncio.sleep(1.0)  # several refused attempts
        assert not pub_bad.connected
        assert pub_bad.stats().outbox_depth == 2  # kept, not lost
    finally:
        await pub.stop(grace_s=1)
        await pub_bad.stop(grace_s=0)
    refused = [r.getMessage() for r in caplog.records if "refused the connection" in r.getMessage()]
    assert len(refused) == 1, refused  # one line per state change, not one per attempt
    assert "Not authorized" in refused[0] or "Bad user name or password" in refused[0]


def _make_certs(d: Path) -> tuple[Path, Path, Path, Path, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate (openssl CLI)."""
    d.mkdir()

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=edged-test-ca",
    )
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        run("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        run(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", "san.ext",
        )  # fmt: skip
    return d / "ca.crt", d / "server.crt", d / "server.key", d / "client.crt", d / "client.key"


async def test_tls_with_client_certificate(
    tmp_path: Path, make_broker: Callable[..., Broker]
) -> None:
    if not Broker(tmp_path / "probe").mqtt5 or shutil.which("openssl") is None:
        pytest.skip("needs mosquitto and the openssl CLI")
    ca, srv_crt, srv_key, cli_crt, cli_key = _make_certs(tmp_path / "pki")
    broker = make_broker(tls=(ca, srv_crt, srv_key))
    settings = make_settings(
        tmp_path, broker, tls=True, ca_file=ca, cert_file=cli_crt, key_file=cli_key
    )
    pub = Publisher(settings)
    await pub.start()
    try:
        await pub.publish_result(make_result(0))
        await eventually(lambda: pub.stats().published == 2)
    finally:
        await pub.stop(grace_s=1)
    assert pub.stats().outbox_depth == 0
    # without the client certificate the broker refuses the TLS handshake
    nocert = make_settings(tmp_path / "nocert", broker, tls=True, ca_file=ca, client_id="x")
    pub2 = Publisher(nocert)
    await pub2.start()
    await asyncio.sleep(0.5)
    assert not pub2.connected
    await pub2.stop(grace_s=0)


async def test_backlog_drain_respects_drain_rate(tmp_path: Path, broker: Broker) -> None:
    """A backlog is sent no faster than mqtt.drain_rate_per_s (messages/s), in order.
    Only a lower bound on the time is asserted: a slow machine can only take longer."""
    settings = make_settings(
        tmp_path, broker, drain_rate_per_s=100, topics={"result": False, "state": False}
    )
    pub = Publisher(settings)
    t = pub.topics
    col = Collector(broker, [t.verdict("cam1")]).start()
    await asyncio.to_thread(broker.stop)
    await pub.start()
    try:
        for i in range(30):
            await pub.publish_result(make_result(i))
        await asyncio.to_thread(broker.start)
        await pub.wait_connected()
        t0 = time.monotonic()
        await eventually(lambda: pub.stats().outbox_depth == 0, timeout_s=10)
        elapsed = time.monotonic() - t0
        await asyncio.to_thread(col.wait_count, t.verdict("cam1"), 30)
    finally:
        await pub.stop(grace_s=1)
        col.stop()
    assert elapsed >= (30 - 5) / 100  # 5 = the token bucket's burst (50 ms at 100/s)
    assert [m.json()["seq"] for m in col.messages] == list(range(30))
