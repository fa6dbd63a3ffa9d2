"""Durable file writes shared by the on-disk stores (references, models).

A store writes a new version into a temporary directory, fsyncs every file
(:func:`write_synced`) and the directory (:func:`fsync_dir`), renames it into place
and only then points ``CURRENT`` at it (:func:`replace_synced`). A crash at any
point leaves the previous version current and intact.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import getpass
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def locked(root: Path, thread_lock: threading.RLock) -> Iterator[None]:
    """Exclusive across threads (``thread_lock``) and processes (flock on root/.lock)."""
    with thread_lock:
        root.mkdir(parents=True, exist_ok=True)
        with open(root / ".lock", "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (a rename or a new file in it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_synced(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and fsync the file."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def replace_synced(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (temporary file, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write_synced(tmp, data)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def utc_now() -> str:
    """Now as ISO 8601 UTC with milliseconds and a ``Z``."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def default_who() -> str:
    """``user@host`` of this process, for manifests."""
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in a container
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"
