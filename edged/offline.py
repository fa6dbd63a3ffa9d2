"""Offline inspection for ``edged analyze``: image files in, Result JSON lines out."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import cv2
import numpy as np

from edged.checks import registry
from edged.config import RecipeConfig, Settings
from edged.errors import InputError
from edged.inspection import build_result, error_inspection
from edged.result import FrameInfo, iso_utc
from edged.runtime import Runtime

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


def read_image(path: Path, *, max_pixels: int) -> np.ndarray:
    """Read an image file as (H, W) uint8 grey or (H, W, 3) uint8 BGR."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        msg = f"{path}: expected a readable image file, got {exc.strerror or exc}"
        raise InputError(msg) from exc
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        msg = f"{path}: expected a PNG/JPEG/BMP/TIFF image, got {data.size} undecodable bytes"
        raise InputError(msg)
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(1.0, float(image.max())))
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.shape[0] * image.shape[1] > max_pixels:
        msg = f"{path}: expected at most {max_pixels} pixels, got {image.shape[1]}x{image.shape[0]}"
        raise InputError(msg)
    return image


async def analyze_files(
    settings: Settings,
    files: Sequence[Path],
    *,
    recipe: str | None,
    camera: str,
    references: Sequence[Path],
    out: TextIO,
    progress: TextIO | None,
) -> int:
    """Inspect each file; print one Result JSON per line. Returns how many did not pass."""
    runtime = Runtime.build(settings)
    if references:
        runtime.references = _offline_references(runtime, references, recipe, camera)
    inspector = runtime.inspector(recipe)
    not_passed = 0
    t_start = time.monotonic()
    try:
        for i, path in enumerate(files):
            t0 = time.time_ns()
            try:
                image = read_image(path, max_pixels=settings.http.max_pixels)
                inspection = await runtime.analyze(image, recipe=inspector.name, camera=camera)
                h, w = image.shape[:2]
                fmt = "Mono8" if image.ndim == 2 else "BGR8"
            except InputError as exc:
                inspection = error_inspection(inspector.name, str(exc))
                w = h = 1
                fmt = "unknown"
            info = FrameInfo(width=w, height=h, pixel_format=fmt, seq=i, host_ts=iso_utc(t0))
            result = build_result(
                inspection, node=settings.node_id, camera=camera, seq=i, frame=info
            )
            out.write(result.to_json() + "\n")
            out.flush()
            not_passed += result.verdict != "pass"
            if progress is not None:
                rate = (i + 1) / max(1e-9, time.monotonic() - t_start)
                progress.write(
                    f"\r[{i + 1}/{len(files)}] {path.name}: {result.verdict}  ({rate:.1f} img/s)"
                )
                progress.flush()
    finally:
        if progress is not None:
            progress.write("\n")
        runtime.pool.shutdown()
    return not_passed


def _offline_references(
    runtime: Runtime, paths: Sequence[Path], recipe: str | None, camera: str
) -> Any:
    """An in-memory reference provider built from ``--reference`` image files."""
    from edged import references

    images = [read_image(p, max_pixels=runtime.settings.http.max_pixels) for p in paths]
    return references.InMemoryReferences.from_images(images, recipes=runtime.settings.recipes)
