"""The composition root: build every component from Settings, run, shut down cleanly.

Startup order: metrics and worker pool -> reference store -> publisher (starts even
when the broker is unreachable: results wait in the durable outbox) -> HTTP ->
camera lines. Shutdown (SIGTERM/SIGINT) reverses it within ``pipeline.shutdown_grace_s``:
stop intake, drain every accepted frame through inspection into the outbox, stop
the publisher (which flushes what the broker will take), stop HTTP, stop the pool.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import os
import signal
import time
from pathlib import Path

from aiohttp import web

from edged.config import CameraConfig, Settings
from edged.core.backoff import Backoff
from edged.core.errors import EdgedError
from edged.http import create_app, create_metrics_app
from edged.http._connections import ConnectionLimit, LimitedSite
from edged.references import ReferenceStore
from edged.runtime.autoteach import auto_teach, auto_teach_http
from edged.runtime.console import run_console_summary, under_systemd
from edged.runtime.contracts import ResultSink, SinkStats
from edged.runtime.failures import FailureRing
from edged.runtime.line import CameraLine
from edged.runtime.logs import flush_suppressed, run_summary_flusher
from edged.runtime.metrics import DROP_SHUTDOWN, Metrics
from edged.runtime.reload import Reloader, ReloadPlan
from edged.runtime.sdnotify import Notifier
from edged.runtime.shared import Runtime
from edged.runtime.status import summary
from edged.runtime.supervisor import RESTART_JITTER, Supervisor
from edged.runtime.watchdog import Heartbeat, Progress, StallDetector
from edged.sources.base import FrameSource
from edged.sources.factory import build_source

log = logging.getLogger("edged.daemon")

STATE_INTERVAL_S = 5.0
# READY=1 waits this long for every camera to deliver; then edged reports ready
# anyway (a camera that is down keeps reconnecting, and the status line says so).
READY_WAIT_S = 20.0
READINESS_INTERVAL_S = 0.5


class StartupError(EdgedError):
    """The daemon cannot start (port in use, unreadable state directory ...)."""


class Daemon:
    """Builds and runs edged. ``await Daemon(settings).run()`` returns the exit code."""

    def __init__(
        self,
        settings: Settings,
        *,
        sink: ResultSink | None = None,
        config_path: str | os.PathLike[str] | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        self.runtime = Runtime.build(settings)
        # systemd: READY/STATUS/STOPPING, and a watchdog fed by pipeline progress.
        self.notifier = notifier or Notifier.from_env()
        self.progress = Progress()
        self.heartbeat: Heartbeat | None = None
        self.reloader = (
            Reloader(
                self.runtime,
                config_path,
                notifier=self.notifier,
                on_applied=[self._on_reload],
                ready_status=self.status,
            )
            if config_path is not None
            else None
        )
        self._reloads = 0
        self.supervisor = Supervisor(
            backoff=Backoff(
                settings.pipeline.restart_backoff_min_s,
                settings.pipeline.restart_backoff_max_s,
                jitter=RESTART_JITTER,
            ),
            on_restart=self._on_restart,
            on_failed=self._on_failed,
        )
        self._sink_override = sink
        self.sink: ResultSink | None = None
        self.lines: dict[str, CameraLine] = {}
        self._runners: list[web.AppRunner] = []
        self.http_port: int | None = None
        self.metrics_port: int | None = None
        self._stop = asyncio.Event()
        self._started = False
        self.exit_code = 0

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Build and start every component. Raises StartupError when it cannot."""
        s = self.settings
        self.notifier.status("starting")
        for key, path in (("state_dir", s.state_dir), ("references_dir", s.references_dir)):
            _ensure_directory(key, path)
        store = _build_references(s)
        self.runtime.references = store
        self.runtime.failures = await asyncio.to_thread(_build_failures, s)
        self.sink = self._sink_override or await _build_publisher(self.runtime)
        self.runtime.publisher = self.sink
        self.runtime.health.set("publisher", True)
        durable = getattr(self.sink, "durable", None)
        if durable is not None:  # the MQTT publisher: not ready while results are not stored
            self.runtime.health.set("outbox", bool(durable))
        await self._start_http()
        for cam_id, cam_cfg in s.cameras.items():
            if not cam_cfg.enabled:
                continue
            await self.runtime.pool.run(
                auto_teach,
                store,
                cam_id,
                cam_cfg,
                needs_reference=self.runtime.inspectors[cam_cfg.recipe].needs_reference,
            )
            source = _build_source(cam_id, cam_cfg)
            first_seq = _first_seq(self.sink, cam_id)
            line = CameraLine(
                cam_id, cam_cfg, source, self.runtime, self.sink, first_seq=first_seq,
                on_progress=functools.partial(self.progress.tick, cam_id),
            )  # fmt: skip
            self.progress.watch(cam_id, line.pending)
            self.lines[cam_id] = line
            self.runtime.cameras[cam_id] = line
            self.supervisor.spawn(f"acquire:{cam_id}", line.acquire)
            self.supervisor.spawn(f"inspect:{cam_id}", line.inspect)
            self.supervisor.spawn(f"emit:{cam_id}", line.emit)
        http_recipe = s.http_recipe
        await self.runtime.pool.run(
            auto_teach_http,
            store,
            s,
            needs_reference=http_recipe is not None
            and self.runtime.inspectors[http_recipe].needs_reference,
        )
        self.supervisor.spawn("state", self._state_loop)
        self.runtime.metrics.workers_total.set(self.runtime.pool.workers)
        self._update_readiness()
        self.supervisor.spawn("readiness", self._readiness_loop)
        self.supervisor.spawn("log-summaries", run_summary_flusher)
        if not under_systemd(os.environ):  # there, STATUS= carries the summary
            self.supervisor.spawn(
                "console-summary", functools.partial(run_console_summary, self.runtime)
            )
        self._started = True
        await self._wait_cameras_up(READY_WAIT_S)
        log.info(
            "edged started: node %s, %d camera(s), %d recipe(s), http %s, mqtt %s",
            s.node_id, len(self.lines), len(s.recipes),
            f"{s.http.host}:{self.http_port}" if self.http_port is not None else "off",
            f"{s.mqtt.host}:{s.mqtt.port}" if s.mqtt.enabled else "off",
        )  # fmt: skip
        detector = StallDetector(
            self.progress, stall_s=s.pipeline.watchdog_stall_s, pool=self.runtime.pool
        )
        self.heartbeat = Heartbeat(
            self.notifier, detector, metrics=self.runtime.metrics, status=self.status
        )
        self.notifier.ready(self.status())
        self.supervisor.spawn("watchdog", self.heartbeat.run)

    async def _wait_cameras_up(self, timeout_s: float) -> None:
        """Wait until every camera's source is connected (bounded by ``timeout_s``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s

        def waiting() -> list[str]:
            # A finished acquire task (finite source) has nothing to wait for.
            return [
                cam
                for cam, line in self.lines.items()
                if not line.source_state().connected
                and not _done(self.supervisor.task(f"acquire:{cam}"))
            ]

        while down := waiting():
            self._update_readiness()
            if loop.time() >= deadline:
                log.warning(
                    "camera(s) %s not up after %.0f s; reporting ready, they keep reconnecting",
                    ", ".join(down), timeout_s,
                )  # fmt: skip
                return
            await asyncio.sleep(0.02)
        self._update_readiness()

    def cameras_not_ready(self) -> list[str]:
        """Cameras that neither started nor stopped for a reported reason (yet)."""
        out = []
        for cam, line in self.lines.items():
            name = f"acquire:{cam}"
            if line.started or name in self.supervisor.failed:
                continue
            if _done(self.supervisor.task(name)):
                continue  # a finite source that ended: nothing to wait for
            out.append(cam)
        return out

    def _update_readiness(self) -> None:
        """/readyz: every camera started (or failed for a reported reason), workers run."""
        health = self.runtime.health
        health.set("cameras", not self.cameras_not_ready())
        health.set("workers", not self.runtime.pool.closed)

    async def _readiness_loop(self) -> None:
        while True:
            self._update_readiness()
            await asyncio.sleep(READINESS_INTERVAL_S)

    def status(self) -> str:
        """The one-line summary for systemd's STATUS=."""
        return summary(self.runtime)

    async def _start_http(self) -> None:
        s = self.settings
        if s.http.enabled and not _is_loopback(s.http.host) and s.http_api_key() is None:
            log.warning(
                "HTTP listens on %s without an API key: anyone who can reach port %d can "
                "analyse images, teach and delete references and change recipes; set "
                "http.api_key_file, or http.host: 127.0.0.1",
                s.http.host or "all addresses",
                s.http.port,
            )
        if s.http.enabled:
            app = create_app(
                self.runtime, with_metrics=s.metrics.enabled and s.metrics.port is None
            )
            self.http_port = await self._serve(app, s.http.host, s.http.port, "http", limited=True)
        if s.metrics.enabled and s.metrics.port is not None:
            app = create_metrics_app(self.runtime)
            self.metrics_port = await self._serve(app, s.metrics.host, s.metrics.port, "metrics")
        self.runtime.health.set("http", True)

    async def _serve(
        self, app: web.Application, host: str, port: int, what: str, *, limited: bool = False
    ) -> int:
        http = self.settings.http
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=1.0,
            keepalive_timeout=http.idle_timeout_s,  # also bounds slow request headers
        )
        await runner.setup()
        site: web.TCPSite
        if limited:
            refused = self.runtime.metrics.http_connections_refused
            limit = ConnectionLimit(http.max_connections, on_refused=refused.inc)
            site = LimitedSite(runner, host, port, limit=limit)
        else:
            site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            msg = f"{what}: cannot listen on {host}:{port} ({exc.strerror or exc})"
            raise StartupError(msg) from exc
        self._runners.append(runner)
        addresses = runner.addresses  # (host, port, ...) of each bound socket
        return int(addresses[0][1]) if addresses else port

    def request_stop(self) -> None:
        """Ask the daemon to shut down (signal handlers call this)."""
        self._stop.set()

    async def wait_stopped(self) -> None:
        await self._stop.wait()

    async def stop(self) -> None:
        """Stop intake, drain in-flight frames and the publisher within the grace period."""
        self.notifier.stopping(f"stopping: draining {self._pending()} frame(s)")
        if not self._started:
            await self._close_http()
            self.runtime.pool.shutdown(wait=False)
            return
        self._started = False
        grace = self.settings.pipeline.shutdown_grace_s
        deadline = time.monotonic() + grace
        log.info("stopping: draining %d frame(s) in flight", self._pending())
        for line in self.lines.values():
            line.intake_open = False
        await self.supervisor.cancel(*[f"acquire:{c}" for c in self.lines])
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await asyncio.gather(*(line.drain() for line in self.lines.values()))
        except TimeoutError:
            lost = self._pending()
            for cam_id, line in self.lines.items():
                if line.pending():
                    self.runtime.metrics.frames_dropped.labels(cam_id, DROP_SHUTDOWN).inc(
                        line.pending()
                    )
            log.error(
                "shutdown grace of %.1f s ran out with %d frame(s) not inspected", grace, lost
            )
            self.exit_code = 1
        await self.supervisor.stop()
        if self.sink is not None:
            remaining = max(0.5, deadline - time.monotonic())
            try:
                await self.sink.stop(remaining)
            except Exception:
                log.exception("publisher did not stop cleanly")
        await self._close_http()
        self.runtime.pool.shutdown(wait=True)
        log.info("edged stopped")
        flush_suppressed(force=True)

    async def _close_http(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    async def run(self) -> int:
        """Start, wait for SIGTERM/SIGINT, stop. Returns the process exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        try:
            await self.start()
            await self._stop.wait()
        finally:
            await self.stop()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
        return self.exit_code

    def request_reload(self) -> None:
        """Reload the config file (SIGHUP); reloads run one at a time, in order."""
        if self.reloader is None:
            log.warning("reload requested, but edged was started without a config file")
            return
        if not self._started:  # READY=1 after a reload must not precede start-up's
            log.warning("reload requested while starting or stopping: ignored")
            return
        self._reloads += 1
        reloader = self.reloader

        async def reload() -> None:
            await reloader.reload()

        self.supervisor.spawn(f"reload:{self._reloads}", reload, restart=False)

    def _on_reload(self, plan: ReloadPlan) -> None:
        self.settings = plan.applied
        if self.heartbeat is not None:
            self.heartbeat.detector.stall_s = plan.applied.pipeline.watchdog_stall_s

    # ------------------------------------------------------------ helpers

    def _pending(self) -> int:
        return sum(line.pending() for line in self.lines.values())

    def _on_failed(self, name: str, exc: EdgedError) -> None:
        """A component stopped for good by a configuration error (e.g. a camera setting
        the device refuses): counted, and the camera's state carries the reason."""
        cam = name.split(":", 1)[1] if ":" in name else None
        if name.startswith("acquire:") and cam is not None:
            self.runtime.metrics.camera_connected.labels(cam).set(0)
            self.runtime.metrics.camera_failed.labels(cam).set(1)
        self._update_readiness()

    def _on_restart(self, name: str, exc: BaseException) -> None:
        self.runtime.metrics.component_restarts.labels(name.split(":", 1)[0]).inc()
        cam = name.split(":", 1)[1] if ":" in name else None
        if name.startswith("acquire:") and cam is not None:
            self.runtime.metrics.camera_reconnects.labels(cam).inc()
            self.runtime.metrics.camera_connected.labels(cam).set(0)

    async def _state_loop(self) -> None:
        m = self.runtime.metrics
        while True:
            for cam_id, line in self.lines.items():
                st = line.source_state()
                m.camera_connected.labels(cam_id).set(1 if st.connected else 0)
                m.camera_fps.labels(cam_id).set(st.fps)
                m.queue_depth.labels(cam_id).set(line.queue.qsize())
                line.publish_state()
            m.workers_busy.set(self.runtime.pool.busy)
            if self.sink is not None:
                _export_sink_stats(m, self.sink.stats())
            await asyncio.sleep(STATE_INTERVAL_S)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name or "": assume it is reachable from the network


def _ensure_directory(key: str, path: Path) -> None:
    """Create ``path`` if needed; StartupError saying why when it is no usable directory."""
    if path.exists() and not path.is_dir():
        msg = f"{key}: expected a directory, got {str(path)!r} (a file)"
        raise StartupError(msg)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        msg = f"{key}: expected a writable directory, got {str(path)!r} ({exc.strerror or exc})"
        raise StartupError(msg) from exc
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        msg = (
            f"{key}: expected a readable, writable directory, got {str(path)!r} (permission denied)"
        )
        raise StartupError(msg)


def _done(task: asyncio.Task[None] | None) -> bool:
    return task is None or task.done()


def _export_sink_stats(m: Metrics, stats: SinkStats) -> None:
    m.mqtt_connected.set(1 if stats.connected else 0)
    m.outbox_depth.set(stats.outbox_depth)
    m.outbox_oldest_age.set(stats.oldest_age_s)


def _first_seq(sink: ResultSink | None, camera: str) -> int:
    """Continue a camera's result seq across restarts (the sink remembers the last one)."""
    last = None if sink is None else sink.last_seq(camera)
    return 0 if last is None else last + 1


def _build_source(camera: str, cfg: CameraConfig) -> FrameSource:
    return build_source(camera, cfg)


def _build_failures(settings: Settings) -> FailureRing | None:
    cfg = settings.failures
    if not cfg.enabled:
        return None
    return FailureRing(
        settings.state_dir / "failures",
        keep_per_camera=cfg.keep_per_camera,
        max_bytes=cfg.max_bytes,
    )


def _build_references(settings: Settings) -> ReferenceStore:
    return ReferenceStore(settings.references_dir, recipes=settings.recipes)


async def _build_publisher(runtime: Runtime) -> ResultSink | None:
    if not runtime.settings.mqtt.enabled:
        return None
    from edged.publish import Publisher, RuntimeCommandHandler

    publisher = Publisher(
        runtime.settings,
        runtime.metrics,
        command_handler=RuntimeCommandHandler(runtime),
        on_durable=lambda durable: runtime.health.set("outbox", durable),
    )
    await publisher.start()
    return publisher
