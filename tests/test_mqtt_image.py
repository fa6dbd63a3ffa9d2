"""The MQTT image topic: annotated JPEGs of failed parts for HMI dashboards, on a real broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from _broker import Broker, broker_fixture  # noqa: F401
from _daemon_helpers import wait_for
from _mqtt_helpers import Collector

from edged.config import MqttImageConfig, load_settings
from edged.daemon import Daemon
from edged.publish._topics import Topics
from edged.runtime.imagefeed import ImageFeed


def _settings(
    write_config: Callable[..., Path], broker: Broker, prefix: str, defect_rate: float, **image: Any
) -> Any:
    return load_settings(
        write_config(
            {
                "node_id": "hmi",
                "cameras": {
                    "cam1": {
                        "recipe": "label",
                        "fps": 25,
                        "synthetic": {
                            "width": 320,
                            "height": 256,
                            "pixel_format": "BGR8",
                            "defect_rate": defect_rate,
                            "seed": 9,
                            "auto_teach": 3,
                        },
                    }
                },
                "recipes": {
                    "label": {"checks": {"difference": {}}, "limits": ["difference.count == 0"]}
                },
                "mqtt": {
                    "host": broker.host,
                    "port": broker.port,
                    "prefix": prefix,
                    "protocol": "5" if broker.mqtt5 else "3.1.1",
                    "image": image,
                },
                "http": {"enabled": False},
                "failures": {"enabled": False},
                "logging": {"summary_interval_s": 0},
            }
        )
    )


def _decode(payload: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def _red_px(image: np.ndarray) -> int:
    b, g, r = (image[..., i].astype(int) for i in range(3))
    return int(((r > 180) & (g < 80) & (b < 80)).sum())


async def _run(daemon: Daemon, seconds: float) -> float:
    """Run until 5 parts are judged and ``seconds`` more; the seconds it ran."""
    t0 = time.monotonic()  # before the line (and its token bucket) exists
    await daemon.start()
    try:
        await wait_for(lambda: len(daemon.runtime.results.latest("cam1", 5)) >= 5, 20)
        await asyncio.sleep(seconds)
    finally:
        await daemon.stop()
    return time.monotonic() - t0


@pytest.mark.slow
async def test_failed_parts_are_published_annotated_and_rate_limited(
    write_config: Callable[..., Path], broker: Broker
) -> None:
    prefix = "img1"
    settings = _settings(write_config, broker, prefix, 1.0, max_per_s=2.0)
    topic = Topics(prefix, "hmi").image("cam1")
    col = Collector(broker, [topic], qos=0).start()
    try:
        ran_s = await _run(Daemon(settings), 2.0)
        await asyncio.sleep(0.3)
        images = [m for m in col.on(topic) if not m.retain]
    finally:
        col.stop()
    assert 2 <= len(images) <= 2.0 * ran_s + 1  # at most 2/s (a token bucket of one)
    for msg in images:
        assert len(msg.payload) <= 256 * 1024
        image = _decode(msg.payload)
        assert image.shape == (256, 320, 3)
        assert _red_px(image) > 20  # the defect's box and label are drawn
    # The last one is retained: a dashboard connecting now sees it at once.
    late = Collector(broker, [topic], qos=0).start()
    try:
        await asyncio.to_thread(late.wait_for, lambda ms: len(ms) >= 1, 5.0)
        assert late.on(topic)[0].retain
        assert late.on(topic)[0].payload == images[-1].payload
    finally:
        late.stop()


@pytest.mark.slow
async def test_good_parts_are_not_published_unless_asked(
    write_config: Callable[..., Path], broker: Broker
) -> None:
    t_fail = Topics("img2", "hmi").image("cam1")
    col = Collector(broker, [t_fail], qos=0).start()
    try:
        await _run(Daemon(_settings(write_config, broker, "img2", 0.0)), 0.0)
        await asyncio.sleep(1.0)
        assert col.on(t_fail) == []  # all parts passed: nothing on the image topic
    finally:
        col.stop()
    t_all = Topics("img3", "hmi").image("cam1")
    col = Collector(broker, [t_all], qos=0).start()
    try:
        daemon = Daemon(
            _settings(write_config, broker, "img3", 0.0, parts="all", max_per_s=5, max_bytes=8192)
        )
        await daemon.start()
        try:
            await asyncio.to_thread(col.wait_for, lambda ms: len(ms) >= 2, 10.0)
        finally:
            await daemon.stop()
        for msg in col.on(t_all):
            assert len(msg.payload) <= 8192  # scaled down to fit
            assert _decode(msg.payload).shape[1] < 320
        sent = daemon.runtime.metrics.registry.get_sample_value(
            "edged_mqtt_images_total", {"camera": "cam1", "outcome": "sent"}
        )
        assert sent is not None
        assert sent >= len(col.on(t_all))
    finally:
        col.stop()


def test_the_feed_decides_by_verdict_and_rate() -> None:
    now = [100.0]
    feed = ImageFeed(MqttImageConfig(parts="fail", max_per_s=2.0), clock=lambda: now[0])
    assert not feed.wants("pass")
    assert feed.wants("fail")
    assert not feed.wants("fail")  # the token is spent
    now[0] += 0.25
    assert not feed.wants("fail")  # half a token
    now[0] += 0.25
    assert feed.wants("fail")
    now[0] += 60
    assert feed.wants("fail")
    assert not feed.wants("fail")  # at most one saved up
    assert not ImageFeed(MqttImageConfig(parts="off")).wants("fail")
    assert ImageFeed(MqttImageConfig(parts="all")).wants("pass")


def test_the_feed_fits_the_size_cap() -> None:
    rng = np.random.default_rng(1)
    noisy = rng.integers(0, 256, (1024, 1536, 3), dtype=np.uint8)  # hard to compress
    feed = ImageFeed(MqttImageConfig(max_bytes=64 * 1024, max_width_px=1280))
    jpeg = feed.encode(noisy)
    assert jpeg is not None
    assert len(jpeg) <= 64 * 1024
    small = _decode(jpeg)
    assert small.shape[1] < 1280
    assert small.shape[0] / small.shape[1] == pytest.approx(1024 / 1536, abs=0.01)
    flat = np.full((512, 640, 3), 200, np.uint8)
    assert _decode(feed.encode(flat) or b"").shape == (512, 640, 3)  # fits as it is
    tiny = ImageFeed(MqttImageConfig(max_bytes=4096, jpeg_quality=100))
    assert tiny.encode(noisy) is None  # cannot fit at a useful size
