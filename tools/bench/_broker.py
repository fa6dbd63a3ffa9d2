"""A private MQTT broker for the end-to-end run (never the system broker on 1883).

Reuses the test suite's :class:`Broker` (``tests/_broker.py``: mosquitto, or amqtt
when the binary is missing) when this checkout has it and pytest is installed;
otherwise starts ``mosquitto`` itself on a free loopback port.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

MOSQUITTO = os.environ.get("EDGED_TEST_MOSQUITTO", "/usr/sbin/mosquitto")
_TESTS_BROKER = Path(__file__).resolve().parents[2] / "tests" / "_broker.py"


class BrokerHandle(Protocol):
    host: str
    port: int

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where a started broker listens, and whether it speaks MQTT 5 (amqtt: 3.1.1 only)."""

    host: str
    port: int
    mqtt5: bool = True

    @classmethod
    def of(cls, broker: BrokerHandle) -> BrokerAddress:
        return cls(broker.host, broker.port, bool(getattr(broker, "mqtt5", True)))


def start_broker(workdir: Path) -> tuple[BrokerHandle, str]:
    """A started broker and a word on which one it is. Raises RuntimeError when none can run."""
    module = _tests_broker()
    if module is not None:
        broker = module.Broker(workdir)
        broker.start()
        return broker, f"{broker.kind} via tests/_broker.py"
    if not os.access(MOSQUITTO, os.X_OK):
        msg = f"no MQTT broker: expected mosquitto at {MOSQUITTO}, got none"
        raise RuntimeError(msg)
    broker = _Mosquitto(workdir)
    return broker, "mosquitto"


def _tests_broker() -> Any | None:
    if not _TESTS_BROKER.is_file():
        return None
    try:
        spec = importlib.util.spec_from_file_location("_edged_tests_broker", _TESTS_BROKER)
        if spec is None or spec.loader is None:
            return None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except ImportError:  # pytest not installed
        return None
    return module


class _Mosquitto:
    """mosquitto on a free loopback port, no persistence, for one run."""

    def __init__(self, workdir: Path) -> None:
        self.host = "127.0.0.1"
        with socket.socket() as s:
            s.bind((self.host, 0))
            self.port = int(s.getsockname()[1])
        workdir.mkdir(parents=True, exist_ok=True)
        conf = workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} {self.host}\nallow_anonymous true\n"
            "persistence false\nmax_queued_messages 100000\nset_tcp_nodelay true\n"
        )
        self._proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.close()
        msg = f"mosquitto did not listen on {self.host}:{self.port} within 10 s"
        raise RuntimeError(msg)

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5.0)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
