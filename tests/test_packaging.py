"""The wheel's contents as pyproject.toml declares them: configs, version in one place."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))


def test_every_example_config_is_package_data() -> None:
    patterns = _pyproject()["tool"]["setuptools"]["package-data"]["edged"]
    shipped = sorted(p.name for p in (ROOT / "edged" / "configs").iterdir() if p.is_file())
    assert "demo.yaml" in shipped
    assert "example-factory.yaml" in shipped
    missing = [
        name for name in shipped if not any(fnmatch.fnmatch(f"configs/{name}", p) for p in patterns)
    ]
    assert missing == []


def test_configs_of_a_clone_are_the_packaged_ones() -> None:
    # README quick start: `edged run --config configs/demo.yaml` from a clone.
    assert (ROOT / "configs").resolve() == (ROOT / "edged" / "configs").resolve()
    assert (ROOT / "configs" / "demo.yaml").is_file()


def test_the_version_is_set_once() -> None:
    project = _pyproject()["project"]
    assert "version" not in project
    assert project["dynamic"] == ["version"]
    attr = _pyproject()["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "edged._version.__version__"
