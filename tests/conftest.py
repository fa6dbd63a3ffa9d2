"""Shared fixtures. Area-specific fixtures live in ``tests/_<area>_helpers.py``."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[dict[str, Any]], Path]:
    """Write a config mapping to a YAML file under tmp_path; state and references
    default to folders under tmp_path so tests never touch /var/lib."""

    def _write(doc: dict[str, Any], name: str = "edged.yaml") -> Path:
        doc = {
            "state_dir": str(tmp_path / "state"),
            "references_dir": str(tmp_path / "refs"),
            **doc,
        }
        path = tmp_path / name
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        return path

    return _write
