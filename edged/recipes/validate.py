"""Recipe validation against the check registry, wherever settings are loaded for use.

:mod:`edged.config` checks the shape of a recipe (its keys, that limits parse);
this module checks what needs the checks: every check type exists, its options are
valid, checks that share a prepared reference agree, and every limit addresses a
figure some check of that recipe produces. ``edged check-config``, ``edged run``,
``edged analyze``, ``edged teach`` and SIGHUP reload all go through
:func:`load_checked_settings` (or :func:`validate_settings`), so a typo in a limit
is refused at load time, naming the closest valid path, instead of failing every
part on the line.

Every problem is one line in the config-error format, ``key.path: message``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from edged.checks import ANY, ANY_KEY, CheckOptions, CheckSpec, registry
from edged.config import CameraConfig, RecipeConfig, Settings, load_settings
from edged.core.errors import ConfigError
from edged.core.limits import Limit, parse_limit
from edged.recipes.entries import NAME_RE, check_entries


def load_checked_settings(path: str | os.PathLike[str] | None, **overrides: Any) -> Settings:
    """:func:`edged.config.load_settings`, then :func:`validate_settings`.

    Raises ConfigError with one line per problem, each with its key path.
    """
    settings = load_settings(path, **overrides)
    validate_settings(settings)
    return settings


def validate_settings(settings: Settings) -> None:
    """Raise ConfigError listing every problem of every recipe (none: return)."""
    lines = [
        line for name, recipe in settings.recipes.items() for line in recipe_problems(name, recipe)
    ]
    if not lines:
        lines = frame_problems(settings)
    if lines:
        raise ConfigError("\n".join(lines))


def frame_size(cam: CameraConfig) -> tuple[int, int] | None:
    """The camera's frame size (width, height) when the configuration fixes it
    (synthetic, or GenICam ``Width``/``Height`` features), else None."""
    if cam.synthetic is not None:
        return cam.synthetic.width, cam.synthetic.height
    if cam.genicam is not None:
        w, h = cam.genicam.features.get("Width"), cam.genicam.features.get("Height")
        if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
            return w, h
    return None


def frame_problems(settings: Settings) -> list[str]:
    """Fixed check regions (an option ``region: {x, y, width, height}``) that do not fit
    the frames of a camera running that recipe, where the frame size is known."""
    lines = []
    known = registry()
    for cam_id, cam in settings.cameras.items():
        size = frame_size(cam)
        recipe = settings.recipes.get(cam.recipe)
        if size is None or recipe is None:
            continue
        w, h = size
        for entry in check_entries(recipe.checks):
            options = known[entry.type].options.model_validate(entry.options)
            r = getattr(options, "region", None)
            if r is not None and (r.x + r.width > w or r.y + r.height > h):
                lines.append(
                    f"recipes.{cam.recipe}.checks.{entry.name}.region: expected a box inside "
                    f"camera {cam_id!r}'s {w}x{h} frames, got x={r.x} y={r.y} "
                    f"width={r.width} height={r.height}"
                )
    return lines


def validate_recipe(name: str, recipe: RecipeConfig) -> None:
    """Raise ConfigError listing the problems of one recipe (none: return)."""
    lines = recipe_problems(name, recipe)
    if lines:
        raise ConfigError("\n".join(lines))


def recipe_problems(
    name: str, recipe: RecipeConfig, *, specs: Mapping[str, CheckSpec] | None = None
) -> list[str]:
    """The problems of recipe ``name``, one config-error line each (empty: valid)."""
    known = registry() if specs is None else specs
    key = f"recipes.{name}.checks"
    lines: list[str] = []
    figures: dict[str, tuple[str, ...]] = {}  # check name -> its declared figure paths
    by_type: dict[str, list[CheckOptions]] = {}
    earlier: list[str] = []
    for entry in check_entries(recipe.checks):
        if not NAME_RE.match(entry.name):
            lines.append(
                f"{key}.{entry.name}: expected a check name of letters, digits and _ not "
                f"starting with a digit (limits address it), got {entry.name!r}"
            )
        spec = known.get(entry.type)
        if spec is None:
            where = (
                f"{key}.{entry.name}.type" if "type" in (recipe.checks[entry.name] or {}) else key
            )
            lines.append(
                f"{where}: unknown check: expected one of {sorted(known)}, got {entry.type!r}"
            )
            continue
        figures[entry.name] = spec.figures
        try:
            validated = spec.options.model_validate(entry.options)
        except ValidationError as exc:
            lines.extend(_option_lines(f"{key}.{entry.name}", exc))
            continue
        by_type.setdefault(spec.name, []).append(validated)
        source = getattr(validated, "region_from", None)  # reads where an earlier check found
        if source is not None and source not in earlier:
            lines.append(
                f"{key}.{entry.name}.region_from: expected a check listed before it, "
                f"one of {earlier}, got {source!r}"
            )
        earlier.append(entry.name)
    for kind, all_options in by_type.items():
        prepare = known[kind].reference_params
        if prepare is not None:
            try:
                prepare(all_options)
            except ValueError as exc:
                lines.append(f"{key}: {exc}")
    with_model = sorted(k for k in by_type if known[k].reference_params is not None)
    if len(with_model) > 1:
        lines.append(
            f"{key}: checks of types {with_model} each need their own reference model, and "
            "a recipe and camera keep one: expected checks of one of these types per recipe "
            "(split them into two recipes)"
        )
    unknown = set(recipe.checks) - set(figures)  # already reported: their limits would be noise
    limits = [t for t in recipe.limits if t.strip().split(".", 1)[0] not in unknown]
    lines.extend(_limit_lines(name, limits, figures))
    return lines


def _option_lines(key: str, exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join((key, *(str(p) for p in err["loc"])))
        msg = err["msg"].removeprefix("Value error, ")
        out.append(f"{loc}: {msg} (got {err.get('input')!r})")
    return out


def _limit_lines(
    recipe: str, limits: Iterable[str], figures: Mapping[str, tuple[str, ...]]
) -> list[str]:
    valid = [f"{check}.{path}" for check, paths in figures.items() for path in paths]
    out = []
    for i, text in enumerate(limits):
        try:
            limit = parse_limit(text)
        except ValueError as exc:  # config refuses these first; kept for direct callers
            out.append(f"recipes.{recipe}.limits.{i}: {exc}")
            continue
        if any(matches(limit.path, tuple(v.split("."))) for v in valid):
            continue
        out.append(f"recipes.{recipe}.limits.{i}: {_unknown(recipe, limit, figures, valid)}")
    return out


def matches(path: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Whether a limit path addresses a declared figure (``*`` matches a list index,
    ``<name>`` any key)."""
    return len(path) == len(pattern) and all(
        p == q or (q == ANY and p.isdigit()) or q == ANY_KEY
        for p, q in zip(path, pattern, strict=True)
    )


def _unknown(
    recipe: str, limit: Limit, figures: Mapping[str, tuple[str, ...]], valid: list[str]
) -> str:
    head = f"limit {limit.text!r}: no check of recipe {recipe!r} produces {limit.name}"
    shown = [v.replace(f".{ANY}", ".0") for v in valid]
    close = difflib.get_close_matches(limit.name, shown, n=1, cutoff=0.6)
    if close:
        return f"{head} (did you mean `{close[0]}`?)"
    if limit.path[0] not in figures:
        return f"{head}: expected a path starting with one of its checks {sorted(figures)}"
    return f"{head}: expected one of {shown}"
