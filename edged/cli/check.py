"""``edged check-config`` beyond the schema: the files and directories the daemon needs.

Each check returns problems as ``key: expected ..., got ...`` lines (none: fine).
Nothing is created or changed; a directory that does not exist yet must be
creatable (its nearest existing parent writable).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from edged.config import Settings, secret_path
from edged.core.errors import ConfigError


def check_files(settings: Settings) -> tuple[list[str], list[str]]:
    """(problems, notes) for the secret files, TLS files and directories of ``settings``.

    A secret file given by bare name is a systemd credential: it can only be read
    where ``$CREDENTIALS_DIRECTORY`` is set (the service, its ``ExecStartPre=``);
    elsewhere it is not checked, and a note says so.
    """
    problems: list[str] = []
    notes: list[str] = []
    creds = bool(os.environ.get("CREDENTIALS_DIRECTORY"))
    readers = {
        "mqtt.password_file": settings.mqtt_password,
        "mqtt.command_secret_file": settings.command_secret,
        "http.api_key_file": settings.http_api_key,
    }
    named = dict(settings.secret_files())
    for key, read in readers.items():
        path = named.get(key)
        if path is not None and not creds and not path.is_absolute() and len(path.parts) == 1:
            notes.append(f"{key}: {str(path)!r} not checked ($CREDENTIALS_DIRECTORY is not set)")
            continue
        try:
            read()
        except ConfigError as exc:
            problems.append(str(exc))
    m = settings.mqtt
    if m.enabled and m.tls:
        for key, path in (
            ("ca_file", m.ca_file),
            ("cert_file", m.cert_file),
            ("key_file", m.key_file),
        ):
            if path is not None and not secret_path(path).is_file():
                problems.append(
                    f"mqtt.{key}: expected a readable file, got {str(path)!r} (missing)"
                )
    for key, path in (
        ("state_dir", settings.state_dir),
        ("references_dir", settings.references_dir),
    ):
        problem = directory_problem(path)
        if problem is not None:
            problems.append(f"{key}: {problem}")
    return problems, notes


def directory_problem(path: Path) -> str | None:
    """Why ``path`` cannot serve as a writable directory, or None."""
    if path.exists():
        if not path.is_dir():
            return f"expected a directory, got {str(path)!r} (a file)"
        if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
            return f"expected a readable, writable directory, got {str(path)!r} (permission denied)"
        try:
            fd, probe = tempfile.mkstemp(prefix=".edged-check-", dir=path)
        except OSError as exc:
            return f"expected a writable directory, got {str(path)!r} ({exc.strerror or exc})"
        os.close(fd)
        os.unlink(probe)
        return None
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        return (
            f"expected a directory or one that can be created, got {str(path)!r} "
            f"({str(parent)!r} is not a writable directory)"
        )
    return None
