"""Lifecycle: start, serve, drain on stop, restart crashed components."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from _daemon_helpers import FlakySource, RecordingSink, wait_for

from edged.config import load_settings
from edged.daemon import Daemon, StartupError
from edged.runtime.contracts import SinkStats


def _settings(write_config, **camera):  # type: ignore[no-untyped-def]
    cam = {
        "recipe": "plain",
        "fps": 50,
        "synthetic": {"width": 256, "height": 192, "pixel_format": "BayerGB8", "defect_rate": 0.5},
        **camera,
    }
    return load_settings(
        write_config(
            {
                "node_id": "t1",
                "cameras": {"cam1": cam},
                "recipes": {"plain": {}},
                "mqtt": {"enabled": False},
                "http": {"port": 0},
                "pipeline": {"workers": 2, "restart_backoff_min_s": 0.05},
            }
        )
    )


async def test_runs_serves_and_drains_without_loss(write_config) -> None:
    sink = RecordingSink()
    daemon = Daemon(_settings(write_config), sink=sink)
    await daemon.start()
    try:
        await wait_for(lambda: len(sink.results) >= 15)
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{daemon.http_port}"
            async with http.get(f"{base}/healthz") as r:
                assert r.status == 200
                assert (await r.json())["status"] == "ok"
            async with http.get(f"{base}/readyz") as r:
                body = await r.json()
                assert r.status == 200, body
                assert body["components"] == {
                    "publisher": True, "http": True, "cameras": True, "workers": True,
                }  # fmt: skip
            async with http.get(f"{base}/metrics") as r:
                text = await r.text()
                assert 'edged_frames_grabbed_total{camera="cam1"}' in text
    finally:
        await daemon.stop()
    m = daemon.runtime.metrics.registry
    grabbed = m.get_sample_value("edged_frames_grabbed_total", {"camera": "cam1"})
    dropped = (
        m.get_sample_value("edged_frames_dropped_total", {"camera": "cam1", "reason": "queue_full"})
        or 0.0
    )
    # Nothing in flight is lost: every grabbed frame was published or counted as dropped.
    assert grabbed == len(sink.results) + dropped
    seqs = [r.seq for r in sink.results]
    assert seqs == list(range(len(seqs)))
    frame_seqs = [r.frame.seq for r in sink.results]
    assert frame_seqs == sorted(frame_seqs)
    for r in sink.results:
        assert r.verdict == "pass"
        assert r.frame.pixel_format == "BayerGB8"
        assert (r.frame.width, r.frame.height) == (256, 192)
        assert r.ground_truth is not None
        assert r.ground_truth["seq"] == r.frame.seq
        assert r.timings_ms["decode"] >= 0
    assert sink.stopped_with is not None
    assert sink.states["cam1"]["recipe"] == "plain"


async def test_crashed_emit_is_restarted_and_retries_same_result(write_config) -> None:
    sink = RecordingSink(fail_on_call=3)
    daemon = Daemon(_settings(write_config), sink=sink)
    await daemon.start()
    try:
        await wait_for(lambda: len(sink.results) >= 8)
    finally:
        await daemon.stop()
    seqs = [r.seq for r in sink.results]
    assert seqs == list(range(len(seqs)))  # the failed one was sent again, in order
    restarts = daemon.runtime.metrics.registry.get_sample_value(
        "edged_component_restarts_total", {"component": "emit"}
    )
    assert restarts == 1.0


async def test_source_fault_restarts_acquisition(write_config, monkeypatch) -> None:
    settings = _settings(write_config)
    sources: list[FlakySource] = []

    def build(camera, cfg):  # type: ignore[no-untyped-def]
        src = FlakySource(camera, cfg, fail_after=4)
        sources.append(src)
        return src

    monkeypatch.setattr("edged.daemon._build_source", build)
    sink = RecordingSink()
    daemon = Daemon(settings, sink=sink)
    await daemon.start()
    try:
        await wait_for(lambda: len(sink.results) >= 10)
    finally:
        await daemon.stop()
    assert sources[0].starts == 2
    reg = daemon.runtime.metrics.registry
    assert reg.get_sample_value("edged_camera_reconnects_total", {"camera": "cam1"}) == 1.0
    assert [r.frame.seq for r in sink.results][:6] == [0, 1, 2, 3, 4, 5]


async def test_stop_drains_blocking_queue_within_grace(write_config) -> None:
    settings = _settings(write_config, on_full="block", queue_size=8, fps=200)
    sink = RecordingSink()
    daemon = Daemon(settings, sink=sink)
    await daemon.start()
    reg = daemon.runtime.metrics.registry
    await wait_for(
        lambda: (reg.get_sample_value("edged_frames_grabbed_total", {"camera": "cam1"}) or 0) >= 20
    )
    await daemon.stop()
    grabbed = daemon.runtime.metrics.registry.get_sample_value(
        "edged_frames_grabbed_total", {"camera": "cam1"}
    )
    assert grabbed == len(sink.results)  # blocking line: nothing dropped, nothing lost
    assert daemon.exit_code == 0


async def test_port_in_use_is_a_startup_error(write_config) -> None:
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = blocker.sockets[0].getsockname()[1]
    try:
        settings = _settings(write_config)
        settings = settings.model_copy(
            update={"http": settings.http.model_copy(update={"port": port})}
        )
        daemon = Daemon(settings, sink=RecordingSink())
        with pytest.raises(StartupError, match=f"http: cannot listen on 127.0.0.1:{port}"):
            await daemon.start()
        await daemon.stop()
    finally:
        blocker.close()
        await blocker.wait_closed()


async def test_inspection_bug_gives_error_verdict_and_line_moves_on(
    write_config, monkeypatch
) -> None:
    from edged.runtime.line import CameraLine

    real = CameraLine._process
    calls = 0

    def flaky(self, frame, recipe):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if frame.seq == 2:
            msg = "bug in a check (injected)"
            raise ZeroDivisionError(msg)
        return real(self, frame, recipe)

    monkeypatch.setattr(CameraLine, "_process", flaky)
    sink = RecordingSink()
    daemon = Daemon(_settings(write_config), sink=sink)
    await daemon.start()
    try:
        await wait_for(lambda: len(sink.results) >= 6)
    finally:
        await daemon.stop()
    by_frame = {r.frame.seq: r for r in sink.results}
    assert by_frame[2].verdict == "error"
    assert by_frame[2].reasons == ["internal error: ZeroDivisionError: bug in a check (injected)"]
    assert by_frame[3].verdict == "pass"
    assert [r.seq for r in sink.results] == list(range(len(sink.results)))


class _BackloggedSink(RecordingSink):
    """A sink that remembers seq 41 for cam1 and reports a disconnected backlog."""

    def last_seq(self, camera: str) -> int | None:
        return 41 if camera == "cam1" else None

    def stats(self) -> SinkStats:
        return SinkStats(connected=False, outbox_depth=7, oldest_age_s=2.5)


async def test_the_sink_contract_drives_seq_metrics_status_and_stop(write_config) -> None:
    settings = _settings(write_config)
    settings.mqtt.enabled = True  # the status line reports the sink only with MQTT on
    sink = _BackloggedSink()
    daemon = Daemon(settings, sink=sink)
    await daemon.start()
    try:
        await wait_for(lambda: len(sink.results) >= 2)
        assert [r.seq for r in sink.results[:2]] == [42, 43]
        m = daemon.runtime.metrics.registry
        assert m.get_sample_value("edged_outbox_messages") == 7
        assert m.get_sample_value("edged_outbox_oldest_age_seconds") == 2.5
        assert m.get_sample_value("edged_mqtt_connected") == 0
        assert daemon.status().endswith("; mqtt DISCONNECTED, outbox 7")
    finally:
        await daemon.stop()
    assert sink.stopped_with is not None
    assert sink.stopped_with >= 0.5
