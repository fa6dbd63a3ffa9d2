"""The daemon under a (test-made) service manager: READY after start-up, STATUS,
WATCHDOG while frames flow, STOPPING on shutdown, and SIGHUP reloads that the
next verdicts follow."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from _daemon_helpers import RecordingSink, wait_for
from _ops_helpers import NotifyListener

from edged.checks import (
    CheckContext,
    CheckOptions,
    CheckOutcome,
    CheckSpec,
    _registry,
    registry,
    specs,
)
from edged.config import load_settings
from edged.daemon import Daemon
from edged.runtime.sdnotify import Notifier
from edged.sources.synthetic import SyntheticSource


class LevelOptions(CheckOptions):
    pass


def _level(image: np.ndarray, options: LevelOptions, ctx: CheckContext) -> CheckOutcome:
    """Mean grey level. image: (H, W) uint8 grey or (H, W, 3) uint8 BGR."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return CheckOutcome({"mean": round(float(grey.mean()), 3)})


GATE = threading.Event()


def _gate(image: np.ndarray, options: LevelOptions, ctx: CheckContext) -> CheckOutcome:
    """Waits while the gate is closed: a check wedged in a driver call or a bug."""
    GATE.wait(30)
    return CheckOutcome({"open": True})


@pytest.fixture
def level_check(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Test-local checks in the global registry, so recipes in config files can name them."""
    extra = (
        CheckSpec("level", LevelOptions, _level, figures=("mean",)),
        CheckSpec("gate", LevelOptions, _gate, figures=("open",)),
    )
    everything = (*specs(), *extra)
    monkeypatch.setattr(_registry, "specs", lambda: everything)
    registry.cache_clear()
    yield
    monkeypatch.undo()
    registry.cache_clear()


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[NotifyListener]:
    lst = NotifyListener(tmp_path / "notify.sock")
    yield lst
    lst.close()


def _doc(limit: str) -> dict[str, Any]:
    return {
        "node_id": "ops",
        "cameras": {
            "cam1": {
                "recipe": "lvl",
                "fps": 40,
                "queue_size": 2,
                "synthetic": {"width": 160, "height": 128, "pixel_format": "Mono8"},
            }
        },
        "recipes": {"lvl": {"checks": {"level": {}}, "limits": [limit]}},
        "mqtt": {"enabled": False},
        "http": {"port": 0},
        "pipeline": {"workers": 2, "watchdog_stall_s": 5},
        "logging": {"repeat_window_s": 1},
    }


class SlowStartSource(SyntheticSource):
    """A camera that takes a while to open, like a GigE device at boot."""

    connected_at: float | None = None

    async def start(self) -> None:
        await asyncio.sleep(0.4)
        await super().start()
        type(self).connected_at = time.monotonic()


async def test_ready_status_watchdog_and_stopping(
    write_config: Callable[[dict[str, Any]], Path],
    listener: NotifyListener,
    monkeypatch: pytest.MonkeyPatch,
    level_check: None,
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", listener.address)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # beat every 100 ms
    monkeypatch.setattr("edged.daemon._build_source", SlowStartSource)
    path = write_config(_doc("level.mean <= 255"))
    sink = RecordingSink()
    daemon = Daemon(load_settings(path), sink=sink, config_path=path)
    t0 = time.monotonic()
    await daemon.start()
    try:
        ready = listener.wait_for(lambda m: "READY" in m)
        (t_ready,) = [t for t, m in listener.snapshot() if "READY" in m]
        # READY=1 only once the camera delivered (its start took 0.4 s) and HTTP is up.
        assert SlowStartSource.connected_at is not None
        assert t_ready >= SlowStartSource.connected_at >= t0 + 0.4
        assert daemon.runtime.health.ready
        assert ready["STATUS"].startswith("1/1 cameras up (cam1 ")
        assert ready["STATUS"].endswith("; mqtt off")
        first = listener.snapshot()[0][1]
        assert first == {"STATUS": "starting"}
        # Frames flow, so the heartbeat beats.
        await wait_for(lambda: len(listener.with_key("WATCHDOG")) >= 3, timeout_s=5)
        assert all(t >= t_ready for t, _ in listener.with_key("WATCHDOG"))
        await wait_for(lambda: len(sink.results) >= 5)
        assert daemon.runtime.metrics.watchdog_healthy._value.get() == 1
    finally:
        await daemon.stop()
    stopping = listener.wait_for(lambda m: "STOPPING" in m)
    assert stopping["STATUS"].startswith("stopping: draining ")
    assert all(r.verdict == "pass" for r in sink.results)


async def test_sighup_reload_changes_the_next_verdicts_and_rejects_a_bad_file(
    write_config: Callable[..., Path],
    listener: NotifyListener,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    level_check: None,
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", listener.address)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    caplog.set_level(logging.INFO, logger="edged")
    path = write_config(_doc("level.mean <= 255"))  # every frame passes
    sink = RecordingSink()
    daemon = Daemon(load_settings(path), sink=sink, config_path=path)
    runner = asyncio.create_task(daemon.run(), name="daemon")
    metrics = daemon.runtime.metrics
    try:
        await asyncio.to_thread(listener.wait_for, lambda m: "READY" in m)
        await wait_for(lambda: len(sink.results) >= 5)
        assert {r.verdict for r in sink.results} == {"pass"}

        # The threshold moves below any grey level: from the next frames on, all fail.
        write_config(_doc("level.mean <= 0.5"))
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_for(lambda: metrics.config_reloads.labels("applied")._value.get() == 1)
        n_at_reload = len(sink.results)
        in_flight = 2 + 2 + 1  # queue_size + workers + the one being emitted
        await wait_for(lambda: len(sink.results) >= n_at_reload + in_flight + 5)
        after = sink.results[n_at_reload + in_flight :]
        assert {r.verdict for r in after} == {"fail"}
        assert after[0].reasons == [
            f"level.mean = {after[0].checks['level']['mean']}, limit <= 0.5"
        ]
        assert daemon.settings.recipes["lvl"].limits == ["level.mean <= 0.5"]
        reloaded = [r for r in caplog.records if r.name == "edged.reload"]
        assert reloaded[-1].getMessage() == (
            f"config reloaded from {path}: applied live: recipes.lvl"
        )
        kinds = [k for _, m in listener.snapshot() for k in ("RELOADING", "READY") if k in m]
        assert kinds == ["READY", "RELOADING", "READY"]

        # An invalid file is rejected with its errors; the running recipe stays.
        bad = _doc("level.mean <= 0.5")
        bad["cameras"]["cam1"]["fps"] = -3
        bad["recipes"]["lvl"]["limits"] = ["level.mean <=> 1"]
        write_config(bad)
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_for(lambda: metrics.config_reloads.labels("rejected")._value.get() == 1)
        assert metrics.config_last_reload_successful._value.get() == 0
        rejected = [r for r in caplog.records if r.levelno == logging.ERROR]
        msg = rejected[-1].getMessage()
        assert msg.startswith(f"config reload from {path} rejected, the running config stays: ")
        assert "cameras.cam1.fps: Input should be greater than 0 (got -3)" in msg
        assert "recipes.lvl.limits" in msg
        n = len(sink.results)
        await wait_for(lambda: len(sink.results) >= n + 5)
        assert {r.verdict for r in sink.results[n:]} == {"fail"}
        assert daemon.runtime.inspectors["lvl"].recipe.limits == ["level.mean <= 0.5"]
    finally:
        daemon.request_stop()
        assert await runner == 0


async def test_a_wedged_check_stops_the_watchdog_until_it_recovers(
    write_config: Callable[[dict[str, Any]], Path],
    listener: NotifyListener,
    monkeypatch: pytest.MonkeyPatch,
    level_check: None,
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", listener.address)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # beat every 100 ms
    doc = _doc("gate.open == true")
    doc["recipes"]["lvl"]["checks"] = {"gate": {}}
    doc["pipeline"]["watchdog_stall_s"] = 0.6
    GATE.set()
    sink = RecordingSink()
    daemon = Daemon(load_settings(write_config(doc)), sink=sink)
    await daemon.start()
    try:
        await wait_for(lambda: len(sink.results) >= 3)
        GATE.clear()  # every worker now hangs in the check, frames queue up
        await wait_for(lambda: not daemon.runtime.metrics.watchdog_healthy._value.get(), 5)
        t_stalled = time.monotonic()
        stalled = listener.wait_for(lambda m: m.get("STATUS", "").startswith("STALLED"))
        assert stalled["STATUS"].startswith("STALLED: ")
        assert " pending" in stalled["STATUS"]
        await asyncio.sleep(0.5)
        assert not [t for t, _ in listener.with_key("WATCHDOG") if t > t_stalled + 0.05]
        n = len(sink.results)
        GATE.set()  # the check returns: results flow and the heartbeat is back
        await wait_for(lambda: len(sink.results) > n + 3)
        await wait_for(lambda: daemon.runtime.metrics.watchdog_healthy._value.get() == 1, 5)
        t_back = time.monotonic()
        await wait_for(
            lambda: any(t > t_back for t, _ in listener.with_key("WATCHDOG")), timeout_s=5
        )
    finally:
        GATE.set()
        await daemon.stop()


async def test_sighup_before_start_up_finished_is_ignored(
    write_config: Callable[[dict[str, Any]], Path],
    listener: NotifyListener,
    caplog: pytest.LogCaptureFixture,
    level_check: None,
) -> None:
    path = write_config(_doc("level.mean <= 255"))
    daemon = Daemon(
        load_settings(path),
        sink=RecordingSink(),
        config_path=path,
        notifier=Notifier(listener.address),
    )
    daemon.request_reload()
    assert "reload requested while starting or stopping: ignored" in caplog.text
    assert daemon.supervisor.names == []
    await asyncio.sleep(0.1)
    assert listener.snapshot() == []  # no RELOADING/READY before start-up's READY
    await daemon.stop()
