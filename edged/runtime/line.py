"""A camera line: source -> bounded queue -> inspection in the pool -> ordered publish.

Three supervised tasks per camera:

* ``acquire:<cam>`` reads frames from the source and puts them on a bounded queue.
  When the queue is full a free-running line drops the *oldest* frame (counted,
  reason ``queue_full``); a triggered line (``on_full: block``) waits instead, so
  no part goes uninspected.
* ``inspect:<cam>`` takes frames in order and starts their inspection in the worker
  pool, keeping up to ``pipeline.workers`` in flight (bounded hand-over queue).
* ``emit:<cam>`` awaits those inspections *in frame order* and hands each Result to
  the sink (the durable outbox). A result is only forgotten once the sink took it;
  if the sink fails, the emit task is restarted and the same result goes again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edged.config import CameraConfig
from edged.core.errors import EdgedError, InputError, NotFoundError
from edged.core.frames import Frame
from edged.core.result import FrameInfo, Result, iso_utc
from edged.imaging import pixfmt
from edged.imaging.render import annotate, encode_jpeg
from edged.recipes.inspection import Inspection, build_result, error_inspection
from edged.runtime.contracts import (
    ConfirmableReferences,
    ImageSink,
    ReferenceTeacher,
    ResultSink,
)
from edged.runtime.imagefeed import ImageFeed
from edged.runtime.metrics import DROP_DECODE, DROP_QUEUE_FULL
from edged.runtime.shared import Runtime
from edged.sources.base import EndOfStream, FrameSource, SourceState

log = logging.getLogger("edged.line")

REFERENCE_LOG_INTERVAL_S = 60.0


@dataclass
class _Processed:
    frame: Frame
    inspection: Inspection
    image: np.ndarray | None
    decode_ms: float
    annotated_jpeg: bytes | None = None
    image_jpeg: bytes | None = None  # for the MQTT image topic (scaled to its caps)
    done_ns: int = field(default_factory=time.time_ns)


@dataclass
class _TeachRequest:
    recipe: str
    count: int
    max_bytes: int
    images: list[np.ndarray] = field(default_factory=list)
    held_bytes: int = 0
    done: asyncio.Future[list[np.ndarray]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def _done_future(value: _Processed) -> asyncio.Future[_Processed]:
    fut: asyncio.Future[_Processed] = asyncio.get_running_loop().create_future()
    fut.set_result(value)
    return fut


class CameraLine:
    """One camera's pipeline. Implements :class:`edged.runtime.shared.CameraControl`."""

    def __init__(
        self,
        camera: str,
        cfg: CameraConfig,
        source: FrameSource,
        runtime: Runtime,
        sink: ResultSink | None,
        *,
        first_seq: int = 0,
        on_progress: Callable[[str], None] | None = None,
    ) -> None:
        self.camera = camera
        self.cfg = cfg
        self.source = source
        self.runtime = runtime
        self.sink = sink
        self._recipe = cfg.recipe
        self._inputs: dict[str, str] = {}
        self._seq = first_seq
        self.queue: asyncio.Queue[Frame] = asyncio.Queue(cfg.queue_size)
        self._handover: asyncio.Queue[tuple[Frame, asyncio.Future[_Processed]]] = asyncio.Queue(
            runtime.pool.workers
        )
        self._head: tuple[Frame, asyncio.Future[_Processed]] | None = None
        self._last_image: np.ndarray | None = None
        self._teach: list[_TeachRequest] = []
        self._on_progress = on_progress or (lambda _stage: None)
        self.intake_open = True
        self.started = False  # the source started once (readiness)
        self._ref_lock = threading.Lock()
        self._ref_failures = 0
        self._ref_reason: str | None = None
        self._ref_next_log = 0.0
        m = runtime.metrics
        self._m_grabbed = m.frames_grabbed.labels(camera)
        self._m_dropped_full = m.frames_dropped.labels(camera, DROP_QUEUE_FULL)
        self._m_dropped_decode = m.frames_dropped.labels(camera, DROP_DECODE)
        self._m_queue = m.queue_depth.labels(camera)
        self._m_last_frame = m.last_frame_time.labels(camera)
        self._image_sink = sink if isinstance(sink, ImageSink) else None
        image_cfg = runtime.settings.mqtt.image
        self._image_feed = (
            ImageFeed(image_cfg)
            if self._image_sink is not None and image_cfg.parts != "off"
            else None
        )

    # ------------------------------------------------------------ control API

    @property
    def recipe(self) -> str:
        return self._recipe

    def source_state(self) -> SourceState:
        return self.source.state()

    def source_details(self) -> dict[str, Any]:
        return self.source.details()

    def last_image(self) -> np.ndarray | None:
        return self._last_image

    async def trigger(self) -> None:
        await self.source.trigger()

    @property
    def data(self) -> str | None:
        """The run-time ``data`` checks of the following frames see (e.g. the lot
        code the parts must carry), set by MQTT commands; None when unset."""
        return self._inputs.get("data")

    def set_data(self, data: str | None) -> None:
        """Set (or with None or ``""`` clear) ``data`` for the frames inspected next."""
        self._inputs = {"data": data} if data else {}

    async def set_recipe(self, recipe: str) -> None:
        if recipe not in self.runtime.inspectors:
            msg = f"recipe: expected one of {sorted(self.runtime.inspectors)}, got {recipe!r}"
            raise NotFoundError(msg)
        if recipe != self._recipe:
            log.info("camera %s: recipe %s -> %s", self.camera, self._recipe, recipe)
            self._recipe = recipe
            self.publish_state()

    async def collect_images(
        self, recipe: str, count: int, *, timeout_s: float, max_bytes: int | None = None
    ) -> list[np.ndarray]:
        """The next ``count`` decoded images of this camera (for teach-in), holding at
        most ``max_bytes`` (default ``mqtt.teach_max_bytes``) of pixels."""
        if not 1 <= count <= 1000:
            msg = f"teach frames: expected 1..1000, got {count}"
            raise InputError(msg)
        budget = self.runtime.settings.mqtt.teach_max_bytes if max_bytes is None else max_bytes
        last = self._last_image
        if last is not None and last.nbytes * count > budget:
            msg = (
                f"teach frames: {count} frames of {last.nbytes} bytes exceed the teach memory "
                f"budget of {budget} bytes (mqtt.teach_max_bytes); expected at most "
                f"{max(1, budget // max(1, last.nbytes))}"
            )
            raise InputError(msg)
        req = _TeachRequest(recipe, count, max_bytes=budget)
        self._teach.append(req)
        try:
            return await asyncio.wait_for(asyncio.shield(req.done), timeout_s)
        except TimeoutError as exc:
            msg = (
                f"camera {self.camera!r}: expected {count} frames within {timeout_s:g} s "
                f"for teach-in, got {len(req.images)}"
            )
            raise InputError(msg) from exc
        finally:
            if req in self._teach:
                self._teach.remove(req)

    async def teach(self, recipe: str, frames: int, *, activate: bool = True) -> list[str]:
        """Store the next ``frames`` images as a reference version for ``recipe``; with
        ``activate=False`` it is stored pending (see :meth:`activate_reference`)."""
        store = self.runtime.references
        if not isinstance(store, ReferenceTeacher):
            msg = "no reference store is configured"
            raise EdgedError(msg)
        images = await self.collect_images(recipe, frames, timeout_s=max(10.0, frames * 5.0))
        teach = functools.partial(store.teach, activate=activate)
        info = await self.runtime.pool.run(teach, recipe, self.camera, images)
        return [str(info)]

    async def activate_reference(self, recipe: str, version: str) -> str:
        """Make a pending (taught, not yet active) reference version current."""
        store = self.runtime.references
        if not isinstance(store, ConfirmableReferences):
            msg = "no reference store with pending versions is configured"
            raise EdgedError(msg)
        active = await self.runtime.pool.run(store.activate_pending, recipe, self.camera, version)
        log.info("camera %s: reference %s for recipe %s confirmed", self.camera, active, recipe)
        return str(active)

    def state_dict(self) -> dict[str, Any]:
        st = self.source.state()
        return {
            "camera": self.camera,
            "connected": st.connected,
            "fps": st.fps,
            "frames": st.frames,
            "reconnects": st.reconnects,
            "dropped": st.dropped,
            "last_error": st.last_error,
            "device": st.device,
            "recipe": self._recipe,
            "queue": self.queue.qsize(),
            "ts": iso_utc(time.time_ns()),
        }

    def publish_state(self) -> None:
        if self.sink is not None:
            self.sink.set_state(self.camera, self.state_dict())

    # ------------------------------------------------------------ tasks

    async def acquire(self) -> None:
        """Supervised: source -> queue. Raises on source faults (the supervisor restarts)."""
        await self.source.start()
        self.started = True
        self.publish_state()
        try:
            while self.intake_open:
                try:
                    frame = await self.source.read()
                except EndOfStream as exc:
                    log.info("camera %s: %s", self.camera, exc)
                    return
                if not self.intake_open:
                    break
                self._m_grabbed.inc()
                self._m_last_frame.set(frame.host_ts_ns / 1e9)
                await self._enqueue(frame)
        finally:
            await self.source.stop()
            self.publish_state()

    async def _enqueue(self, frame: Frame) -> None:
        if self.cfg.on_full == "block":
            await self.queue.put(frame)
        else:
            while self.queue.full():
                old = self.queue.get_nowait()
                self.queue.task_done()
                self._m_dropped_full.inc()
                log.debug("camera %s: queue full, dropped frame %d", self.camera, old.seq)
            self.queue.put_nowait(frame)
        self._m_queue.set(self.queue.qsize())

    async def inspect(self) -> None:
        """Supervised: queue -> pool, up to ``workers`` in flight, order kept."""
        while True:
            frame = await self.queue.get()
            self._m_queue.set(self.queue.qsize())
            fut = asyncio.ensure_future(self.runtime.pool.run(self._process, frame, self._recipe))
            await self._handover.put((frame, fut))
            self.queue.task_done()

    async def emit(self) -> None:
        """Supervised: in-order results -> sink. Retries the same result after a crash."""
        while True:
            if self._head is None:
                self._head = await self._handover.get()
            frame, fut = self._head
            try:
                processed = await fut
            except Exception as exc:
                # A bug in decode/inspect must not wedge the line on one frame:
                # the frame gets an ``error`` verdict and the line moves on.
                log.exception("camera %s: inspecting frame %d failed", self.camera, frame.seq)
                reason = f"internal error: {type(exc).__name__}: {exc}"
                processed = _Processed(frame, error_inspection(self._recipe, reason), None, 0.0)
                self._head = (frame, _done_future(processed))
            result = self._to_result(processed)
            t0 = time.perf_counter()
            if self.sink is not None:
                await self.sink.publish_result(result)
            self.runtime.metrics.stage_seconds.labels(self.camera, "publish").observe(
                time.perf_counter() - t0
            )
            self._head = None
            self._handover.task_done()
            self._seq += 1
            self.runtime.results.add(result)
            self.runtime.verdicts.add(self.camera, result.verdict)
            self.runtime.metrics.results.labels(self.camera, result.recipe, result.verdict).inc()
            if processed.annotated_jpeg is not None:
                await self._keep_failure(result, processed.annotated_jpeg)
            if processed.image_jpeg is not None and self._image_sink is not None:
                sent = self._image_sink.publish_image(self.camera, processed.image_jpeg)
                self._count_image("sent" if sent else "not_connected")
            self._on_progress("emit")

    def _count_image(self, outcome: str) -> None:
        self.runtime.metrics.mqtt_images.labels(self.camera, outcome).inc()

    async def _keep_failure(self, result: Result, jpeg: bytes) -> None:
        """Put a failed part in the on-disk ring (a disk fault is logged, never fatal)."""
        ring = self.runtime.failures
        if ring is None:
            return
        try:
            await asyncio.to_thread(ring.add, result, jpeg)
        except OSError as exc:  # the same text each time: the log's repeat window applies
            log.error("camera %s: failed parts cannot be kept: %s", self.camera, exc.strerror)
        except ValueError as exc:
            log.error("camera %s: failed part not kept: %s", self.camera, exc)

    def pending(self) -> int:
        """Frames accepted but not yet handed to the sink."""
        return self.queue.qsize() + self._handover.qsize() + (self._head is not None)

    async def drain(self) -> None:
        """Wait until every accepted frame's result reached the sink."""
        await self.queue.join()
        await self._handover.join()

    # ------------------------------------------------------------ worker side

    def _process(self, frame: Frame, recipe: str) -> _Processed:
        """Runs in a worker thread: decode, inspect."""
        waited_s = max(0.0, (time.time_ns() - frame.host_ts_ns) / 1e9)
        self.runtime.metrics.stage_seconds.labels(self.camera, "queue").observe(waited_s)
        t0 = time.perf_counter()
        try:
            image = pixfmt.decode(
                frame, demosaic=self.cfg.demosaic, bayer_pattern=self.cfg.bayer_pattern
            )
        except EdgedError as exc:
            self._m_dropped_decode.inc()
            reason = f"decode: {exc}"
            return _Processed(frame, error_inspection(recipe, reason), None, 0.0)
        decode_ms = (time.perf_counter() - t0) * 1000.0
        self._last_image = image
        inspector = self.runtime.inspectors[recipe]
        try:
            context = self.runtime.context(recipe, self.camera, inputs=self._inputs)
        except EdgedError as exc:  # e.g. a damaged reference on disk
            reason = f"reference for recipe {recipe!r}, camera {self.camera!r}: {exc}"
            self._reference_failed(reason)
            return _Processed(frame, error_inspection(recipe, reason), image, decode_ms)
        self._reference_ok()
        inspection = inspector.inspect(image, context=context)
        self.runtime.metrics.frames_inspected.labels(self.camera, recipe).inc()
        stage = self.runtime.metrics.stage_seconds
        stage.labels(self.camera, "decode").observe(decode_ms / 1000.0)
        for check, ms in inspection.timings_ms.items():
            stage.labels(self.camera, f"check.{check}").observe(ms / 1000.0)
        keep = inspection.verdict == "fail" and self.runtime.failures is not None
        feed = self._image_feed is not None and self._image_feed.wants(inspection.verdict)
        jpeg = image_jpeg = None
        if keep or feed:
            annotated = annotate(image, inspection.regions)
            if keep:
                quality = self.runtime.settings.failures.jpeg_quality
                jpeg = encode_jpeg(annotated, quality=quality)
            if feed and self._image_feed is not None:
                image_jpeg = self._image_feed.encode(annotated)
                if image_jpeg is None:
                    self._count_image("too_large")
        return _Processed(frame, inspection, image, decode_ms, jpeg, image_jpeg)

    def _reference_failed(self, reason: str) -> None:
        """Log an unusable reference once (again when the reason changes, or once a
        minute with the count), not once per frame."""
        with self._ref_lock:
            self._ref_failures += 1
            now = time.monotonic()
            if reason == self._ref_reason and now < self._ref_next_log:
                return
            count, self._ref_failures = self._ref_failures, 0
            self._ref_reason = reason
            self._ref_next_log = now + REFERENCE_LOG_INTERVAL_S
        log.error(
            "camera %s: %s — frames get an error verdict until it is fixed (%d frame(s) "
            "since the last such line)",
            self.camera,
            reason,
            count,
        )

    def _reference_ok(self) -> None:
        if self._ref_reason is None:
            return
        with self._ref_lock:
            reason, self._ref_reason = self._ref_reason, None
            count, self._ref_failures = self._ref_failures, 0
            self._ref_next_log = 0.0
        if reason is not None:
            log.warning(
                "camera %s: the reference is usable again (%d more frame(s) had an error verdict)",
                self.camera,
                count,
            )

    def _to_result(self, p: _Processed) -> Result:
        f = p.frame
        if p.image is not None:
            self._feed_teach(p.image)
        queued_ms = max(0.0, (p.done_ns - f.host_ts_ns) / 1e6)
        info = FrameInfo(
            width=f.width,
            height=f.height,
            pixel_format=f.pixel_format,
            seq=f.seq,
            host_ts=iso_utc(f.host_ts_ns),
            device_ts_ns=f.device_ts_ns,
            frame_id=f.frame_id,
        )
        return build_result(
            p.inspection,
            node=self.runtime.settings.node_id,
            camera=self.camera,
            seq=self._seq,
            frame=info,
            timings_ms={"decode": round(p.decode_ms, 3), "frame_to_result": round(queued_ms, 3)},
            ground_truth=f.ground_truth,
        )

    def _feed_teach(self, image: np.ndarray) -> None:
        for req in list(self._teach):
            if req.done.done():
                continue
            if req.held_bytes + image.nbytes > req.max_bytes:
                msg = (
                    f"teach frames: {req.count} frames of {image.nbytes} bytes exceed the "
                    f"teach memory budget of {req.max_bytes} bytes (mqtt.teach_max_bytes); "
                    f"stopped after {len(req.images)}"
                )
                req.images.clear()
                req.done.set_exception(InputError(msg))
                continue
            req.images.append(image)
            req.held_bytes += image.nbytes
            if len(req.images) >= req.count:
                req.done.set_result(req.images)
