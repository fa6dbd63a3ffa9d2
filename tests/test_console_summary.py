"""The periodic one-line console summary (``logging.summary_interval_s``)."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from _daemon_helpers import RecordingSink, wait_for

from edged.config import load_settings
from edged.daemon import Daemon
from edged.runtime.console import console_line, under_systemd

LINE = re.compile(
    r"^line1: (\d+) frames, (\d+) pass, (\d+) fail, (\d+) error, (\d+\.\d) fps; mqtt off$"
)


def _doc(interval_s: float) -> dict[str, Any]:
    return {
        "node_id": "n1",
        "cameras": {
            "line1": {
                "recipe": "plain",
                "fps": 50,
                "synthetic": {"width": 64, "height": 64, "defect_rate": 0.0},
            }
        },
        "recipes": {
            "plain": {"checks": {"quality": {}}, "limits": ["quality.brightness.over_per <= 100"]}
        },
        "mqtt": {"enabled": False},
        "http": {"enabled": False},
        "logging": {"summary_interval_s": interval_s},
    }


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, False),
        ({"NOTIFY_SOCKET": "/run/systemd/notify"}, True),
        ({"JOURNAL_STREAM": "8:12345"}, True),
        ({"NOTIFY_SOCKET": ""}, False),
    ],
)
def test_systemd_is_recognised(environ: dict[str, str], expected: bool) -> None:
    assert under_systemd(environ) is expected


async def test_the_summary_line_comes_every_interval(
    write_config, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    caplog.set_level(logging.INFO, logger="edged.summary")
    sink = RecordingSink()
    daemon = Daemon(load_settings(write_config(_doc(0.3))), sink=sink)
    await daemon.start()
    try:
        await wait_for(
            lambda: sum(r.name == "edged.summary" for r in caplog.records) >= 2, timeout_s=10
        )
        lines = [r.getMessage() for r in caplog.records if r.name == "edged.summary"]
        line = console_line(daemon.runtime)
    finally:
        await daemon.stop()
    for text in lines:
        found = LINE.match(text)
        assert found, text
        frames, passed, failed, errors = (int(found.group(i)) for i in range(1, 5))
        assert passed + failed + errors <= frames
        assert (failed, errors) == (0, 0)
    assert int(LINE.match(lines[-1]).group(2)) > int(LINE.match(lines[0]).group(2))  # counting
    assert LINE.match(line)


async def test_no_summary_under_systemd(
    write_config, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    caplog.set_level(logging.INFO, logger="edged.summary")
    daemon = Daemon(load_settings(write_config(_doc(0.1))), sink=RecordingSink())
    await daemon.start()
    try:
        await wait_for(lambda: daemon.runtime.verdicts.snapshot("line1")["total"]["pass"] > 5)
        assert daemon.supervisor.task("console-summary") is None
    finally:
        await daemon.stop()
    assert not [r for r in caplog.records if r.name == "edged.summary"]


def test_the_interval_is_validated(write_config) -> None:  # type: ignore[no-untyped-def]
    from edged.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"logging\.summary_interval_s"):
        load_settings(write_config(_doc(-1)))
    assert load_settings(write_config(_doc(0))).logging.summary_interval_s == 0
