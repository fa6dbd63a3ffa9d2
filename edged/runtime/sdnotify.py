"""The systemd notification protocol (``sd_notify(3)``), without compiled dependencies.

A service started with ``Type=notify`` finds the path of a Unix datagram socket in
``$NOTIFY_SOCKET`` and sends newline-separated ``KEY=VALUE`` assignments to it:
``READY=1`` once started, ``STATUS=...`` with a one-line summary, ``WATCHDOG=1`` as
a keep-alive when ``WatchdogSec=`` is set, ``RELOADING=1`` (with
``MONOTONIC_USEC=``, for ``Type=notify-reload``) and ``STOPPING=1``. A socket
name that starts with ``@`` lives in the Linux abstract namespace (the ``@``
stands for a leading NUL byte).

Outside systemd (``$NOTIFY_SOCKET`` unset) every call is a cheap no-op that
returns False, so the daemon calls these unconditionally. Sending never blocks
and never raises: a full or vanished socket loses that one message (it is logged
at debug level), which is what systemd's own ``sd_notify()`` does too.

``watchdog_interval_s()`` reads ``$WATCHDOG_USEC`` / ``$WATCHDOG_PID`` and
returns the keep-alive period systemd recommends: half of the watchdog timeout.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger("edged.sdnotify")

# A STATUS= value is one line; systemd shows it in `systemctl status`.
_MAX_STATUS_CHARS = 200


class Notifier:
    """Sends notifications to the service manager at ``address`` (None: disabled).

    ``address`` is the value of ``$NOTIFY_SOCKET``: a filesystem path or
    ``@name`` for the abstract namespace. Build it with :meth:`from_env`.
    """

    def __init__(self, address: str | None) -> None:
        self._address: str | None = None
        self._sock: socket.socket | None = None
        if not address:
            return
        if address.startswith("@"):
            self._address = "\0" + address[1:]
        elif address.startswith("/"):
            self._address = address
        else:
            # vsock:CID:PORT (systemd >= 253, for VMs) and relative paths are not ours.
            log.warning(
                "NOTIFY_SOCKET: expected an absolute path or @abstract name, got %r; "
                "systemd notifications are disabled",
                address,
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """The notifier for ``$NOTIFY_SOCKET`` (disabled when unset or empty)."""
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        """True when running under a service manager that listens."""
        return self._address is not None

    def send(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` assignments in one datagram. True when it was sent."""
        if self._address is None:
            return False
        data = "\n".join(assignments).encode("utf-8")
        try:
            if self._sock is None:
                self._sock = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
                )
            self._sock.sendto(data, self._address)
        except OSError as exc:
            # EAGAIN: the manager's queue is full; ENOENT/ECONNREFUSED: it went away.
            level = logging.DEBUG if exc.errno in (errno.EAGAIN, errno.ENOENT) else logging.WARNING
            what = assignments[0].split("=", 1)[0] if assignments else "(empty)"
            log.log(level, "sd_notify %s to %r failed: %s", what, self._address, exc)
            return False
        return True

    # ------------------------------------------------------------ well-known messages

    def ready(self, status: str | None = None) -> bool:
        """Start-up (or a reload) is complete."""
        return self.send("READY=1", *_status(status))

    def status(self, text: str) -> bool:
        """A one-line human summary shown by ``systemctl status``."""
        return self.send(*_status(text))

    def watchdog(self) -> bool:
        """Keep-alive: the service is healthy (``WatchdogSec=``)."""
        return self.send("WATCHDOG=1")

    def reloading(self, status: str | None = None) -> bool:
        """A configuration reload starts; send :meth:`ready` when it is done."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", *_status(status))

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown has begun."""
        return self.send("STOPPING=1", *_status(status))

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more time to start or stop (``EXTEND_TIMEOUT_USEC=``)."""
        return self.send(f"EXTEND_TIMEOUT_USEC={max(1, round(seconds * 1_000_000))}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _status(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    line = " ".join(text.split())  # one line: newlines separate assignments
    if len(line) > _MAX_STATUS_CHARS:
        line = line[: _MAX_STATUS_CHARS - 1] + "…"
    return (f"STATUS={line}",)


def watchdog_interval_s(
    environ: Mapping[str, str] | None = None, *, pid: int | None = None
) -> float | None:
    """Seconds between keep-alives: half of ``$WATCHDOG_USEC``, or None when off.

    The watchdog is off when ``$WATCHDOG_USEC`` is unset, not a positive integer,
    or when ``$WATCHDOG_PID`` names another process (it was meant for a parent).
    """
    env = os.environ if environ is None else environ
    raw = env.get("WATCHDOG_USEC")
    if not raw:
        return None
    try:
        usec = int(raw)
    except ValueError:
        log.warning("WATCHDOG_USEC: expected microseconds as an integer, got %r", raw)
        return None
    if usec <= 0:
        return None
    owner = env.get("WATCHDOG_PID")
    if owner:
        try:
            owner_pid = int(owner)
        except ValueError:
            log.warning("WATCHDOG_PID: expected a process id, got %r", owner)
            return None
        if owner_pid != (os.getpid() if pid is None else pid):
            return None
    return usec / 2_000_000.0
