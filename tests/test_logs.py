"""Logging: text and JSON lines with camera/recipe context, repeat suppression, idempotent setup."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
from collections.abc import Iterator

import pytest

from edged.config import LoggingConfig
from edged.runtime.logs import EdgedHandler, flush_suppressed, log_context, setup_logging
from edged.runtime.workers import WorkerPool


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    edged_level = logging.getLogger("edged").level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    logging.getLogger("edged").setLevel(edged_level)


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_carry_context_and_one_line_tracebacks() -> None:
    out = io.StringIO()
    setup_logging(LoggingConfig(format="json"), stream=out)
    log = logging.getLogger("edged.pipeline")
    with log_context(camera="line1", recipe="label"):
        log.info("frame %d inspected", 7)
        try:
            raise ValueError("bad\nbuffer")
        except ValueError:
            log.exception("decode failed", extra={"seq": 8})
    log.warning("broker gone", extra={"camera": "line2"})
    lines = _lines(out)
    assert len(lines) == 3
    first, second, third = (json.loads(x) for x in lines)
    assert first["msg"] == "frame 7 inspected"
    assert (first["level"], first["logger"]) == ("INFO", "edged.pipeline")
    assert (first["camera"], first["recipe"]) == ("line1", "label")
    assert first["ts"].endswith("Z")
    assert len(first["ts"]) == len("2024-01-01T00:00:00.000Z")
    assert second["seq"] == 8
    assert second["exc"].startswith("Traceback (most recent call last):")
    assert second["exc"].endswith("ValueError: bad\nbuffer")
    assert third == {**third, "camera": "line2", "msg": "broker gone"}
    assert "recipe" not in third


@pytest.mark.usefixtures("restore_logging")
def test_text_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    out = io.StringIO()
    setup_logging(LoggingConfig(), stream=out)
    log = logging.getLogger("edged.source")
    with log_context(camera="line1"):
        log.warning("timeout\nafter %.1f s", 2.0)
    (line,) = _lines(out)
    ts, level, name, rest = line.split(" ", 3)
    assert ts.endswith("Z")
    assert (level, name, rest) == ("WARNING", "edged.source", "[camera=line1] timeout after 2.0 s")


@pytest.mark.usefixtures("restore_logging")
def test_journald_stream_gets_syslog_priorities(
    monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str]
) -> None:
    path = os.path.join(tmp_path, "journal")
    with open(path, "w", encoding="utf-8") as stream:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        setup_logging(LoggingConfig(), stream=stream)
        logging.getLogger("edged.mqtt").error("broker refused: %s", "bad password")
        logging.getLogger("edged.mqtt").info("connected")
        setup_logging(LoggingConfig(format="json"), stream=stream)
        logging.getLogger("edged.mqtt").warning("slow ack")
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert lines[:2] == [
        "<3>edged.mqtt broker refused: bad password",
        "<6>edged.mqtt connected",
    ]
    assert lines[2].startswith("<4>{")
    assert json.loads(lines[2][3:])["msg"] == "slow ack"


@pytest.mark.usefixtures("restore_logging")
def test_setup_is_idempotent_and_applies_levels() -> None:
    out1, out2 = io.StringIO(), io.StringIO()
    setup_logging(LoggingConfig(level="WARNING"), stream=out1)
    setup_logging(LoggingConfig(level="DEBUG", format="json"), stream=out2)
    assert sum(isinstance(h, EdgedHandler) for h in logging.getLogger().handlers) == 1
    logging.getLogger("edged.x").debug("detail")
    logging.getLogger("aiohttp.access").info("GET /metrics 200")  # library chatter
    logging.getLogger("aiohttp.server").warning("bad request line")
    assert out1.getvalue() == ""
    msgs = [json.loads(x)["msg"] for x in _lines(out2)]
    assert msgs == ["detail", "bad request line"]


@pytest.mark.usefixtures("restore_logging")
def test_repeated_errors_are_counted_and_summarised() -> None:
    out = io.StringIO()
    clock = FakeClock()
    setup_logging(LoggingConfig(format="json", repeat_window_s=60), stream=out, clock=clock)
    log = logging.getLogger("edged.source")
    for i in range(500):
        clock.now = i * 0.1  # 50 s of a camera failing ten times a second
        log.error("camera lost: %s", "timeout", extra={"camera": "line1"})
        if i % 100 == 0:
            log.error("camera lost: %s", "timeout", extra={"camera": "line2"})
    assert [json.loads(x)["camera"] for x in _lines(out)] == ["line1", "line2"]
    clock.now = 61.0
    log.info("unrelated event")  # any line flushes windows that ended
    lines = [json.loads(x) for x in _lines(out)]
    summaries = [x for x in lines if "repeats" in x]
    assert sorted((s["camera"], s["repeats"]) for s in summaries) == [("line1", 499), ("line2", 4)]
    s1 = next(s for s in summaries if s["camera"] == "line1")
    assert s1["msg"] == "suppressed 499 repeats in the last 60 s of: camera lost: timeout"
    assert s1["level"] == "ERROR"
    assert lines[-1]["msg"] == "unrelated event"
    # A new window: the next failure is written again.
    log.error("camera lost: %s", "timeout", extra={"camera": "line1"})
    assert json.loads(_lines(out)[-1])["msg"] == "camera lost: timeout"


@pytest.mark.usefixtures("restore_logging")
def test_flush_writes_pending_summaries_and_debug_is_never_suppressed() -> None:
    out = io.StringIO()
    clock = FakeClock()
    setup_logging(LoggingConfig(level="DEBUG", repeat_window_s=5), stream=out, clock=clock)
    log = logging.getLogger("edged.x")
    for _ in range(3):
        log.debug("tick")
        log.warning("slow")
    assert sum("tick" in x for x in _lines(out)) == 3
    assert sum(x.endswith(" slow") for x in _lines(out)) == 1
    flush_suppressed()  # window still open: nothing yet
    assert not any("suppressed" in x for x in _lines(out))
    clock.now = 5.0
    flush_suppressed()
    assert _lines(out)[-1].endswith("edged.x suppressed 2 repeats in the last 5 s of: slow")


@pytest.mark.usefixtures("restore_logging")
async def test_context_follows_the_worker_pool() -> None:
    out = io.StringIO()
    setup_logging(LoggingConfig(format="json"), stream=out)
    pool = WorkerPool(1)

    def work() -> None:
        logging.getLogger("edged.inspect").warning("check raised")

    with log_context(camera="line3", recipe="pcb"):
        await pool.run(work)
    await asyncio.sleep(0)
    pool.shutdown()
    line = json.loads(_lines(out)[0])
    assert (line["camera"], line["recipe"]) == ("line3", "pcb")
