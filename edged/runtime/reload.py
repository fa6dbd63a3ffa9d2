"""Configuration reload (SIGHUP): validate, compare, apply what can change live.

``Reloader.reload()`` reads the config file again with
:func:`edged.config.load_settings` (environment overrides included):

- An invalid file is **rejected**: its errors are logged on one line, each with
  its key path, ``edged_config_last_reload_successful`` drops to 0, and the
  running configuration stays untouched.
- A valid file is compared with the running settings key by key
  (:func:`plan_reload`). What can change without dropping frames is applied at
  once: recipes (checks, options, limits; added, changed or removed), each
  camera's recipe, ``http.default_recipe`` / ``http.api_key`` /
  ``http.api_key_file``, ``logging.*`` and ``pipeline.watchdog_stall_s``.
  Everything else (camera sources, ports, MQTT connection, directories, worker
  count, ...) **needs a restart**: it keeps its running value, and the log line
  names each such key, so ``runtime.settings`` always shows what is in effect.
- New recipes are built into Inspectors before anything is swapped; the
  pipeline looks its Inspector up per frame, so the next frame after the reload
  is judged by the new recipe.
- A reference store with a ``reload()`` method is asked to re-read
  ``references_dir`` (reference files copied in by hand), in the worker pool.

The daemon calls ``await reloader.reload()`` from its SIGHUP handler; hooks
(``on_applied``) let it apply its own live settings (e.g. the watchdog limit).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from edged.config import Settings, format_validation_error, load_settings
from edged.core.errors import ConfigError, EdgedError
from edged.recipes.inspection import Inspector
from edged.recipes.validate import validate_settings
from edged.runtime.contracts import RereadableReferences
from edged.runtime.sdnotify import Notifier
from edged.runtime.shared import Runtime

log = logging.getLogger("edged.reload")

# Fields of a section that take effect live (the rest of the section needs a restart).
# ``None`` means the whole section is live. Recipes and ``cameras.<id>.recipe`` are
# handled on their own (see plan_reload).
LIVE_FIELDS: Mapping[str, tuple[str, ...] | None] = {
    "logging": None,
    "http": ("api_key", "api_key_file", "default_recipe"),
    "pipeline": ("watchdog_stall_s",),
}

ChangeKind = Literal["added", "removed", "changed"]


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """One key that differs between the running and the new configuration."""

    path: str
    kind: ChangeKind
    live: bool

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "live": self.live}


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """What a reload changes; ``applied`` is the configuration that will run."""

    changes: tuple[ConfigChange, ...]
    applied: Settings
    camera_recipes: Mapping[str, str] = field(default_factory=dict)
    kept_recipes: tuple[str, ...] = ()

    @property
    def live(self) -> tuple[str, ...]:
        return tuple(c.path for c in self.changes if c.live)

    @property
    def restart(self) -> tuple[str, ...]:
        return tuple(c.path for c in self.changes if not c.live)

    @property
    def recipes_changed(self) -> tuple[str, ...]:
        """Recipes added or changed (removed ones are not listed)."""
        return tuple(
            c.path.split(".", 1)[1]
            for c in self.changes
            if c.path.startswith("recipes.") and c.kind != "removed"
        )

    def summary(self) -> str:
        """One line for the log: what applied live and what waits for a restart."""
        if not self.changes:
            return "no changes"
        parts = []
        if self.live:
            parts.append("applied live: " + ", ".join(_describe(c) for c in self.changes if c.live))
        if self.restart:
            parts.append(
                "needs a restart (running values kept): "
                + ", ".join(_describe(c) for c in self.changes if not c.live)
            )
        if self.kept_recipes:
            parts.append(
                "recipes kept until restart (a running camera uses them): "
                + ", ".join(self.kept_recipes)
            )
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": [c.to_dict() for c in self.changes],
            "live": list(self.live),
            "restart": list(self.restart),
            "camera_recipes": dict(self.camera_recipes),
            "kept_recipes": list(self.kept_recipes),
        }


def _describe(change: ConfigChange) -> str:
    return change.path if change.kind == "changed" else f"{change.path} ({change.kind})"


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    """The result of one reload: applied (with its plan) or rejected (with errors)."""

    applied: bool
    path: str
    plan: ReloadPlan | None = None
    errors: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "path": self.path,
            "plan": self.plan.to_dict() if self.plan is not None else None,
            "errors": list(self.errors),
        }


# --------------------------------------------------------------------------- comparing


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, sub in value.items():
            _flatten(sub, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value


def _leaf_changes(old: Any, new: Any, prefix: str) -> list[tuple[str, ChangeKind]]:
    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    _flatten(old, prefix, a)
    _flatten(new, prefix, b)
    out: list[tuple[str, ChangeKind]] = []
    for key in sorted(a.keys() | b.keys()):
        if key not in b:
            out.append((key, "removed"))
        elif key not in a:
            out.append((key, "added"))
        elif a[key] != b[key]:
            out.append((key, "changed"))
    return out


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


def diff_settings(old: Settings, new: Settings) -> tuple[ConfigChange, ...]:
    """Every key that differs, classified live or restart (see the module doc)."""
    changes: list[ConfigChange] = []
    # Recipes: one entry per recipe (their inner keys all reload together).
    for name in sorted(old.recipes.keys() | new.recipes.keys()):
        if name not in new.recipes:
            changes.append(ConfigChange(f"recipes.{name}", "removed", True))
        elif name not in old.recipes:
            changes.append(ConfigChange(f"recipes.{name}", "added", True))
        elif old.recipes[name] != new.recipes[name]:
            changes.append(ConfigChange(f"recipes.{name}", "changed", True))
    # Cameras: the recipe of a running camera is live; anything else is a restart.
    for cam in sorted(old.cameras.keys() | new.cameras.keys()):
        if cam not in new.cameras:
            changes.append(ConfigChange(f"cameras.{cam}", "removed", False))
        elif cam not in old.cameras:
            changes.append(ConfigChange(f"cameras.{cam}", "added", False))
        else:
            for path, kind in _leaf_changes(
                _dump(old.cameras[cam]), _dump(new.cameras[cam]), f"cameras.{cam}"
            ):
                changes.append(ConfigChange(path, kind, path == f"cameras.{cam}.recipe"))
    # Every other section, leaf by leaf.
    old_rest = _dump(old)
    new_rest = _dump(new)
    for section in sorted(old_rest.keys() | new_rest.keys()):
        if section in ("recipes", "cameras"):
            continue
        live_fields = LIVE_FIELDS.get(section, ())
        for path, kind in _leaf_changes(old_rest.get(section), new_rest.get(section), section):
            top = path.split(".")[1] if "." in path else ""
            live = section in LIVE_FIELDS and (live_fields is None or top in live_fields)
            changes.append(ConfigChange(path, kind, live))
    return tuple(changes)


def plan_reload(
    old: Settings, new: Settings, *, in_use: Mapping[str, str] | None = None
) -> ReloadPlan:
    """Compare ``old`` (running) and ``new``; build the settings that will run.

    The applied settings are ``old`` with every live change of ``new`` taken
    over. A recipe that ``new`` removes but a running camera still uses (by its
    config, or ``in_use``: camera -> recipe it runs now, e.g. switched by an MQTT
    command) is kept until a restart, so no frame meets a missing recipe.
    """
    changes = diff_settings(old, new)
    cameras = {}
    camera_recipes: dict[str, str] = {}
    for cam_id, cam in old.cameras.items():
        target = new.cameras.get(cam_id)
        if target is not None and target.recipe != cam.recipe:
            cameras[cam_id] = cam.model_copy(update={"recipe": target.recipe})
            camera_recipes[cam_id] = target.recipe
        else:
            cameras[cam_id] = cam
    recipes = dict(new.recipes)
    running = {c.recipe for c in cameras.values()} | {
        r for cam, r in (in_use or {}).items() if cam not in camera_recipes and r in old.recipes
    }
    kept = sorted(running - recipes.keys())
    for name in kept:
        recipes[name] = old.recipes[name]
    update: dict[str, Any] = {"recipes": recipes, "cameras": cameras}
    for section, live_fields in LIVE_FIELDS.items():
        new_section = getattr(new, section)
        if live_fields is None:
            update[section] = new_section
        else:
            fields = {f: getattr(new_section, f) for f in live_fields}
            update[section] = getattr(old, section).model_copy(update=fields)
    applied = old.model_copy(update=update)
    return ReloadPlan(changes, applied, camera_recipes, tuple(kept))


# --------------------------------------------------------------------------- applying

Hook = Callable[[ReloadPlan], Awaitable[None] | None]


class Reloader:
    """Applies reloads of ``config_path`` to ``runtime`` (one at a time)."""

    def __init__(
        self,
        runtime: Runtime,
        config_path: str | os.PathLike[str],
        *,
        notifier: Notifier | None = None,
        on_applied: Sequence[Hook] = (),
        ready_status: Callable[[], str] | None = None,
    ) -> None:
        self.runtime = runtime
        self.config_path = Path(config_path)
        self._notifier = notifier or Notifier(None)
        self._hooks = list(on_applied)
        self._ready_status = ready_status
        self._lock = asyncio.Lock()

    def add_hook(self, hook: Hook) -> None:
        self._hooks.append(hook)

    async def reload(self) -> ReloadOutcome:
        """Load, validate and apply the config file; never raises for a bad file."""
        async with self._lock:
            self._notifier.reloading("reloading configuration")
            try:
                outcome = await self._reload()
            finally:
                status = self._ready_status() if self._ready_status is not None else None
                self._notifier.ready(status)
            metrics = self.runtime.metrics
            metrics.config_reloads.labels("applied" if outcome.applied else "rejected").inc()
            metrics.config_last_reload_successful.set(1 if outcome.applied else 0)
            return outcome

    async def _reload(self) -> ReloadOutcome:
        path = str(self.config_path)
        try:
            new = load_settings(self.config_path)
        except ConfigError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                return self._reject(path, format_validation_error(cause))
            return self._reject(path, [" ".join(str(exc).split())])
        try:
            validate_settings(new)  # check types, options, limit paths
        except ConfigError as exc:
            return self._reject(path, str(exc).splitlines())
        old = self.runtime.settings
        in_use = {cam: control.recipe for cam, control in self.runtime.cameras.items()}
        plan = plan_reload(old, new, in_use=in_use)
        try:
            # A safety net: the merged settings must still be a valid whole.
            Settings.model_validate(plan.applied.model_dump())
        except ValidationError as exc:
            return self._reject(path, format_validation_error(exc))
        inspectors: dict[str, Inspector] = {}
        for name, recipe in plan.applied.recipes.items():
            current = self.runtime.inspectors.get(name)
            if current is not None and current.recipe == recipe:
                inspectors[name] = current
                continue
            try:
                inspectors[name] = Inspector(name, recipe)
            except (EdgedError, ValueError) as exc:
                return self._reject(path, [f"recipes.{name}: {exc}"])
        # Nothing can fail from here on: swap, then tell the components.
        self.runtime.inspectors = inspectors
        self.runtime.settings = plan.applied
        if plan.applied.logging != old.logging:
            from edged.runtime.logs import setup_logging

            setup_logging(plan.applied.logging)
        for cam_id, target in plan.camera_recipes.items():
            control = self.runtime.cameras.get(cam_id)
            if control is not None and control.recipe != target:
                try:
                    await control.set_recipe(target)
                except EdgedError as exc:
                    log.error(
                        "reload: camera %s cannot switch to recipe %s: %s", cam_id, target, exc
                    )
        await self._reload_references()
        for hook in self._hooks:
            try:
                result = hook(plan)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("reload: a component failed to apply the new settings")
        level = logging.WARNING if plan.restart else logging.INFO
        log.log(level, "config reloaded from %s: %s", path, plan.summary())
        return ReloadOutcome(True, path, plan)

    async def _reload_references(self) -> None:
        """Ask the reference store to re-read its directory, when it can (``reload()``)."""
        store = self.runtime.references
        if not isinstance(store, RereadableReferences):
            return
        try:
            await self.runtime.pool.run(store.reload)
        except Exception:
            log.exception("reload: the reference store failed to re-read its directory")

    def _reject(self, path: str, errors: Sequence[str]) -> ReloadOutcome:
        log.error(
            "config reload from %s rejected, the running config stays: %s",
            path,
            "; ".join(errors),
        )
        return ReloadOutcome(False, path, None, tuple(errors))
