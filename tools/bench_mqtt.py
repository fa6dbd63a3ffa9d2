"""Benchmark edged's MQTT delivery against a private mosquitto, with a plain paho baseline.

    .venv/bin/python tools/bench_mqtt.py [--results 10000] [--latency-n 300]

Prints (and with ``--json`` emits) three figures, each next to a baseline measured in
the same run against the same broker:

1. **Latency**: result handed to edged -> received by a subscriber, at 20 results/s
   (two 10 fps cameras), QoS 1, p50/p99; baseline: the same payloads published with
   a bare paho client. The difference of the medians is the outbox's overhead per
   result (durable SQLite commit + the sender's fetch).
2. **publish_result()**: how long the call takes (until the result is on disk),
   p50/p99, and how many results/s the outbox accepts back to back.
3. **Backlog drain**: N results (2N messages: verdict + result) accumulated while
   the broker is down are delivered (all PUBACKed) after it returns — with the
   default ``mqtt.drain_rate_per_s`` and unthrottled; baseline: a bare paho client
   publishing the same 2N messages with the same in-flight window.
4. **Daemon**: frame -> subscriber latency, p50/p99, with the real daemon and two
   synthetic 1280x1024 BayerRG8 cameras at 10 fps (demo recipe when its checks are
   built in), and the part of it from the line handing the Result to the publisher.

Needs /usr/sbin/mosquitto (uses the test suite's private-broker helper).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import paho.mqtt.client as mqtt  # noqa: E402
from _broker import Broker  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402

from edged.config import Settings  # noqa: E402
from edged.core.result import FrameInfo, RegionModel, Result, iso_utc, new_result_id  # noqa: E402
from edged.publish import Publisher  # noqa: E402


def realistic_result(seq: int, camera: str) -> Result:
    """A Result of typical size (~1.5 KB JSON): several checks' figures and regions."""
    now = iso_utc(time.time_ns())
    return Result(
        id=new_result_id(),
        seq=seq,
        node="bench",
        camera=camera,
        recipe="label",
        ts=now,
        frame=FrameInfo(width=1280, height=1024, pixel_format="BayerRG8", seq=seq, host_ts=now),
        verdict="fail" if seq % 5 == 0 else "pass",
        reasons=["difference.count == 0"] if seq % 5 == 0 else [],
        checks={
            "quality": {
                "brightness": {"mean_level": 118.4, "over_per": 0.2, "under_per": 0.0},
                "contrast": {"rms": 41.7},
                "sharpness": {"laplacian_var": 812.5},
                "encoding": "OK",
            },
            "difference": {"count": int(seq % 5 == 0), "max_area_px": 311, "mse": 12.8},
            "align": {"dx_px": 3.1, "dy_px": -1.2, "angle_deg": 0.4, "inliers": 412},
        },
        regions=[
            RegionModel(
                x=100 + i,
                y=200,
                width=30,
                height=12,
                label="scratch",
                check="difference",
                score=0.91,
                area_px=311,
            )
            for i in range(3)
        ],
        timings_ms={"decode": 4.1, "quality": 6.3, "align": 9.8, "difference": 7.7, "total": 28.4},
    )


class Subscriber:
    """Counts and timestamps (perf_counter) every message on its topics."""

    def __init__(self, broker: Broker, topics: list[str]) -> None:
        self.arrived: dict[str, float] = {}
        self.count = 0
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"bench-sub-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.on_message = self._on_message
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        # persistent session, (re)subscribed on every connect: survives the broker restart
        self.client.on_connect = lambda c, *a: c.subscribe([(t, 1) for t in topics])
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 600
        self.client.connect(broker.host, broker.port, clean_start=False, properties=props)
        self.client.loop_start()
        done.wait(5)

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        key = json.loads(msg.payload)["id"] + ("/v" if msg.topic.endswith("verdict") else "")
        with self._lock:
            self.arrived.setdefault(key, now)
            self.count += 1

    def wait_count(self, n: int, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while self.count < n and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def settings_for(broker: Broker, state: Path, **mqtt_opts: Any) -> Settings:
    return Settings(
        node_id="bench",
        state_dir=state,
        references_dir=state / "refs",
        mqtt={"host": broker.host, "port": broker.port, "prefix": "bench", **mqtt_opts},
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---------------------------------------------------------------------- 1 + 2: latency


async def latency_edged(broker: Broker, tmp: Path, n: int, rate: float) -> dict[str, Any]:
    pub = Publisher(settings_for(broker, tmp / "lat"))
    sub = Subscriber(broker, ["bench/bench/+/verdict"])
    await pub.start()
    await pub.wait_connected()
    sent: dict[str, float] = {}
    call_ms: list[float] = []
    try:
        for i in range(n):
            r = realistic_result(i, "cam1" if i % 2 == 0 else "cam2")
            t0 = time.perf_counter()
            sent[r.id + "/v"] = t0
            await pub.publish_result(r)
            call_ms.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(max(0.0, 1 / rate - (time.perf_counter() - t0)))
        await asyncio.to_thread(sub.wait_count, n)
    finally:
        await pub.stop(grace_s=5)
        sub.stop()
    lat = [(sub.arrived[k] - t) * 1000 for k, t in sent.items() if k in sub.arrived]
    return {"n": n, "received": len(lat), "lat_ms": lat, "call_ms": call_ms}


def latency_paho(broker: Broker, n: int, rate: float) -> dict[str, Any]:
    sub = Subscriber(broker, ["bench/plain/+/verdict"])
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-plain", protocol=mqtt.MQTTv5)
    c.connect(broker.host, broker.port)
    c.loop_start()
    sent: dict[str, float] = {}
    for i in range(n):
        r = realistic_result(i, "cam1" if i % 2 == 0 else "cam2")
        payload = json.dumps(r.compact(), separators=(",", ":")).encode()
        t0 = time.perf_counter()
        sent[r.id + "/v"] = t0
        c.publish(f"bench/plain/{r.camera}/verdict", payload, 1)
        c.publish(f"bench/plain/{r.camera}/result", r.to_json().encode(), 1)
        time.sleep(max(0.0, 1 / rate - (time.perf_counter() - t0)))
    sub.wait_count(n)
    c.disconnect()
    c.loop_stop()
    sub.stop()
    lat = [(sub.arrived[k] - t) * 1000 for k, t in sent.items() if k in sub.arrived]
    return {"n": n, "received": len(lat), "lat_ms": lat}


async def put_rate(broker: Broker, tmp: Path, n: int) -> float:
    """Results/s publish_result() accepts back to back while the broker is unreachable."""
    pub = Publisher(settings_for(broker, tmp / "put", port=1))  # nothing listens on port 1
    await pub.start()
    results = [realistic_result(i, "cam1") for i in range(n)]
    t0 = time.perf_counter()
    await asyncio.gather(*(pub.publish_result(r) for r in results))
    dt = time.perf_counter() - t0
    await pub.stop(grace_s=0)
    return n / dt


# ---------------------------------------------------------------------- 3: drain


async def drain_edged(
    broker: Broker, tmp: Path, n: int, rate_per_s: float | None
) -> dict[str, Any]:
    opts: dict[str, Any] = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.1}
    if rate_per_s is not None:
        opts["drain_rate_per_s"] = rate_per_s
    name = f"drain-{rate_per_s or 'default'}"
    settings = settings_for(broker, tmp / name, **opts)
    sub = Subscriber(broker, ["bench/bench/+/verdict", "bench/bench/+/result"])
    await asyncio.to_thread(broker.stop)
    pub = Publisher(settings)
    await pub.start()
    for start in range(0, n, 500):
        await asyncio.gather(
            *(
                pub.publish_result(realistic_result(i, "cam1"))
                for i in range(start, min(n, start + 500))
            )
        )
    depth = pub.stats().outbox_depth
    await asyncio.to_thread(broker.start)
    await pub.wait_connected()
    t0 = time.perf_counter()
    for _ in range(100_000):  # until every message is acknowledged
        if pub.stats().outbox_depth == 0:
            break
        await asyncio.sleep(0.005)
    dt = time.perf_counter() - t0
    await asyncio.to_thread(sub.wait_count, 2 * n)
    received = sub.count
    await pub.stop(grace_s=2)
    sub.stop()
    return {"messages": depth, "seconds": dt, "results_per_s": n / dt, "received": received}


def drain_paho(broker: Broker, n: int, inflight: int) -> dict[str, Any]:
    """A bare paho client (network thread) publishing 2n messages; ``inflight`` 0 = no limit."""
    sub = Subscriber(
        broker, [f"bench/plain{inflight}/+/verdict", f"bench/plain{inflight}/+/result"]
    )
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-plain-{inflight}", protocol=mqtt.MQTTv5
    )
    c.max_inflight_messages_set(inflight)
    acked = 0
    done = threading.Event()

    def on_publish(*_: Any) -> None:
        nonlocal acked
        acked += 1
        if acked == 2 * n:
            done.set()

    c.on_publish = on_publish
    c.connect(broker.host, broker.port)
    c.loop_start()
    msgs = []
    for i in range(n):
        r = realistic_result(i, "cam1")
        msgs.append((f"bench/plain{inflight}/cam1/verdict", json.dumps(r.compact()).encode()))
        msgs.append((f"bench/plain{inflight}/cam1/result", r.to_json().encode()))
    t0 = time.perf_counter()
    for topic, payload in msgs:
        c.publish(topic, payload, 1)
    done.wait(120)
    dt = time.perf_counter() - t0
    sub.wait_count(2 * n)
    received = sub.count
    c.disconnect()
    c.loop_stop()
    sub.stop()
    return {"messages": 2 * n, "seconds": dt, "results_per_s": n / dt, "received": received}


# ---------------------------------------------------------------------- 4: whole daemon


async def daemon_latency(broker: Broker, tmp: Path, seconds: float) -> dict[str, Any]:
    """Frame -> subscriber latency with the real daemon: two synthetic cameras at 10 fps
    running the demo's recipe (or an empty recipe when its checks are not built in)."""
    import yaml

    from edged.config import load_settings
    from edged.core.errors import ConfigError
    from edged.daemon import Daemon

    demo = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    cam = {**demo["cameras"]["line1"], "fps": 10}
    doc = {
        "node_id": "benchd",
        "state_dir": str(tmp / "daemon"),
        "references_dir": str(tmp / "daemon-refs"),
        "cameras": {"cam1": cam, "cam2": {**cam, "synthetic": {**cam["synthetic"], "seed": 8}}},
        "recipes": demo["recipes"],
        "mqtt": {"host": broker.host, "port": broker.port, "prefix": "bench"},
        "http": {"enabled": False},
    }
    recipe = "demo 'label' recipe"
    path = tmp / "daemon.yaml"
    path.write_text(yaml.safe_dump(doc))
    try:
        settings = load_settings(path)
    except ConfigError:
        recipe = "empty recipe (the demo's checks are not in this build)"
        for c in doc["cameras"].values():
            c["recipe"] = "plain"
            c["synthetic"].pop("auto_teach", None)
        doc["recipes"] = {"plain": {}}
        path.write_text(yaml.safe_dump(doc))
        settings = load_settings(path)
    lat: list[tuple[float, float]] = []
    lock = threading.Lock()
    handed: dict[str, float] = {}

    class TimedPublisher(Publisher):
        """The real publisher, noting when the line hands each Result over."""

        async def publish_result(self, result: Result) -> None:
            handed[result.id] = time.time()
            await super().publish_result(result)

    def on_message(client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        doc = json.loads(msg.payload)
        host = datetime.fromisoformat(doc["frame"]["host_ts"]).timestamp()
        with lock:
            lat.append(((now - host) * 1000, (now - handed[doc["id"]]) * 1000))

    sub = Subscriber(broker, ["bench/benchd/+/result"])
    sub.client.on_message = on_message
    pub = TimedPublisher(settings)
    await pub.start()
    daemon = Daemon(settings, sink=pub)
    await daemon.start()
    await asyncio.sleep(2.0)  # warm-up (and auto-teach) excluded
    with lock:
        lat.clear()
    await asyncio.sleep(seconds)
    with lock:
        got = list(lat)
    await daemon.stop()
    sub.stop()
    total = [a for a, _ in got]
    publish = [b for _, b in got]
    return {
        "recipe": recipe,
        "n": len(got),
        "p50": pct(total, 0.5),
        "p99": pct(total, 0.99),
        "publish_to_subscriber_p50": pct(publish, 0.5),
        "publish_to_subscriber_p99": pct(publish, 0.99),
    }


# ---------------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="edged-bench-"))
    broker = Broker(tmp / "broker")
    broker.start()
    try:
        plain = await asyncio.to_thread(latency_paho, broker, args.latency_n, args.rate)
        edged = await latency_edged(broker, tmp, args.latency_n, args.rate)
        puts = await put_rate(broker, tmp, 5000)
        base_drain = await asyncio.to_thread(drain_paho, broker, args.results, 20)
        base_drain_free = await asyncio.to_thread(drain_paho, broker, args.results, 0)
        drain_default = await drain_edged(broker, tmp, args.results, None)
        drain_fast = await drain_edged(broker, tmp, args.results, 1e9)
        daemon = await daemon_latency(broker, tmp, args.daemon_s)
    finally:
        broker.close()
    return {
        "latency_plain_ms": {"p50": pct(plain["lat_ms"], 0.5), "p99": pct(plain["lat_ms"], 0.99),
                             "n": plain["received"]},
        "latency_edged_ms": {"p50": pct(edged["lat_ms"], 0.5), "p99": pct(edged["lat_ms"], 0.99),
                             "n": edged["received"]},
        "overhead_per_result_ms": statistics.median(edged["lat_ms"])
        - statistics.median(plain["lat_ms"]),
        "publish_result_call_ms": {"p50": pct(edged["call_ms"], 0.5),
                                   "p99": pct(edged["call_ms"], 0.99)},
        "outbox_accept_results_per_s": puts,
        "drain_plain": base_drain,
        "drain_plain_unlimited": base_drain_free,
        "drain_edged_default_rate": drain_default,
        "drain_edged_unthrottled": drain_fast,
        "daemon_frame_to_subscriber_ms": daemon,
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=int, default=10_000, help="backlog size for the drain test")
    p.add_argument("--latency-n", type=int, default=300, help="results for the latency test")
    p.add_argument("--rate", type=float, default=20.0, help="results/s in the latency test")
    p.add_argument("--daemon-s", type=float, default=10.0, help="seconds of the daemon test")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args()
    out = asyncio.run(run(args))
    if args.json:
        print(json.dumps(out, indent=2))
        return
    lp, le = out["latency_plain_ms"], out["latency_edged_ms"]
    print(f"latency to subscriber @ {args.rate:g} results/s, QoS 1 (n={le['n']}):")
    print(f"  plain paho   p50 {lp['p50']:.2f} ms  p99 {lp['p99']:.2f} ms")
    print(f"  edged outbox p50 {le['p50']:.2f} ms  p99 {le['p99']:.2f} ms")
    print(
        f"  outbox overhead per result (median difference): {out['overhead_per_result_ms']:.2f} ms"
    )
    c = out["publish_result_call_ms"]
    print(f"publish_result() until on disk: p50 {c['p50']:.3f} ms  p99 {c['p99']:.3f} ms")
    print(f"outbox accepts back to back: {out['outbox_accept_results_per_s']:.0f} results/s")
    print(f"backlog of {args.results} results ({2 * args.results} messages) after an outage:")
    for label, key in (
        ("plain paho, in-flight 20", "drain_plain"),
        ("plain paho, in-flight unlimited", "drain_plain_unlimited"),
        ("edged, default drain_rate_per_s", "drain_edged_default_rate"),
        ("edged, unthrottled", "drain_edged_unthrottled"),
    ):
        d = out[key]
        print(f"  {label:<34} {d['results_per_s']:8.0f} results/s  ({d['seconds']:.2f} s, "
              f"{d['received']} received)")  # fmt: skip

    d = out["daemon_frame_to_subscriber_ms"]
    print(f"daemon, 2 synthetic cameras at 10 fps, {d['recipe']}:")
    print(f"  frame -> subscriber p50 {d['p50']:.1f} ms  p99 {d['p99']:.1f} ms  (n={d['n']})")
    print(
        f"  of which publish_result() -> subscriber p50 {d['publish_to_subscriber_p50']:.2f} ms"
        f"  p99 {d['publish_to_subscriber_p99']:.2f} ms"
    )


if __name__ == "__main__":
    main()
