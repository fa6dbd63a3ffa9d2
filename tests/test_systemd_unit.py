"""systemd/edged.service: the directives operations rely on, and `systemd-analyze verify`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from edged.config import PipelineConfig

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "systemd" / "edged.service"


def _parse(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> every value (systemd allows repeated keys)."""
    out: dict[str, dict[str, list[str]]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            out[section] = {}
            continue
        key, _, value = line.partition("=")
        out[section].setdefault(key, []).append(value)
    return out


def _seconds(value: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "min": 60.0}
    for suffix, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value)


def test_service_directives() -> None:
    unit = _parse(UNIT.read_text(encoding="utf-8"))
    svc = unit["Service"]

    def one(key: str) -> str:
        (value,) = svc[key]
        return value

    assert one("Type") == "notify"
    assert one("NotifyAccess") == "main"
    assert one("Restart") == "on-failure"
    assert one("ExecStart") == "/opt/edged/bin/edged run --config %E/edged/edged.yaml"
    assert one("ExecStartPre") == "/opt/edged/bin/edged check-config --config %E/edged/edged.yaml"
    assert one("ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one("User") == "edged"
    assert one("SupplementaryGroups").split() == ["video", "plugdev"]
    assert one("StateDirectory") == "edged"
    assert one("ConfigurationDirectory") == "edged"
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert one(key) == "yes", key
    assert one("ProtectSystem") == "strict"
    assert one("RestrictAddressFamilies").split() == [
        "AF_UNIX",
        "AF_INET",
        "AF_INET6",
        "AF_NETLINK",
    ]
    assert svc["DeviceAllow"] == ["char-video4linux rw", "char-usb_device rw"]
    assert "PrivateDevices" not in svc  # it would hide the cameras
    env = [word for line in svc["Environment"] for word in line.split()]
    assert "PYTHONFAULTHANDLER=1" in env
    assert "MALLOC_ARENA_MAX=2" in env  # bounded malloc arenas: RSS, see tools/bench_malloc.py
    # Shutdown drains within pipeline.shutdown_grace_s: systemd must wait longer.
    assert _seconds(one("TimeoutStopSec")) > PipelineConfig().shutdown_grace_s + 5
    assert _seconds(one("WatchdogSec")) >= 10
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_credentials_match_the_example_config() -> None:
    svc = _parse(UNIT.read_text(encoding="utf-8"))["Service"]
    ids = {v.split(":", 1)[0] for v in svc["LoadCredential"]}
    example = yaml.safe_load((ROOT / "configs" / "example-factory.yaml").read_text("utf-8"))
    assert example["mqtt"]["password_file"] in ids
    assert example["http"]["api_key_file"] in ids


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not found")
def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    # verify checks that ExecStart= exists: point it at a stand-in executable.
    exe = tmp_path / "edged"
    exe.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    exe.chmod(0o755)
    unit = tmp_path / "edged.service"
    unit.write_text(
        UNIT.read_text(encoding="utf-8").replace("/opt/edged/bin/edged", str(exe)),
        encoding="utf-8",
    )
    p = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    assert p.stderr.strip() == ""
