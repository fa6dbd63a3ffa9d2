"""Publisher against a real private broker: order, schema, outages, crashes, will, rejection."""

from __future__ import annotations

import asyncio
import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from _broker import Broker, broker, make_broker, require  # noqa: F401
from _mqtt_helpers import Collector, first_seen, make_result, make_settings

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
