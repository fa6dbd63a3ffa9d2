"""tools/install.sh --dry-run: every step printed, nothing changed; updates keep the config."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "install.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60, check=False
    )


def _dirs(tmp_path: Path) -> list[str]:
    return [
        "--prefix", str(tmp_path / "opt" / "edged"),
        "--config-dir", str(tmp_path / "etc" / "edged"),
        "--unit-dir", str(tmp_path / "units"),
        "--credstore", str(tmp_path / "credstore"),
        "--python", sys.executable,
    ]  # fmt: skip


def test_dry_run_prints_a_first_install_and_changes_nothing(tmp_path: Path) -> None:
    p = _run("--dry-run", "--user", "edged-no-such-user", *_dirs(tmp_path), "--enable")
    assert p.returncode == 0, p.stderr
    steps = [line[2:] for line in p.stdout.splitlines() if line.startswith("+ ")]
    prefix, etc = tmp_path / "opt" / "edged", tmp_path / "etc" / "edged"
    expected = [
        "groupadd --system edged-no-such-user",
        "useradd --system --gid edged-no-such-user --home-dir /var/lib/edged-no-such-user "
        "--no-create-home --shell /usr/sbin/nologin --comment edged\\ camera\\ inspection\\ daemon "
        "edged-no-such-user",
        f"{sys.executable} -m venv {prefix}",
        f"{prefix}/bin/pip install --quiet --upgrade --no-cache-dir {ROOT}",
        f"install -d -m 0755 -o root -g root {etc}",
        f"install -m 0640 -o root -g edged-no-such-user {ROOT}/configs/example-factory.yaml "
        f"{etc}/edged.yaml",
        f"install -d -m 0700 -o root -g root {tmp_path}/credstore",
    ]
    assert steps[: len(expected)] == expected
    assert steps[len(expected)].startswith("install -D -m 0644 ")
    assert steps[len(expected)].endswith(f"{tmp_path}/units/edged.service")
    assert f"{prefix}/bin/edged check-config --config {etc}/edged.yaml" in steps
    assert list(tmp_path.iterdir()) == []  # nothing was created


def test_dry_run_of_an_update_keeps_the_config_and_an_identical_unit(tmp_path: Path) -> None:
    prefix, etc, units = tmp_path / "opt" / "edged", tmp_path / "etc" / "edged", tmp_path / "units"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "python").symlink_to(sys.executable)
    etc.mkdir(parents=True)
    (etc / "edged.yaml").write_text("node_id: mine\n", encoding="utf-8")
    units.mkdir()
    unit = (ROOT / "systemd" / "edged.service").read_text(encoding="utf-8")
    unit = unit.replace("/opt/edged/", f"{prefix}/").replace("%E/edged/", f"{etc}/")
    (units / "edged.service").write_text(unit, encoding="utf-8")
    p = _run("--dry-run", "--user", "root", *_dirs(tmp_path))
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "# user root exists" in out
    assert f"# venv {prefix} exists: upgrading edged in it" in out
    assert f"# keeping {etc}/edged.yaml" in out
    assert f"# unit {units}/edged.service is up to date" in out
    assert "-m venv" not in out
    assert "useradd" not in out
    assert (etc / "edged.yaml").read_text(encoding="utf-8") == "node_id: mine\n"


def test_bad_options_are_refused(tmp_path: Path) -> None:
    p = _run("--dry-run", "--colour", "red")
    assert p.returncode == 2
    assert "unknown option: expected one of --dry-run" in p.stderr
    assert "got '--colour'" in p.stderr
    p = _run("--dry-run", "--config", str(tmp_path / "missing.yaml"))
    assert p.returncode == 2
    assert f"--config: expected a YAML file, got '{tmp_path}/missing.yaml'" in p.stderr
    p = _run("--dry-run", "--python", str(tmp_path / "python9"))
    assert p.returncode == 2
    assert "--python: expected Python >= 3.11" in p.stderr


def test_help_is_the_header() -> None:
    p = _run("--help")
    assert p.returncode == 0
    assert "--dry-run            print every step, change nothing" in p.stdout
    assert "set -euo" not in p.stdout


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_shellcheck_is_clean() -> None:
    p = subprocess.run(
        ["shellcheck", str(SCRIPT)], capture_output=True, text=True, timeout=60, check=False
    )
    assert p.returncode == 0, p.stdout
