"""``edged cameras``, run as a technician runs it: a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _acq_helpers import VIKY_CTI

ROOT = Path(__file__).parent.parent

pytestmark = pytest.mark.genicam


def edged(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GENICAM_GENTL64_PATH"}
    return subprocess.run(
        [sys.executable, "-m", "edged", *args],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=env, check=False,
    )  # fmt: skip


def test_cameras_json_lists_viky_devices() -> None:
    p = edged("cameras", "--cti", str(VIKY_CTI), "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert [d["serial"] for d in doc["genicam"]] == ["0", "1", "2"]
    assert doc["genicam"][0]["model"] == "Viky"
    assert doc["errors"] == []


def test_cameras_table_from_config_shows_the_line_to_paste(
    write_config: Callable[[dict[str, Any]], Path],
) -> None:
    cfg = write_config(
        {
            "cameras": {
                "top": {
                    "source": "genicam",
                    "recipe": "r",
                    "genicam": {"cti": [str(VIKY_CTI)], "serial": "1"},
                },
            },
            "recipes": {"r": {}},
        }
    )
    p = edged("cameras", "--config", str(cfg))
    assert p.returncode == 0, p.stderr
    assert "GenICam devices (3):" in p.stdout
    assert f"genicam: {{cti: [{VIKY_CTI}], serial: '2'}}" in p.stdout


def test_cameras_missing_producer_is_an_error() -> None:
    p = edged("cameras", "--cti", "/nonexistent/producer.cti")
    assert "expected existing .cti files, got missing ['/nonexistent/producer.cti']" in p.stdout
