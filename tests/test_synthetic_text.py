"""The synthetic label prints a lot code; misprints are a defect kind with ground
truth; a recipe's text check reads the code on every frame and fails exactly the
misprints — in process and, end to end, through the daemon to a real MQTT broker."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pydantic
import pytest
from _broker import Broker, broker_fixture  # noqa: F401
from _mqtt_helpers import Collector, first_seen
from paho.mqtt.enums import CallbackAPIVersion

from edged.checks import CheckContext
from edged.config import RecipeConfig, SyntheticConfig, load_settings
from edged.daemon import Daemon
from edged.publish._topics import Topics
from edged.publish.command_auth import sign_command
from edged.recipes.inspection import Inspector
from edged.sources._scenes import render_scene
from edged.sources.synthetic import SyntheticLine

LINE = {"scene": "label", "width": 640, "height": 512, "seed": 11}
SECRET = "ocr-line-test-secret-0123456789"
LOT = "LOT 39612"  # what seed 11 prints at 640x512
LOT_REGION = {"x": 84, "y": 119, "width": 249, "height": 55}
NUISANCE = {"shift_px": 4, "rotation_deg": 1.0, "gain": 0.1, "offset": 6, "noise_sigma": 2}


def _recipe(**rule: str) -> RecipeConfig:
    return RecipeConfig(
        checks={
            "lot": {
                "type": "text",
                "region": LOT_REGION,
                "charset": "LOT0123456789 ",
                **(rule or {"expect": LOT}),
            }
        },
        limits=['lot.status == "ok"'],
    )


def _line_settings(
    write_config: Callable[..., Path], broker: Broker, prefix: str, recipe: RecipeConfig,
    **synthetic: Any,
) -> Any:  # fmt: skip
    return load_settings(
        write_config(
            {
                "node_id": "ocr-line",
                "cameras": {
                    "line1": {
                        "recipe": "lot",
                        "fps": 10,
                        "on_full": "block",
                        "synthetic": {**LINE, "nuisance": NUISANCE, **synthetic},
                    }
                },
                "recipes": {"lot": recipe.model_dump()},
                "mqtt": {
                    "host": broker.host,
                    "port": broker.port,
                    "prefix": prefix,
                    "protocol": "5" if broker.mqtt5 else "3.1.1",
                    "command_secret": SECRET,
                },
                "http": {"enabled": False},
            }
        )
    )


def test_label_prints_its_lot_code_and_frames_carry_it() -> None:
    line = SyntheticLine(SyntheticConfig(**LINE, defect_rate=0.5))
    assert line.label is not None
    assert line.label.lot_code == LOT
    assert np.array_equal(line.nominal, render_scene("label", width=640, height=512, seed=11))
    kinds = set()
    for seq in range(60):
        truth = line.render(seq).truth
        assert truth["lot_code"] == LOT
        kinds.add(truth.get("kind"))
    assert kinds == {None, "scratch", "spot", "missing", "stain"}  # misprint is opt-in


def test_misprints_carry_the_printed_code_and_the_code_box() -> None:
    line = SyntheticLine(SyntheticConfig(**LINE, defect_rate=1.0, defect_kinds=["misprint"]))
    printed = set()
    for seq in range(20):
        frame = line.render(seq)
        truth = frame.truth
        assert truth["kind"] == "misprint"
        assert truth["nominal_lot_code"] == LOT
        assert truth["lot_code"] != LOT
        assert re.fullmatch(r"LOT \d{4,5}", truth["lot_code"])
        box = truth["box"]  # the code line, moved with the part
        assert abs(box["x"] - 94) <= 8
        assert abs(box["y"] - 129) <= 8
        printed.add(truth["lot_code"])
    assert len(printed) >= 5


def test_misprint_needs_the_label_scene() -> None:
    with pytest.raises(pydantic.ValidationError, match="misprint needs scene 'label'"):
        SyntheticConfig(scene="pcb", defect_kinds=["misprint"])


def test_text_check_reads_every_frame_and_fails_exactly_the_misprints() -> None:
    cfg = SyntheticConfig(
        **LINE, defect_rate=0.4, defect_kinds=["misprint", "spot"], nuisance=NUISANCE
    )
    line = SyntheticLine(cfg)
    inspector = Inspector("lot", _recipe())
    ctx = CheckContext(recipe="lot", camera="cam")
    misprints = 0
    for seq in range(24):
        frame = line.render(seq)
        out = inspector.inspect(frame.image, context=ctx)
        misprinted = frame.truth.get("kind") == "misprint"
        misprints += misprinted
        assert out.figures["lot"]["text"] == frame.truth["lot_code"], frame.truth
        assert out.verdict == ("fail" if misprinted else "pass"), out.figures["lot"]
    assert misprints > 0


async def test_demo_line_verdicts_reach_mqtt_with_what_was_read(
    write_config: Callable[..., Path], broker: Broker
) -> None:
    prefix = f"t{uuid.uuid4().hex[:6]}"
    settings = _line_settings(
        write_config, broker, prefix, _recipe(),
        defect_rate=0.5, defect_kinds=["misprint"], frames=12,
    )  # fmt: skip
    topics = Topics(prefix, "ocr-line")
    col = Collector(broker, [topics.result("line1")]).start()
    daemon = Daemon(settings)
    await daemon.start()
    try:
        await asyncio.to_thread(col.wait_count, topics.result("line1"), 12, 60)
    finally:
        await daemon.stop()
        col.stop()
    results: list[dict[str, Any]] = first_seen(col.on(topics.result("line1")))
    assert len(results) == 12
    kinds = set()
    for r in results:
        truth = r["ground_truth"]
        lot = r["checks"]["lot"]
        kinds.add(truth.get("kind"))
        assert lot["text"] == truth["lot_code"]
        assert lot["box"] == LOT_REGION
        if truth["defect"]:
            assert r["verdict"] == "fail"
            assert lot["reason"] == f"expected {LOT!r}, read {truth['lot_code']!r}"
            assert r["reasons"] == ['lot.status = "wrong_text", limit == "ok"']
        else:
            assert r["verdict"] == "pass", lot
    assert kinds == {None, "misprint"}


async def test_mqtt_commands_carry_the_expected_lot_code(
    write_config: Callable[..., Path], broker: Broker
) -> None:
    """A PLC sends the batch's lot code with cmd/recipe or cmd/trigger (``data``); the
    text check of the following frames expects it."""
    prefix = f"d{uuid.uuid4().hex[:6]}"
    settings = _line_settings(
        write_config, broker, prefix, _recipe(expect_input="data"),
        defect_rate=0.0, triggered=True,
    )  # fmt: skip
    t = Topics(prefix, "ocr-line")
    col = Collector(broker, [t.reply("line1"), t.result("line1"), t.status]).start()
    daemon = Daemon(settings)
    await daemon.start()
    # edged subscribes to its commands before it publishes "online" on that connection,
    # so once "online" is seen, a command cannot arrive before the subscription.
    await asyncio.to_thread(
        col.wait_for, lambda ms: any(m.topic == t.status and m.payload == b"online" for m in ms)
    )
    plc = mqtt.Client(CallbackAPIVersion.VERSION2)
    try:
        plc.connect(broker.host, broker.port)
        plc.loop_start()
        commands = [
            ("trigger", {"id": 1}),  # no lot code given yet
            ("recipe", {"id": 2, "recipe": "lot", "data": LOT}),
            ("trigger", {"id": 3}),  # the lot code stays
            ("trigger", {"id": 4, "data": "LOT 11111"}),  # another batch
        ]
        triggers = 0
        for i, (name, payload) in enumerate(commands, 1):
            topic = t.command("line1", name)
            plc.publish(topic, json.dumps(sign_command(SECRET.encode(), topic, payload)), 1)
            await asyncio.to_thread(col.wait_count, t.reply("line1"), i, 30)
            if name == "trigger":  # its frame is inspected before the next command
                triggers += 1
                await asyncio.to_thread(col.wait_count, t.result("line1"), triggers, 30)
    finally:
        plc.disconnect()
        plc.loop_stop()
        await daemon.stop()
        col.stop()
    replies = {m.json()["id"]: m.json() for m in col.on(t.reply("line1"))}
    assert replies[2]["result"] == {"recipe": "lot", "previous": "lot", "data": LOT}
    assert replies[4]["result"] == {"data": "LOT 11111"}
    results = first_seen(col.on(t.result("line1")))
    lots = [r["checks"]["lot"] for r in results]
    assert [x["status"] for x in lots] == ["no_expected_value", "ok", "wrong_text"]
    assert [x["text"] for x in lots] == [LOT] * 3
    assert lots[2]["reason"] == f"expected 'LOT 11111', read {LOT!r}"
    assert [r["verdict"] for r in results] == ["fail", "pass", "fail"]
