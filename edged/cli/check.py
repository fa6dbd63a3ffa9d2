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


def check_files(settings: Settings) -> list[str]:
    """Every problem with secret files, TLS files and directories of ``settings``."""
    problems: list[str] = []
    for read in (settings.mqtt_password, settings.http_api_key, settings.command_secret):
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
    return problems


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
