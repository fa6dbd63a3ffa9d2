"""Reload: validate the new file, apply live changes, keep restart-only values, reject bad files."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from _ops_helpers import NotifyListener

from edged.config import Settings, load_settings
from edged.runtime.reload import Reloader, diff_settings, plan_reload
from edged.runtime.sdnotify import Notifier
from edged.runtime.shared import Runtime


def _doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "node_id": "edge-7",
        "cameras": {
            "line1": {"source": "synthetic", "recipe": "label", "fps": 5},
            "line2": {"source": "synthetic", "recipe": "label", "fps": 5},
        },
        "recipes": {
            "label": {"checks": {"quality": {}}, "limits": ["quality.brightness.over_per <= 2"]},
            "pcb": {"checks": {"mask": {}}, "limits": ["mask.area_px in [1000, 5000]"]},
        },
        "mqtt": {"host": "127.0.0.1", "port": 1883},
        "http": {"port": 8000},
        "logging": {"level": "INFO"},
    }
    for path, value in changes.items():
        node = doc
        *parents, leaf = path.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        if value is _DELETE:
            del node[leaf]
        else:
            node[leaf] = value
    return doc


_DELETE = object()


def _settings(tmp_path: Path, doc: dict[str, Any], name: str = "edged.yaml") -> Settings:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return load_settings(path)


def test_no_changes(tmp_path: Path) -> None:
    old = _settings(tmp_path, _doc())
    plan = plan_reload(old, _settings(tmp_path, _doc(), "b.yaml"))
    assert plan.changes == ()
    assert plan.summary() == "no changes"


def test_live_and_restart_keys_are_told_apart(tmp_path: Path) -> None:
    old = _settings(tmp_path, _doc())
    new = _settings(
        tmp_path,
        _doc(
            recipes__label__limits=["quality.brightness.over_per <= 5"],
            cameras__line2__recipe="pcb",
            cameras__line2__fps=10,
            mqtt__host="broker.plant",
            http__default_recipe="pcb",
            http__port=8080,
            logging__format="json",
            pipeline={"watchdog_stall_s": 12, "workers": 4},
        ),
        "new.yaml",
    )
    changes = {c.path: c.live for c in diff_settings(old, new)}
    assert changes == {
        "recipes.label": True,
        "cameras.line2.recipe": True,
        "cameras.line2.fps": False,
        "mqtt.host": False,
        "http.default_recipe": True,
        "http.port": False,
        "logging.format": True,
        "pipeline.watchdog_stall_s": True,
        "pipeline.workers": False,
    }
    plan = plan_reload(old, new)
    run = plan.applied
    # Live values are taken over ...
    assert run.recipes["label"].limits == ["quality.brightness.over_per <= 5"]
    assert run.cameras["line2"].recipe == "pcb"
    assert run.http.default_recipe == "pcb"
    assert run.logging.format == "json"
    assert run.pipeline.watchdog_stall_s == 12
    # ... restart-only ones keep their running value.
    assert run.cameras["line2"].fps == 5
    assert run.mqtt.host == "127.0.0.1"
    assert run.http.port == 8000
    assert run.pipeline.workers == 2
    assert plan.camera_recipes == {"line2": "pcb"}
    assert plan.recipes_changed == ("label",)
    assert plan.summary() == (
        "applied live: recipes.label, cameras.line2.recipe, http.default_recipe, "
        "logging.format, pipeline.watchdog_stall_s; needs a restart (running values kept): "
        "cameras.line2.fps, http.port, mqtt.host, pipeline.workers"
    )


def test_added_removed_cameras_and_a_recipe_still_in_use(tmp_path: Path) -> None:
    old = _settings(tmp_path, _doc(cameras__line2__recipe="pcb"))
    new = _settings(
        tmp_path,
        _doc(
            cameras__line2=_DELETE,
            cameras__line3={"source": "synthetic", "recipe": "label"},
            recipes__pcb=_DELETE,
        ),
        "new.yaml",
    )
    plan = plan_reload(old, new)
    assert [(c.path, c.kind, c.live) for c in plan.changes] == [
        ("recipes.pcb", "removed", True),
        ("cameras.line2", "removed", False),
        ("cameras.line3", "added", False),
    ]
    # line2 keeps running (a restart removes it), so its recipe stays too.
    assert sorted(plan.applied.cameras) == ["line1", "line2"]
    assert plan.kept_recipes == ("pcb",)
    assert sorted(plan.applied.recipes) == ["label", "pcb"]
    assert "recipes kept until restart (a running camera uses them): pcb" in plan.summary()


async def test_an_invalid_file_is_rejected_and_the_running_config_stays(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "edged.yaml"
    path.write_text(yaml.safe_dump(_doc()), encoding="utf-8")
    runtime = Runtime.build(load_settings(path))
    before_settings, before_inspectors = runtime.settings, runtime.inspectors
    listener = NotifyListener(tmp_path / "notify.sock")
    try:
        reloader = Reloader(
            runtime, path, notifier=Notifier(listener.address), ready_status=lambda: "running"
        )
        path.write_text(
            yaml.safe_dump(
                _doc(cameras__line1__recipe="nope", mqtt__port=70000, http__colour="red")
            ),
            encoding="utf-8",
        )
        caplog.set_level(logging.INFO, logger="edged")
        outcome = await reloader.reload()
        assert not outcome.applied
        assert outcome.plan is None
        assert outcome.errors == (
            "mqtt.port: Input should be less than or equal to 65535 (got 70000)",
            "http.colour: unknown key (got 'red')",
        )
        assert runtime.settings is before_settings
        assert runtime.inspectors is before_inspectors
        (record,) = [r for r in caplog.records if r.name == "edged.reload"]
        assert record.levelno == logging.ERROR
        assert record.getMessage() == (
            f"config reload from {path} rejected, the running config stays: "
            "mqtt.port: Input should be less than or equal to 65535 (got 70000); "
            "http.colour: unknown key (got 'red')"
        )
        assert runtime.metrics.config_reloads.labels("rejected")._value.get() == 1
        assert runtime.metrics.config_last_reload_successful._value.get() == 0
        # A cross-reference error (valid types, unknown recipe) is rejected too.
        path.write_text(yaml.safe_dump(_doc(cameras__line1__recipe="nope")), encoding="utf-8")
        outcome = await reloader.reload()
        assert outcome.errors == (
            "(root): cameras.line1.recipe: expected one of ['label', 'pcb'], got 'nope'",
        )
        # A YAML syntax error as well.
        path.write_text("cameras: [unclosed\n", encoding="utf-8")
        outcome = await reloader.reload()
        assert len(outcome.errors) == 1
        assert "expected valid YAML, got a syntax error" in outcome.errors[0]
        assert runtime.settings is before_settings
        assert runtime.metrics.config_reloads.labels("rejected")._value.get() == 3
        # systemd saw RELOADING=1 then READY=1 around each attempt.
        listener.wait_for(lambda m: m.get("STATUS") == "running" and "READY" in m)
        kinds = [("RELOADING" in m, "READY" in m) for _, m in listener.snapshot()][:2]
        assert kinds == [(True, False), (False, True)]
    finally:
        listener.close()


async def test_a_valid_reload_swaps_recipes_and_keeps_unchanged_inspectors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "edged.yaml"
    path.write_text(yaml.safe_dump(_doc()), encoding="utf-8")
    runtime = Runtime.build(load_settings(path))
    label, pcb = runtime.inspectors["label"], runtime.inspectors["pcb"]
    seen: list[tuple[str, ...]] = []

    async def hook(plan: Any) -> None:
        seen.append(plan.live)

    reloader = Reloader(runtime, path, on_applied=[hook])
    path.write_text(
        yaml.safe_dump(
            _doc(recipes__label__limits=["quality.brightness.over_per <= 9"], mqtt__port=1884)
        ),
        encoding="utf-8",
    )
    caplog.set_level(logging.INFO, logger="edged")
    outcome = await reloader.reload()
    assert outcome.applied
    assert runtime.inspectors["pcb"] is pcb
    assert runtime.inspectors["label"] is not label
    assert runtime.inspectors["label"].recipe.limits == ["quality.brightness.over_per <= 9"]
    assert runtime.settings.mqtt.port == 1883  # needs a restart: the running value stays
    assert seen == [("recipes.label",)]
    (record,) = [r for r in caplog.records if r.name == "edged.reload"]
    assert record.levelno == logging.WARNING  # something waits for a restart
    assert record.getMessage() == (
        f"config reloaded from {path}: applied live: recipes.label; "
        "needs a restart (running values kept): mqtt.port"
    )
    assert runtime.metrics.config_reloads.labels("applied")._value.get() == 1
    assert runtime.metrics.config_last_reload_successful._value.get() == 1


class DirectoryStore:
    """A minimal reference store over a directory: one reference name per file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.names: list[str] = []
        self.reload()

    def prepared(self, recipe: str, camera: str) -> Any | None:
        return None

    def reload(self) -> None:
        self.names = sorted(p.name for p in self.root.iterdir())


async def test_reload_asks_the_reference_store_to_reread(tmp_path: Path) -> None:
    refs = tmp_path / "refs"
    refs.mkdir()
    path = tmp_path / "edged.yaml"
    path.write_text(yaml.safe_dump(_doc()), encoding="utf-8")
    store = DirectoryStore(refs)
    runtime = Runtime.build(load_settings(path), references=store)
    (refs / "label-line1-v2.png").write_bytes(b"\x89PNG")
    assert store.names == []
    outcome = await Reloader(runtime, path).reload()
    assert outcome.applied
    assert outcome.plan is not None
    assert outcome.plan.changes == ()
    assert store.names == ["label-line1-v2.png"]
    runtime.pool.shutdown()


async def test_a_limit_no_check_produces_is_rejected(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "edged.yaml"
    path.write_text(yaml.safe_dump(_doc()), encoding="utf-8")
    runtime = Runtime.build(load_settings(path))
    before_inspectors = runtime.inspectors
    reloader = Reloader(runtime, path)
    path.write_text(
        yaml.safe_dump(
            _doc(
                recipes__label__limits=["quality.sharpness.valnorm >= 0.3"],
                recipes__pcb__checks={"mask": {"bins": 1}},
            )
        ),
        encoding="utf-8",
    )
    caplog.set_level(logging.INFO, logger="edged")
    outcome = await reloader.reload()
    assert not outcome.applied
    assert outcome.errors == (
        "recipes.label.limits.0: limit 'quality.sharpness.valnorm >= 0.3': no check of recipe "
        "'label' produces quality.sharpness.valnorm (did you mean `quality.sharpness.val_norm`?)",
        "recipes.pcb.checks.mask.bins: Input should be greater than or equal to 2 (got 1)",
    )
    assert runtime.inspectors is before_inspectors
    (record,) = [r for r in caplog.records if r.name == "edged.reload"]
    assert record.levelno == logging.ERROR
    assert "did you mean `quality.sharpness.val_norm`?" in record.getMessage()
