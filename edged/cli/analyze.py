"""Offline inspection for ``edged analyze``: image files in, Result JSON lines out."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from edged.checks import registry
from edged.config import RecipeConfig, Settings
from edged.core.errors import InputError
from edged.core.result import FrameInfo, iso_utc
from edged.imaging.imagefiles import read_image_file
from edged.recipes.inspection import build_result, error_inspection
from edged.references import InMemoryReferences, ReferenceStore
from edged.runtime.shared import Runtime

DEFAULT_RECIPE = "default"


def default_settings(*, with_reference: bool) -> Settings:
    """Settings for ``edged analyze`` without ``--config``: one recipe, every
    general-purpose check that is available, plus ``difference`` with a reference."""
    known = registry()
    checks: dict[str, dict[str, Any]] = {}
    limits: list[str] = []
    if "quality" in known:
        checks["quality"] = {}
        limits.append('quality.encoding == "OK"')
    if with_reference and "difference" in known:
        checks["difference"] = {}
        limits.append("difference.count == 0")
    return Settings(
        recipes={DEFAULT_RECIPE: RecipeConfig(checks=checks, limits=limits)},
        mqtt={"enabled": False},
        http={"enabled": False},
    )


async def analyze_files(
    settings: Settings,
    files: Sequence[Path],
    *,
    recipe: str | None,
    camera: str,
    references: Sequence[Path],
    out: TextIO,
    stored: bool = False,
    progress: TextIO | None,
) -> int:
    """Inspect each file; print one Result JSON per line. Returns how many did not pass.

    References: the ``references`` image files, else (``stored``) those stored under
    ``settings.references_dir`` for ``camera``, else none.
    """
    runtime = Runtime.build(settings)
    if references:
        runtime.references = _offline_references(runtime, references, recipe, camera)
    elif stored:
        # The references taught for ``camera`` (edged teach, the page, auto_teach).
        runtime.references = ReferenceStore(settings.references_dir, recipes=settings.recipes)
    inspector = runtime.inspector(recipe)
    not_passed = 0
    t_start = time.monotonic()
    tty = progress is not None and progress.isatty()
    try:
        for i, path in enumerate(files):
            t0 = time.time_ns()
            try:
                image = read_image_file(path, max_pixels=settings.http.max_pixels)
                inspection = await runtime.analyze(image, recipe=inspector.name, camera=camera)
                h, w = image.shape[:2]
                fmt = "Mono8" if image.ndim == 2 else "BGR8"
            except InputError as exc:
                inspection = error_inspection(inspector.name, str(exc))
                w = h = 1
                fmt = "unknown"
            info = FrameInfo(
                width=w, height=h, pixel_format=fmt, seq=i, host_ts=iso_utc(t0), source=str(path)
            )
            result = build_result(
                inspection, node=settings.node_id, camera=camera, seq=i, frame=info
            )
            out.write(result.to_json() + "\n")
            out.flush()
            not_passed += result.verdict != "pass"
            if progress is not None:
                rate = (i + 1) / max(1e-9, time.monotonic() - t_start)
                line = f"[{i + 1}/{len(files)}] {path.name}: {result.verdict}  ({rate:.1f} img/s)"
                # On a terminal one line updates in place; in a log, one line per image.
                progress.write(f"\r{line}" if tty else f"{line}\n")
                progress.flush()
    finally:
        if progress is not None and tty:
            progress.write("\n")
        runtime.pool.shutdown()
    return not_passed


def _offline_references(
    runtime: Runtime, paths: Sequence[Path], recipe: str | None, camera: str
) -> InMemoryReferences:
    """An in-memory reference provider built from ``--reference`` image files."""
    images = [read_image_file(p, max_pixels=runtime.settings.http.max_pixels) for p in paths]
    return InMemoryReferences.from_images(images, recipes=runtime.settings.recipes)
