"""A generic MQTT → PLC gateway for edged verdicts: the pattern, in one small file.

It does what every consumer of edged should do (docs/mqtt.md, "For PLC engineers"):

- a fixed client id and a persistent session at QoS 1, so the broker keeps the
  verdicts that arrive while the gateway is restarting;
- de-duplication by the Result ``id`` (delivery is at least once);
- the verdict topic, the short one meant for PLCs; ``status`` tells whether the
  station is alive (``offline`` is its last will).

Replace :func:`write_to_plc` with your fieldbus call (Modbus/TCP, OPC UA, S7, EtherNet/IP
...). Run::

    python mqtt_gateway.py --host broker.plant.local --node press-line-3

Needs ``paho-mqtt`` 2.x (``pip install paho-mqtt``), which edged itself uses.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

SEEN_MAX = 10_000  # ids remembered for de-duplication


def write_to_plc(camera: str, verdict: dict[str, Any]) -> None:
    """Hand one verdict to the PLC. Here: print a line; replace with your fieldbus write
    (e.g. a reject bit per camera, and ``seq`` into a counter tag)."""
    ok = verdict["verdict"] == "pass"
    print(
        f"{camera} seq={verdict['seq']} {'OK' if ok else 'REJECT'} {verdict['verdict']}", flush=True
    )


class Gateway:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root = f"{args.prefix}/{args.node}"
        self.seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.handled = 0
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=args.client_id, protocol=mqtt.MQTTv5
        )
        self.client.on_connect = self.on_connect
        self.client.on_message = self.on_message

    def run(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 7 * 24 * 3600  # keep our queue for a week offline
        self.client.connect(self.args.host, self.args.port, 30, clean_start=False, properties=props)
        self.client.loop_forever()

    def on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        if rc.is_failure:
            print(f"broker refused the connection: {rc}", file=sys.stderr)
            return
        client.subscribe([(f"{self.root}/+/verdict", 1), (f"{self.root}/status", 1)])

    def on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.endswith("/status"):
            print(f"station {self.args.node}: {msg.payload.decode()}", flush=True)
            return
        verdict = json.loads(msg.payload)
        if verdict["id"] in self.seen:  # sent again after an outage: already handled
            return
        self.seen[verdict["id"]] = None
        if len(self.seen) > SEEN_MAX:
            self.seen.popitem(last=False)
        write_to_plc(verdict["camera"], verdict)
        self.handled += 1
        if self.args.count and self.handled >= self.args.count:
            client.disconnect()


def main() -> None:
    p = argparse.ArgumentParser(description="edged verdicts -> PLC (example gateway)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--prefix", default="edged")
    p.add_argument("--node", required=True, help="the station's node_id")
    p.add_argument("--client-id", default="plc-gateway-1", help="fixed: keeps the session")
    p.add_argument("--count", type=int, default=0, help="exit after N verdicts (0: never)")
    Gateway(p.parse_args()).run()


if __name__ == "__main__":
    main()
