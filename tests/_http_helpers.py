"""Helpers for the HTTP tests: a small real check, a Runtime, a real server in a thread.

The check (``dark_spots``: threshold + connected components) stands in for the
library checks until they land on main; it is a real CheckSpec run by the real
Inspector. The server is edged's real aiohttp app on a free loopback port, run by
its own event loop in a background thread so synchronous clients (the PEKAT SDK,
``requests``, ``http.client``) can drive it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from aiohttp import web
from pydantic import Field

from edged.checks import CheckContext, CheckOptions, CheckOutcome, CheckSpec, Region
from edged.config import HttpConfig, RecipeConfig, Settings
from edged.core.errors import NotFoundError
from edged.http import create_app
from edged.recipes.inspection import Inspector
from edged.runtime.metrics import Metrics
from edged.runtime.shared import Runtime
from edged.runtime.workers import WorkerPool

# --------------------------------------------------------------------------- the check


@dataclass(frozen=True, slots=True)
class DarkSpots:
    """Dark spots found: boxes ``(x, y, width, height)``, areas and mean darkness."""

    boxes_xywh: tuple[tuple[int, int, int, int], ...]
    areas_px: tuple[int, ...]
    darkness: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"count": len(self.boxes_xywh), "area_px": int(sum(self.areas_px))}


def find_dark_spots(image: np.ndarray, *, threshold: int, min_area_px: int) -> DarkSpots:
    """Connected regions darker than ``threshold``.

    image: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR.
    """
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    mask = (grey < threshold).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    boxes, areas, dark = [], [], []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if area < min_area_px:
            continue
        boxes.append((x, y, w, h))
        areas.append(area)
        dark.append(float(1.0 - grey[labels == i].mean() / max(threshold, 1)))
    return DarkSpots(tuple(boxes), tuple(areas), tuple(dark))


class SpotOptions(CheckOptions):
    threshold: int = Field(default=110, ge=1, le=255)
    min_area_px: int = Field(default=4, ge=1)
    heatmap: bool = False
    delay_s: float = Field(default=0.0, ge=0, le=10, description="test hook: a slow check")


def _run_spots(image: np.ndarray, options: SpotOptions, context: CheckContext) -> CheckOutcome:
    if options.delay_s:
        time.sleep(options.delay_s)
    found = find_dark_spots(image, threshold=options.threshold, min_area_px=options.min_area_px)
    regions = tuple(
        Region(x, y, w, h, "spot", "dark_spots", score=round(d, 4), area_px=a)
        for (x, y, w, h), a, d in zip(found.boxes_xywh, found.areas_px, found.darkness, strict=True)
    )
    heat = None
    if options.heatmap:
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        heat = np.clip((options.threshold - grey.astype(np.float32)) / options.threshold, 0, 1)
    return CheckOutcome(figures=found.to_dict(), regions=regions, heatmap=heat)


SPOTS = CheckSpec("dark_spots", SpotOptions, _run_spots, description="dark spots (tests)")
SPECS = {SPOTS.name: SPOTS}

RECIPES: dict[str, dict[str, Any]] = {
    "spots": {"checks": {"dark_spots": {}}, "limits": ["dark_spots.count <= 0"]},
    "spots_heat": {
        "checks": {"dark_spots": {"heatmap": True}},
        "limits": ["dark_spots.count <= 0"],
    },
    "slow": {"checks": {"dark_spots": {"delay_s": 0.6}}, "limits": ["dark_spots.count <= 0"]},
}


def make_runtime(
    *,
    recipes: Mapping[str, Mapping[str, Any]] | None = None,
    references: Any = None,
    workers: int = 2,
    **http: Any,
) -> Runtime:
    """A Runtime with the test recipes (built on ``dark_spots``) and ``http`` settings."""
    recipes = dict(recipes or RECIPES)
    configs = {name: RecipeConfig.model_construct(**rc) for name, rc in recipes.items()}
    settings = Settings(recipes=configs, http=HttpConfig(**http))
    inspectors = {name: Inspector(name, rc, specs=SPECS) for name, rc in configs.items()}
    return Runtime(
        settings=settings,
        metrics=Metrics(),
        pool=WorkerPool(workers),
        inspectors=inspectors,
        references=references,
    )


# --------------------------------------------------------------------------- references


class MemoryStore:
    """A reference store in memory (ReferenceAdmin + ReferenceProvider)."""

    def __init__(self) -> None:
        self.versions: dict[tuple[str, str], list[tuple[str, list[np.ndarray]]]] = {}
        self.active: dict[tuple[str, str], str] = {}

    def prepared(self, recipe: str, camera: str) -> Any | None:
        return None

    def entries(self) -> Sequence[Mapping[str, Any]]:
        return [
            {
                "recipe": r,
                "camera": c,
                "active": self.active.get((r, c)),
                "versions": [
                    {"version": v, "created": "2026-01-01T00:00:00.000Z", "images": len(imgs)}
                    for v, imgs in vs
                ],
            }
            for (r, c), vs in sorted(self.versions.items())
        ]

    def teach(
        self, recipe: str, camera: str, images: Sequence[np.ndarray], *, activate: bool = True
    ) -> str:
        vs = self.versions.setdefault((recipe, camera), [])
        version = str(len(vs) + 1)
        vs.append((version, list(images)))
        if activate:
            self.active[(recipe, camera)] = version
        return version

    def image(self, recipe: str, camera: str, version: int, index: int = 0) -> np.ndarray:
        for v, images in self.versions.get((recipe, camera), []):
            if v == str(version) and 0 <= index < len(images):
                return images[index]
        msg = f"reference image: none for {recipe!r} / {camera!r} v{version} #{index}"
        raise NotFoundError(msg)

    def rollback(self, recipe: str, camera: str, version: str | None = None) -> str:
        vs = [v for v, _ in self.versions.get((recipe, camera), [])]
        if version is None:
            i = vs.index(self.active[(recipe, camera)]) if vs else 0
            if i == 0:
                msg = "version: expected an older version to roll back to, got none"
                raise NotFoundError(msg)
            version = vs[i - 1]
        if version not in vs:
            msg = f"version: expected one of {vs}, got {version!r}"
            raise NotFoundError(msg)
        self.active[(recipe, camera)] = version
        return version

    def delete(self, recipe: str, camera: str, version: str | None = None) -> None:
        key = (recipe, camera)
        if key not in self.versions:
            msg = f"references: none for {recipe!r} / {camera!r}"
            raise NotFoundError(msg)
        if version is None:
            del self.versions[key]
            self.active.pop(key, None)
            return
        self.versions[key] = [(v, i) for v, i in self.versions[key] if v != version]


# --------------------------------------------------------------------------- images


BG = 200
SPOT_XYWH = (24, 16, 8, 8)  # on the 8×8 JPEG block grid, so JPEG keeps its edges


def part_image(
    *, defect: bool, size_wh: tuple[int, int] = (64, 48), grey: bool = False
) -> np.ndarray:
    """A light part (grey 200 + mild texture) with, if ``defect``, one dark 8×8 spot."""
    w, h = size_wh
    rng = np.random.default_rng(7)
    img = np.full((h, w, 3), BG, np.uint8)
    img = (img.astype(np.int16) + rng.integers(-6, 7, img.shape)).astype(np.uint8)
    img[..., 0] = np.clip(img[..., 0].astype(np.int16) - 20, 0, 255)  # a bluish tint: B < G, R
    if defect:
        x, y, sw, sh = SPOT_XYWH
        img[y : y + sh, x : x + sw] = 20
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if grey else img


def png_bytes(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


def jpeg_bytes(image: np.ndarray, quality: int = 95) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


# --------------------------------------------------------------------------- server


class ServerThread:
    """edged's real HTTP app on ``127.0.0.1:<free port>``, served from a background loop.

    ``app_hook(app)`` may add routes before the server starts (benchmarks).
    """

    def __init__(
        self, runtime: Runtime, *, app_hook: Callable[[web.Application], None] | None = None
    ):
        self.runtime = runtime
        self._hook = app_hook
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="edged-test-http")
        self._runner: web.AppRunner | None = None
        self.app: web.Application | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, coro: Any) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(timeout=30)

    async def _start(self) -> None:
        app = self.app = create_app(self.runtime)
        if self._hook is not None:
            self._hook(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self.call(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.call(self._stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()
            self.runtime.pool.shutdown(wait=True)
