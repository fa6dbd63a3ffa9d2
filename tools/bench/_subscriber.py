"""The MQTT subscriber of the end-to-end run: a separate process, like a PLC gateway.

``python -m tools.bench._subscriber HOST PORT TOPIC OUT`` subscribes to ``TOPIC``
(QoS 1) and appends one line per Result to ``OUT``: ``camera frame_seq host_ts
recv_ns to_result_ms`` (``host_ts`` is the frame's ISO 8601 host timestamp from the
payload, ``recv_ns`` this process's ``time.time_ns()`` on receipt, ``to_result_ms``
the daemon's own frame-to-result time from ``timings_ms``, -1 when absent). It prints ``ready`` once
subscribed and runs until its stdin closes.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def main(argv: list[str]) -> int:
    host, port, topic, out_path = argv[0], int(argv[1]), argv[2], argv[3]
    subscribed = threading.Event()
    out = open(out_path, "a", encoding="utf-8")  # noqa: SIM115 - closed below
    lock = threading.Lock()

    def on_connect(client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        client.subscribe(topic, qos=1)

    def on_subscribe(*_a: Any) -> None:
        subscribed.set()

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        recv_ns = time.time_ns()
        doc = json.loads(msg.payload)
        frame = doc["frame"]
        to_result = float(doc.get("timings_ms", {}).get("frame_to_result", -1.0))
        line = f"{doc['camera']} {frame['seq']} {frame['host_ts']} {recv_ns} {to_result}\n"
        with lock:
            out.write(line)
            out.flush()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{time.time_ns()}")
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(host, port, keepalive=30)
    client.loop_start()
    if not subscribed.wait(10.0):
        print(f"could not subscribe to {topic} on {host}:{port}", file=sys.stderr)
        return 1
    print("ready", flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    client.loop_stop()
    client.disconnect()
    with lock:
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
