"""Test helpers for operations: a real sd_notify listener (Unix datagram socket)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path


class NotifyListener:
    """Plays systemd's side of ``$NOTIFY_SOCKET``: records every datagram with its time.

    ``path`` is a filesystem socket; ``abstract=True`` binds ``@name`` in the
    abstract namespace instead. ``address`` is the value for ``$NOTIFY_SOCKET``.
    """

    def __init__(self, path: Path | None = None, *, abstract: bool = False) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"edged-test-{os.getpid()}-{id(self)}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            assert path is not None
            self.sock.bind(str(path))
            self.address = str(path)
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notify-listener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(
                line.split("=", 1) for line in data.decode("utf-8").split("\n") if "=" in line
            )
            with self._lock:
                self.messages.append((time.monotonic(), fields))

    def snapshot(self) -> list[tuple[float, dict[str, str]]]:
        with self._lock:
            return list(self.messages)

    def with_key(self, key: str) -> list[tuple[float, dict[str, str]]]:
        return [(t, m) for t, m in self.snapshot() if key in m]

    def wait_for(
        self, predicate: Callable[[dict[str, str]], bool], timeout_s: float = 10.0
    ) -> dict[str, str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for _, msg in self.snapshot():
                if predicate(msg):
                    return msg
            time.sleep(0.02)
        msg = f"no matching notification within {timeout_s} s; got {self.snapshot()!r}"
        raise AssertionError(msg)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()
