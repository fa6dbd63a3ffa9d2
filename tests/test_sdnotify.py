"""sd_notify against a real Unix datagram socket, as systemd would listen on it."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _ops_helpers import NotifyListener

from edged.runtime.sdnotify import Notifier, watchdog_interval_s


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[NotifyListener]:
    lst = NotifyListener(tmp_path / "notify.sock")
    yield lst
    lst.close()


def test_disabled_without_notify_socket() -> None:
    n = Notifier.from_env({})
    assert not n.enabled
    assert n.ready("up") is False
    assert n.watchdog() is False
    assert n.stopping() is False


def test_ready_with_status_on_a_path_socket(listener: NotifyListener) -> None:
    n = Notifier.from_env({"NOTIFY_SOCKET": listener.address})
    assert n.enabled
    assert n.ready("2 cameras up") is True
    msg = listener.wait_for(lambda m: "READY" in m)
    assert msg == {"READY": "1", "STATUS": "2 cameras up"}
    n.close()


def test_abstract_namespace_socket() -> None:
    lst = NotifyListener(abstract=True)
    try:
        assert lst.address.startswith("@")
        n = Notifier.from_env({"NOTIFY_SOCKET": lst.address})
        assert n.watchdog() is True
        assert n.stopping("draining") is True
        lst.wait_for(lambda m: "STOPPING" in m)
        assert [m for _, m in lst.snapshot()] == [
            {"WATCHDOG": "1"},
            {"STOPPING": "1", "STATUS": "draining"},
        ]
        n.close()
    finally:
        lst.close()


def test_status_is_one_line_and_bounded(listener: NotifyListener) -> None:
    n = Notifier(listener.address)
    n.status("line1 ok\nline2 down\r\n  mqtt up")
    n.status("x" * 500)
    listener.wait_for(lambda m: m.get("STATUS", "").startswith("xxx"))
    first, second = (m["STATUS"] for _, m in listener.snapshot())
    assert first == "line1 ok line2 down mqtt up"
    assert len(second) == 200
    assert second.endswith("…")


def test_reloading_carries_the_monotonic_clock(listener: NotifyListener) -> None:
    n = Notifier(listener.address)
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    n.reloading("reloading config")
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    msg = listener.wait_for(lambda m: "RELOADING" in m)
    assert msg["RELOADING"] == "1"
    assert before <= int(msg["MONOTONIC_USEC"]) <= after
    assert msg["STATUS"] == "reloading config"


def test_extend_timeout_in_microseconds(listener: NotifyListener) -> None:
    n = Notifier(listener.address)
    n.extend_timeout(12.5)
    assert listener.wait_for(lambda m: "EXTEND_TIMEOUT_USEC" in m) == {
        "EXTEND_TIMEOUT_USEC": "12500000"
    }


def test_a_vanished_manager_loses_the_message_without_raising(tmp_path: Path) -> None:
    n = Notifier(str(tmp_path / "nobody-listens.sock"))
    assert n.enabled
    assert n.ready() is False
    assert n.watchdog() is False


def test_unsupported_address_disables(caplog: pytest.LogCaptureFixture) -> None:
    n = Notifier("vsock:2:1234")
    assert not n.enabled
    assert "expected an absolute path or @abstract name" in caplog.text


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": str(os.getpid())}, 0.1),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "me"}, None),
    ],
)
def test_watchdog_interval_is_half_the_timeout(env: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval_s(env) == expected
