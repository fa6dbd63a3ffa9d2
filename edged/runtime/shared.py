"""Runtime: the live objects the daemon built, shared by the pipeline, HTTP and MQTT.

The daemon (composition root) builds one Runtime; ``edged analyze`` and tests
build one without cameras. Handlers reach it through ``app[RUNTIME]``.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from edged.checks import CheckContext
from edged.config import Settings
from edged.core.errors import NotFoundError
from edged.core.result import Result
from edged.models import SessionOptions
from edged.models.repository import ModelRepository
from edged.recipes.inspection import Inspection, Inspector
from edged.runtime.contracts import ReferenceProvider, ResultSink
from edged.runtime.failures import FailureRing
from edged.runtime.metrics import Metrics
from edged.runtime.rates import VerdictRates
from edged.runtime.workers import WorkerPool
from edged.sources.base import SourceState


class CameraControl(Protocol):
    """What HTTP and MQTT may do with a live camera line (the daemon implements it)."""

    camera: str

    @property
    def recipe(self) -> str: ...

    def source_state(self) -> SourceState: ...

    def source_details(self) -> dict[str, Any]: ...

    def last_image(self) -> np.ndarray | None: ...

    async def trigger(self) -> None: ...

    @property
    def data(self) -> str | None: ...

    def set_data(self, data: str | None) -> None: ...

    async def set_recipe(self, recipe: str) -> None: ...

    async def teach(self, recipe: str, frames: int, *, activate: bool = True) -> list[str]: ...

    async def activate_reference(self, recipe: str, version: str) -> str: ...


class RecentResults:
    """The last ``size`` results per camera, newest last (for HTTP and state)."""

    def __init__(self, size: int = 50) -> None:
        self._size = size
        self._by_camera: dict[str, collections.deque[Result]] = {}

    def add(self, result: Result) -> None:
        self._by_camera.setdefault(result.camera, collections.deque(maxlen=self._size)).append(
            result
        )

    def latest(self, camera: str, n: int = 1) -> list[Result]:
        items = self._by_camera.get(camera)
        return list(items)[-n:] if items else []

    def cameras(self) -> list[str]:
        return sorted(self._by_camera)


@dataclass
class Health:
    """Readiness of each component; ``/readyz`` is 200 only when all are ready."""

    components: dict[str, bool] = field(default_factory=dict)
    started_monotonic: float = field(default_factory=time.monotonic)

    def set(self, name: str, ready: bool) -> None:
        self.components[name] = ready

    @property
    def ready(self) -> bool:
        return bool(self.components) and all(self.components.values())


@dataclass
class Runtime:
    """Live objects shared by every component."""

    settings: Settings
    metrics: Metrics
    pool: WorkerPool
    inspectors: dict[str, Inspector]
    references: ReferenceProvider | None = None
    cameras: dict[str, CameraControl] = field(default_factory=dict)
    results: RecentResults = field(default_factory=RecentResults)
    verdicts: VerdictRates = field(default_factory=VerdictRates)
    failures: FailureRing | None = None
    health: Health = field(default_factory=Health)
    publisher: ResultSink | None = None
    models: ModelRepository | None = None
    """The model repository (``models_dir``); made from the settings when not given."""

    def __post_init__(self) -> None:
        if self.models is None:
            self.models = ModelRepository(
                self.settings.models_path,
                options=SessionOptions(threads=self.settings.recognition.threads),
                keep_revisions=self.settings.recognition.keep_revisions,
            )

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        pool: WorkerPool | None = None,
        references: ReferenceProvider | None = None,
    ) -> Runtime:
        """Validate every recipe into an Inspector; create metrics and the pool."""
        inspectors = {name: Inspector(name, rc) for name, rc in settings.recipes.items()}
        return cls(
            settings=settings,
            metrics=metrics or Metrics(),
            pool=pool or WorkerPool(settings.pipeline.workers),
            inspectors=inspectors,
            references=references,
        )

    def inspector(self, recipe: str | None) -> Inspector:
        """The Inspector for ``recipe`` (None: the HTTP default recipe)."""
        name = recipe or self.settings.http_recipe
        if name is None or name not in self.inspectors:
            msg = f"recipe: expected one of {sorted(self.inspectors)}, got {name!r}"
            raise NotFoundError(msg)
        return self.inspectors[name]

    def camera(self, camera: str) -> CameraControl:
        if camera not in self.cameras:
            msg = f"camera: expected one of {sorted(self.cameras)}, got {camera!r}"
            raise NotFoundError(msg)
        return self.cameras[camera]

    def context(
        self, recipe: str, camera: str, *, inputs: Mapping[str, str] | None = None
    ) -> CheckContext:
        """What checks of ``recipe`` on ``camera`` may know; ``inputs`` are run-time
        values given with the image (see :class:`~edged.checks.CheckContext`)."""
        ref = None
        if self.references is not None and self.inspectors[recipe].needs_reference:
            ref = self.references.prepared(recipe, camera)
        return CheckContext(
            recipe=recipe, camera=camera, reference=ref, models=self.models, inputs=inputs or {}
        )

    async def analyze(
        self, image: np.ndarray, *, recipe: str | None = None, camera: str = "http"
    ) -> Inspection:
        """Inspect one image in the worker pool (HTTP analyze, ``edged analyze``)."""
        inspector = self.inspector(recipe)
        ctx = self.context(inspector.name, camera)
        return await self.pool.run(inspector.inspect, image, context=ctx)

    def camera_states(self) -> Mapping[str, SourceState]:
        return {cid: cam.source_state() for cid, cam in self.cameras.items()}
