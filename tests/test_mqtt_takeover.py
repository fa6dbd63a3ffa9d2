"""Two stations with one client id evict each other: edged says so once, clearly, and
counts it — on the private broker (the detector alone: test_mqtt_takeover_detector.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
from _broker import Broker, broker_fixture  # noqa: F401
from _mqtt_helpers import make_settings

from edged.publish import Publisher
from edged.publish._takeover import TakeoverDetector
from edged.runtime.metrics import Metrics


def _value(metrics: Metrics, name: str) -> float:
    return metrics.registry.get_sample_value(name) or 0.0


@pytest.mark.slow
async def test_two_daemons_with_one_client_id_are_told_apart(
    tmp_path: Path, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="edged.publish.mqtt")
    settings = make_settings(tmp_path, broker)  # node line-7: client id edged-line-7
    metrics = [Metrics(), Metrics()]
    pubs = [
        Publisher(
            settings,
            metrics[i],
            outbox_path=tmp_path / f"outbox{i}.sqlite3",
            takeover=TakeoverDetector(window_s=3.0),
        )
        for i in range(2)
    ]
    try:
        for pub in pubs:
            await pub.start()
        deadline = time.monotonic() + 15
        while not all(_value(m, "edged_mqtt_client_id_clash") == 1 for m in metrics):
            assert time.monotonic() < deadline, [
                (_value(m, "edged_mqtt_connects_total"), _value(m, "edged_mqtt_disconnects_total"))
                for m in metrics
            ]
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # more evictions: still one message per station
        clash = [r for r in caplog.records if "same client id 'edged-line-7'" in r.getMessage()]
        assert len(clash) == 2, [r.getMessage() for r in clash]
        assert all(r.levelno == logging.ERROR for r in clash)
        assert "node_id" in clash[0].getMessage()
        for m in metrics:
            assert _value(m, "edged_mqtt_connects_total") >= 2
            assert _value(m, "edged_mqtt_disconnects_total") >= 2
        # The second station goes away: the first one's connection now stays up.
        await pubs[1].stop(grace_s=0.5)
        deadline = time.monotonic() + 15
        while _value(metrics[0], "edged_mqtt_client_id_clash") != 0:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        assert pubs[0].connected
    finally:
        for pub in pubs:
            await pub.stop(grace_s=0.5)


@pytest.mark.slow
async def test_a_broker_restart_is_not_a_clash(
    tmp_path: Path, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="edged.publish.mqtt")
    metrics = Metrics()
    pub = Publisher(make_settings(tmp_path, broker), metrics, takeover=TakeoverDetector())
    try:
        await pub.start()
        await pub.wait_connected()
        await asyncio.sleep(0.5)
        await asyncio.to_thread(broker.stop)
        await asyncio.to_thread(broker.start)
        async with asyncio.timeout(15):
            await pub.wait_connected()
        assert _value(metrics, "edged_mqtt_connects_total") == 2
        assert _value(metrics, "edged_mqtt_disconnects_total") == 1
        assert _value(metrics, "edged_mqtt_client_id_clash") == 0
        assert not [r for r in caplog.records if "same client id" in r.getMessage()]
    finally:
        await pub.stop(grace_s=0.5)
