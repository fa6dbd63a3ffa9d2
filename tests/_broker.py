"""A private MQTT broker for tests: a real ``mosquitto`` process, or amqtt in-process.

Tests never talk to a broker they did not start. :class:`Broker` writes a
mosquitto config into its own directory (listener on a free loopback port,
persistence in that directory, optional ACL and password files), starts
``/usr/sbin/mosquitto -c <conf>``, and can stop it (SIGTERM: clean, persistence
saved; SIGKILL: a crash) and start it again on the SAME port, which is what an
outage looks like to a client.

When the mosquitto binary is missing (a fresh machine without the Debian
package), it falls back to an in-process amqtt broker running on its own event
loop in a thread, so the suite still passes. amqtt speaks MQTT 3.1.1 only, keeps
nothing across a restart and has no ACL/password support here; tests that need
those check ``broker.mqtt5`` / ``broker.persistent`` / ``broker.kind`` and skip
with the reason.

Usage in a test module (the fixtures are named ``broker`` and ``make_broker``)::

    from _broker import broker_fixture, make_broker_fixture  # noqa: F401

    def test_x(broker):            # started, stopped after the test
        ...broker.host, broker.port...
        broker.stop(); broker.start()

    def test_acl(make_broker):     # custom options
        b = make_broker(acl="user edged\\ntopic write edged/#\\n")
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import pwd
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Literal

import pytest

MOSQUITTO = os.environ.get("EDGED_TEST_MOSQUITTO", "/usr/sbin/mosquitto")
HOST = "127.0.0.1"

BrokerKind = Literal["mosquitto", "amqtt"]


def free_port() -> int:
    """A TCP port on loopback that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def mosquitto_available() -> bool:
    return os.access(MOSQUITTO, os.X_OK)


def mosquitto_password_line(user: str, password: str, *, salt: bytes | None = None) -> str:
    """One ``password_file`` line in mosquitto 2's PBKDF2-SHA512 format (``$7$``).

    Same format ``mosquitto_passwd`` writes: ``user:$7$<iterations>$<salt b64>$<hash b64>``.
    """
    salt = salt if salt is not None else os.urandom(12)
    iterations = 101
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return (
        f"{user}:$7${iterations}${base64.b64encode(salt).decode()}"
        f"${base64.b64encode(digest).decode()}"
    )


def port_open(host: str, port: int, timeout_s: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


class Broker:
    """A private broker on ``HOST:port`` that can go down and come back on the same port.

    ``kind="auto"`` picks mosquitto when the binary exists, else amqtt.
    ``acl`` is the text of a mosquitto ``acl_file``; ``passwords`` maps user ->
    password (written as a mosquitto ``password_file``; anonymous access is then
    refused). ``extra_conf`` is appended to the generated mosquitto.conf.
    ``tls`` = (ca_file, cert_file, key_file) adds ``require_certificate`` TLS on
    the listener (mosquitto only). ``conf_text(broker)`` replaces the generated
    config entirely (it must use ``broker.port`` and ``broker.dir``).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        kind: BrokerKind | Literal["auto"] = "auto",
        acl: str | None = None,
        passwords: dict[str, str] | None = None,
        extra_conf: str = "",
        tls: tuple[Path, Path, Path] | None = None,
        verbose_log: bool = False,
        port: int | None = None,
        conf_text: Callable[[Broker], str] | None = None,
    ) -> None:
        if kind == "auto":
            kind = "mosquitto" if mosquitto_available() else "amqtt"
        if kind == "amqtt" and (acl or passwords or tls or extra_conf):
            msg = "the amqtt fallback supports neither ACL, passwords, TLS nor extra_conf"
            raise ValueError(msg)
        self.kind: BrokerKind = kind
        self.host = HOST
        self.port = port if port is not None else free_port()
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf_path = self.dir / "mosquitto.conf"
        self.log_path = self.dir / "mosquitto.log"
        self.starts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._amqtt: _AmqttThread | None = None
        if kind == "mosquitto" and conf_text is not None:
            self.conf_path.write_text(conf_text(self))
        elif kind == "mosquitto":
            self._write_conf(acl, passwords, extra_conf, tls, verbose_log)

    # ------------------------------------------------------------------ facts

    @property
    def mqtt5(self) -> bool:
        """Does the broker speak MQTT 5 (reason codes, properties)?"""
        return self.kind == "mosquitto"

    @property
    def persistent(self) -> bool:
        """Do sessions, queued and retained messages survive a restart?"""
        return self.kind == "mosquitto"

    @property
    def running(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return self._amqtt is not None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def log_text(self) -> str:
        """mosquitto's log file so far ('' for amqtt)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # ------------------------------------------------------------------ life

    def start(self, timeout_s: float = 10.0) -> None:
        """Start (or start again) on the same port; returns once it accepts connections."""
        if self.running:
            return
        if self.kind == "mosquitto":
            self._proc = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.conf_path)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            self._wait_listening(timeout_s)
        else:
            self._amqtt = _AmqttThread(self.host, self.port)
            self._amqtt.start(timeout_s)
        self.starts += 1

    def stop(self, *, kill: bool = False, timeout_s: float = 10.0) -> None:
        """Stop: SIGTERM (clean; mosquitto saves persistence) or SIGKILL (a crash)."""
        if self._proc is not None:
            proc, self._proc = self._proc, None
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
                try:
                    proc.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout_s)
            if proc.stderr is not None:
                proc.stderr.close()
        if self._amqtt is not None:
            amqtt, self._amqtt = self._amqtt, None
            amqtt.stop(timeout_s)
        deadline = time.monotonic() + timeout_s
        while port_open(self.host, self.port) and time.monotonic() < deadline:
            time.sleep(0.02)

    def restart(self, *, kill: bool = False, down_s: float = 0.0) -> None:
        self.stop(kill=kill)
        if down_s > 0:
            time.sleep(down_s)
        self.start()

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> Broker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ mosquitto

    def _write_conf(
        self,
        acl: str | None,
        passwords: dict[str, str] | None,
        extra_conf: str,
        tls: tuple[Path, Path, Path] | None,
        verbose_log: bool,
    ) -> None:
        lines = [
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'false' if passwords else 'true'}",
            "persistence true",
            f"persistence_location {self.dir}/",
            "autosave_interval 1",
            "max_queued_messages 200000",
            "set_tcp_nodelay true",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "log_timestamp_format %H:%M:%S",
        ]
        if verbose_log:
            lines.append("log_type debug")
        if acl is not None:
            acl_path = self.dir / "acl"
            acl_path.write_text(acl)
            lines.append(f"acl_file {acl_path}")
        if passwords:
            pw_path = self.dir / "passwd"
            pw_path.write_text(
                "".join(mosquitto_password_line(u, p) + "\n" for u, p in passwords.items())
            )
            pw_path.chmod(0o600)
            lines.append(f"password_file {pw_path}")
        if tls is not None:
            ca, cert, key = tls
            lines += [
                f"cafile {ca}",
                f"certfile {cert}",
                f"keyfile {key}",
                "require_certificate true",
            ]
        self.conf_path.write_text("\n".join(lines) + "\n" + extra_conf + "\n")

    def _wait_listening(self, timeout_s: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                msg = (
                    f"mosquitto exited with {self._proc.returncode} on port {self.port}: "
                    f"{err.strip()} {self.log_text()[-2000:]}"
                )
                raise RuntimeError(msg)
            if port_open(self.host, self.port):
                return
            time.sleep(0.02)
        self.stop(kill=True)
        msg = f"mosquitto did not listen on {self.host}:{self.port} within {timeout_s} s"
        raise TimeoutError(msg)


class _AmqttThread:
    """amqtt's asyncio broker on a private event loop in a daemon thread."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Any = None
        self._thread: threading.Thread | None = None

    def start(self, timeout_s: float) -> None:
        started: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name=f"amqtt-{self._port}", daemon=True
        )
        self._thread.start()
        started.result(timeout_s)

    def _run(self, started: Future[None]) -> None:
        from amqtt.broker import Broker as AmqttBroker

        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self._host}:{self._port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }

        async def boot() -> None:
            self._broker = AmqttBroker(config, loop=loop)
            await self._broker.start()

        try:
            loop.run_until_complete(boot())
        except BaseException as exc:  # report any start failure to the caller
            started.set_exception(exc)
            loop.close()
            return
        started.set_result(None)
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def stop(self, timeout_s: float) -> None:
        loop, broker = self._loop, self._broker
        if loop is None or self._thread is None:
            return
        fut = asyncio.run_coroutine_threadsafe(broker.shutdown(), loop)
        with contextlib.suppress(Exception):
            fut.result(timeout_s)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout_s)


# ---------------------------------------------------------------------- fixtures


@pytest.fixture(name="make_broker")
def make_broker_fixture(tmp_path: Path) -> Iterator[Callable[..., Broker]]:
    """Factory for started brokers with custom options; all are stopped after the test."""
    made: list[Broker] = []

    def make(**options: Any) -> Broker:
        b = Broker(tmp_path / f"broker{len(made)}", **options)
        made.append(b)
        b.start()
        return b

    yield make
    for b in made:
        b.close()


@pytest.fixture(name="broker")
def broker_fixture(tmp_path: Path) -> Iterator[Broker]:
    """A started private broker (mosquitto, or amqtt when mosquitto is missing)."""
    b = Broker(tmp_path / "broker")
    b.start()
    yield b
    b.close()


def require(broker: Broker, *, mqtt5: bool = False, persistent: bool = False) -> None:
    """Skip the calling test when the fallback broker lacks a needed feature."""
    if mqtt5 and not broker.mqtt5:
        pytest.skip(f"needs an MQTT 5 broker; {broker.kind} speaks 3.1.1 only")
    if persistent and not broker.persistent:
        pytest.skip(f"needs a broker that keeps sessions across restarts; {broker.kind} does not")
