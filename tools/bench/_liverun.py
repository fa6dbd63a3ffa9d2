"""One live run of the real daemon: replayed cameras -> Daemon -> MQTT broker -> subscriber.

The daemon is edged's own :class:`~edged.daemon.Daemon`, built from Settings like
``edged run`` builds it, with its MQTT publisher (durable outbox) pointed at a
private broker; only the camera sources are swapped for :class:`ReplaySource`
(pre-rendered frames, see there). A subscriber in its own process records when
each Result arrives; latency is receipt time minus the frame's host timestamp.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from edged.config import CameraConfig, RecipeConfig, Settings, SyntheticConfig
from edged.core.result import Result
from edged.daemon import Daemon
from edged.runtime.contracts import SinkStats
from tools.bench._broker import BrokerAddress
from tools.bench._machine import rss_mb
from tools.bench._recipe import RECIPE, reference_store, teach
from tools.bench._replay import ReplaySource

TOPIC_PREFIX = "edged"
_ROOT = Path(__file__).resolve().parents[2]
NODE = "bench"


def publisher_available() -> bool:
    try:
        module = importlib.import_module("edged.publish")
    except ImportError:
        return False
    return hasattr(module, "Publisher")


@dataclass
class LiveRun:
    """What one run produced. ``sent``, ``received`` and latencies (ms) count frames
    after the warm-up; ``queue_full`` is the daemon's own drop counter for the run."""

    fps: float
    cameras: int
    duration_s: float
    sent: int = 0
    received: int = 0
    queue_full: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    to_result_ms: list[float] = field(default_factory=list)
    rss: list[tuple[float, float]] = field(default_factory=list)

    @property
    def drops(self) -> int:
        """Frames after the warm-up whose result never reached the subscriber."""
        return max(0, self.sent - self.received)

    def offered_fps(self, warmup_s: float) -> float:
        """Frames per second each camera really handed over after the warm-up."""
        return self.sent / self.cameras / max(1e-9, self.duration_s - warmup_s)


@dataclass
class _DaemonRun:
    rss: list[tuple[float, float]]
    frames: int
    results: int
    queue_full: int


class _NullSink:
    """Stands in for the MQTT publisher when this checkout has none (memory runs)."""

    async def publish_result(self, result: Result) -> None:
        return None

    def set_state(self, camera: str, state: dict[str, Any]) -> None:
        return None

    def last_seq(self, camera: str) -> int | None:
        return None

    def stats(self) -> SinkStats:
        return SinkStats(connected=True)

    async def stop(self, grace_s: float = 5.0) -> None:
        return None


def settings_for(
    root: Path,
    refs_dir: Path,
    recipe: RecipeConfig,
    *,
    cameras: int,
    fps: float,
    size_wh: tuple[int, int],
    broker: BrokerAddress | None,
) -> Settings:
    w, h = size_wh
    synthetic = SyntheticConfig(width=w, height=h, pixel_format="BayerRG8")
    cams = {
        f"cam{i + 1}": CameraConfig(recipe=RECIPE, fps=fps, synthetic=synthetic)
        for i in range(cameras)
    }
    mqtt: dict[str, Any] = {"enabled": False}
    if broker is not None:
        mqtt = {
            "enabled": True,
            "host": broker.host,
            "port": broker.port,
            "protocol": "5" if broker.mqtt5 else "3.1.1",
            "prefix": TOPIC_PREFIX,
        }
    return Settings(
        node_id=NODE,
        cameras=cams,
        recipes={RECIPE: recipe},
        mqtt=mqtt,
        http={"enabled": False},
        metrics={"enabled": False},
        pipeline={"workers": 2},
        state_dir=root / "state",
        references_dir=refs_dir,
    )


def prepare_references(
    refs_dir: Path, recipe: RecipeConfig, reference: np.ndarray, cameras: int
) -> RecipeConfig:
    """Teach ``reference`` for each camera; without a store, drop ``difference``."""
    store = reference_store(refs_dir, recipe)
    if store is None:
        return RecipeConfig(checks={k: v for k, v in recipe.checks.items() if k != "difference"})
    teach(store, [f"cam{i + 1}" for i in range(cameras)], [reference])
    return recipe


def run_live(
    root: Path,
    refs_dir: Path,
    recipe: RecipeConfig,
    raws: Sequence[np.ndarray],
    *,
    cameras: int,
    fps: float,
    duration_s: float,
    warmup_s: float,
    broker: BrokerAddress | None,
    rss_every_s: float | None = None,
    on_warm: Callable[[], None] | None = None,
    on_started: Callable[[], None] | None = None,
    on_end: Callable[[], None] | None = None,
) -> LiveRun:
    """Run the daemon for ``duration_s``; count, after ``warmup_s``, latency and drops.

    ``root`` holds this run's state (outbox); ``refs_dir`` references taught by
    :func:`prepare_references`; ``raws`` the frames each camera replays.
    """
    root.mkdir(parents=True, exist_ok=True)
    h, w = raws[0].shape[:2]
    settings = settings_for(
        root, refs_dir, recipe, cameras=cameras, fps=fps, size_wh=(w, h), broker=broker
    )
    out_path = root / "received.txt"
    out_path.write_text("")
    sub = _start_subscriber(broker, out_path) if broker is not None else None
    try:
        d = asyncio.run(
            _run(
                settings,
                raws,
                duration_s=duration_s,
                rss_every_s=rss_every_s,
                warmup_s=warmup_s,
                on_warm=on_warm,
                on_started=on_started,
                on_end=on_end,
            )
        )
        if sub is not None:
            _wait_received(out_path, d.results, timeout_s=15.0)
    finally:
        if sub is not None:
            _stop_subscriber(sub)
    warm_seq = int(fps * warmup_s)
    live = LiveRun(fps, cameras, duration_s, rss=d.rss, queue_full=d.queue_full)
    live.sent = max(0, d.frames - cameras * warm_seq)
    if broker is None:
        live.received = max(0, d.results - cameras * warm_seq)
        return live
    seen: dict[str, set[int]] = {}
    for line in out_path.read_text().splitlines():
        cam, seq_s, host_ts, recv_ns, to_result = line.split()
        seq = int(seq_s)
        if seq < warm_seq or seq in seen.setdefault(cam, set()):
            continue  # warm-up, or an at-least-once duplicate
        seen[cam].add(seq)
        live.latencies_ms.append((int(recv_ns) - _iso_ns(host_ts)) / 1e6)
        if float(to_result) >= 0:
            live.to_result_ms.append(float(to_result))
    live.received = sum(len(v) for v in seen.values())
    return live


async def _run(
    settings: Settings,
    raws: Sequence[np.ndarray],
    *,
    duration_s: float,
    rss_every_s: float | None,
    warmup_s: float,
    on_warm: Callable[[], None] | None,
    on_started: Callable[[], None] | None,
    on_end: Callable[[], None] | None,
) -> _DaemonRun:
    sources: list[ReplaySource] = []

    def build(camera: str, cfg: CameraConfig) -> ReplaySource:
        src = ReplaySource(camera, raws, fps=cfg.fps)
        sources.append(src)
        return src

    sink = None if settings.mqtt.enabled else _NullSink()
    rss: list[tuple[float, float]] = []
    with mock.patch("edged.daemon._build_source", build):
        daemon = Daemon(settings, sink=sink)
        await daemon.start()
        if on_started is not None:
            on_started()
        try:
            t0 = time.monotonic()
            while (elapsed := time.monotonic() - t0) < duration_s:
                if on_warm is not None and elapsed >= warmup_s:
                    on_warm()
                    on_warm = None
                if rss_every_s is not None:
                    rss.append((elapsed, rss_mb()))
                await asyncio.sleep(min(rss_every_s or 1.0, duration_s - elapsed))
            if rss_every_s is not None:
                rss.append((time.monotonic() - t0, rss_mb()))
            if on_end is not None:
                on_end()
        finally:
            await daemon.stop()
    reg = daemon.runtime.metrics.registry

    def total(metric: str, **labels: str) -> int:
        return int(
            sum(
                reg.get_sample_value(metric, {"camera": c, **labels}) or 0 for c in settings.cameras
            )
        )

    results = sum(
        total("edged_results_total", recipe=RECIPE, verdict=v) for v in ("pass", "fail", "error")
    )
    return _DaemonRun(
        rss=rss,
        frames=sum(s.state().frames for s in sources),
        results=results,
        queue_full=total("edged_frames_dropped_total", reason="queue_full"),
    )


def _start_subscriber(broker: BrokerAddress, out_path: Path) -> subprocess.Popen[str]:
    topic = f"{TOPIC_PREFIX}/{NODE}/+/result"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.bench._subscriber", broker.host, str(broker.port), topic,
         str(out_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        _stop_subscriber(proc)
        msg = f"subscriber: expected 'ready', got {line!r}"
        raise RuntimeError(msg)
    return proc


def _stop_subscriber(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(OSError):
        if proc.stdin is not None:
            proc.stdin.close()
    try:
        proc.wait(5.0)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_received(path: Path, expected: int, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sum(1 for _ in path.open()) >= expected:
            return
        time.sleep(0.1)


def _iso_ns(text: str) -> int:
    """``2026-01-02T03:04:05.678Z`` -> ns since the epoch."""
    t = dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


# --------------------------------------------------------------------------- child process


@dataclass(frozen=True, slots=True)
class ChildRun:
    """What :func:`run_in_child` brings back: the run, and profiles when asked for."""

    live: LiveRun
    tracemalloc: list[str]
    spy: list[str]


def run_in_child(
    workdir: Path,
    refs_dir: Path,
    checks: Sequence[str],
    raws: Sequence[np.ndarray],
    *,
    cameras: int,
    fps: float,
    duration_s: float,
    warmup_s: float,
    broker: BrokerAddress | None,
    rss_every_s: float | None = None,
    tracemalloc_on: bool = False,
    spy_s: float | None = None,
    env: dict[str, str] | None = None,
) -> ChildRun:
    """:func:`run_live` in a fresh Python process: the daemon alone in its process, as
    in production (its RSS is its own; nothing the benchmark loaded runs beside it).

    ``checks`` names the recipe's checks (default options); references must already
    be taught into ``refs_dir``. With ``spy_s``, py-spy samples the child's threads
    for that long once its daemon has started. ``env`` adds environment variables
    (e.g. glibc ``MALLOC_*`` tunables) to the child's.
    """
    from tools.bench._profile import Spy

    workdir.mkdir(parents=True, exist_ok=True)
    raws_path = workdir / "raws.npy"
    np.save(raws_path, np.stack(list(raws)))
    params = {
        "root": str(workdir / "run"),
        "refs_dir": str(refs_dir),
        "checks": list(checks),
        "raws": str(raws_path),
        "cameras": cameras,
        "fps": fps,
        "duration_s": duration_s,
        "warmup_s": warmup_s,
        "broker": None if broker is None else [broker.host, broker.port, broker.mqtt5],
        "rss_every_s": rss_every_s,
        "tracemalloc": tracemalloc_on,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.bench._liverun", json.dumps(params)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=_ROOT,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout is not None
    spy_lines: list[str] = []
    try:
        line = proc.stdout.readline()
        if line.strip() == "running" and spy_s is not None:
            with Spy(duration_s=spy_s, pid=proc.pid) as spy:
                pass
            spy_lines = spy.top()
            line = proc.stdout.readline()
        elif line.strip() == "running":
            line = proc.stdout.readline()
        out, err = proc.communicate(timeout=duration_s + 180)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    last = (line + out).strip().splitlines()
    if proc.returncode != 0 or not last:
        msg = f"daemon run (child process) failed: {err.strip()[-2000:]}"
        raise RuntimeError(msg)
    doc = json.loads(last[-1])
    live = LiveRun(**{k: v for k, v in doc.items() if k != "tracemalloc"})
    live.rss = [(float(t), float(mb)) for t, mb in doc["rss"]]
    return ChildRun(live, list(doc["tracemalloc"]), spy_lines)


def _child_main(params: dict[str, Any]) -> dict[str, Any]:
    import tracemalloc

    raws = list(np.load(params["raws"]))
    recipe = RecipeConfig(checks={c: {} for c in params["checks"]})
    broker = params["broker"]
    warm: list[tracemalloc.Snapshot] = []
    if params["tracemalloc"]:
        tracemalloc.start(8)

    def started() -> None:
        print("running", flush=True)

    def warmed() -> None:
        warm.append(tracemalloc.take_snapshot())

    def ended() -> None:  # while the daemon still runs: its live objects, not the teardown's
        if warm:
            stats = tracemalloc.take_snapshot().compare_to(warm[0], "lineno")
            lines.extend(str(st) for st in stats[:12])
            tracemalloc.stop()

    lines: list[str] = []

    live = run_live(
        Path(params["root"]),
        Path(params["refs_dir"]),
        recipe,
        raws,
        cameras=int(params["cameras"]),
        fps=float(params["fps"]),
        duration_s=float(params["duration_s"]),
        warmup_s=float(params["warmup_s"]),
        broker=None if broker is None else BrokerAddress(str(broker[0]), int(broker[1]), broker[2]),
        rss_every_s=params["rss_every_s"],
        on_warm=warmed if params["tracemalloc"] else None,
        on_started=started,
        on_end=ended if params["tracemalloc"] else None,
    )
    return {**dataclasses.asdict(live), "tracemalloc": lines}


if __name__ == "__main__":
    print(json.dumps(_child_main(json.loads(sys.argv[1]))), flush=True)
