"""The examples in docs/ work: the generic gateway against a private broker and a real
publisher (de-duplicating a repeat), and the Node-RED flow is a valid flow."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from _broker import Broker, broker_fixture, require  # noqa: F401
from _mqtt_helpers import make_result, make_settings

from edged.publish import Publisher

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


@pytest.mark.slow
async def test_the_gateway_hands_each_verdict_once(tmp_path: Path, broker: Broker) -> None:
    require(broker, mqtt5=True)  # the example uses MQTT 5 sessions
    settings = make_settings(tmp_path, broker)
    gateway = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / "mqtt_gateway.py"),
        *("--host", broker.host, "--port", str(broker.port)),
        *("--prefix", settings.mqtt.prefix, "--node", settings.node_id, "--count", "3"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    pub = Publisher(settings)
    try:
        await pub.start()
        await asyncio.sleep(1.0)  # the gateway subscribes
        first = make_result(0, verdict="pass")
        for result in (first, first, make_result(1, verdict="fail"), make_result(2)):
            await pub.publish_result(result)  # the repeat is what an outage can cause
        out, err = await asyncio.wait_for(gateway.communicate(), 20)
    finally:
        await pub.stop(grace_s=1)
        if gateway.returncode is None:
            gateway.kill()
    lines = [line for line in out.decode().splitlines() if not line.startswith("station")]
    assert lines == [
        "cam1 seq=0 OK pass",
        "cam1 seq=1 REJECT fail",
        "cam1 seq=2 OK pass",
    ], err.decode()


def test_the_node_red_flow_is_wired() -> None:
    flow = json.loads((EXAMPLES / "node-red-flow.json").read_text())
    nodes = {n["id"]: n for n in flow}
    for node in flow:
        for outputs in node.get("wires", []):
            for target in outputs:
                assert target in nodes, (node["id"], target)
    verdicts = nodes["edged-verdicts"]
    assert verdicts["topic"].endswith("/+/verdict")
    assert verdicts["qos"] == "1"
    broker = nodes[verdicts["broker"]]
    assert broker["cleansession"] is False  # a persistent session: nothing lost offline
    assert "msg.payload.id" in nodes["dedupe"]["func"]
