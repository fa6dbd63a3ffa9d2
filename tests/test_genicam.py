"""GenICam acquisition against the real viky.cti GenTL producer (3 simulated cameras)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from _acq_helpers import VIKY_CTI, LoopLag, genicam_camera, read_n
from _daemon_helpers import RecordingSink, wait_for
from _genicam_faults import FaultSwitch
from conftest import free_port

from edged.config import load_settings
from edged.core.errors import ConfigError, InputError, SourceError
from edged.daemon import Daemon
from edged.imaging.pixfmt import decode
from edged.sources.discovery import list_genicam
from edged.sources.factory import build_source
from edged.sources.genicam import GenicamSource

pytestmark = pytest.mark.genicam


async def test_discover_lists_the_three_viky_devices() -> None:
    devices = await asyncio.to_thread(list_genicam, [VIKY_CTI])
    assert [d.serial for d in devices] == ["0", "1", "2"]
    assert {d.model for d in devices} == {"Viky"}
    assert {d.vendor for d in devices} == {"Machine Vision Games Ltd."}
    assert [d.id for d in devices] == ["VikyTL_DEV_red", "VikyTL_DEV_green", "VikyTL_DEV_blue"]
    assert {d.access for d in devices} == {"available"}
    assert devices[0].to_dict()["cti"] == str(VIKY_CTI)


async def test_open_by_serial_streams_mono8_with_size_and_rate_from_config() -> None:
    cfg = genicam_camera(
        serial="1", features={"Width": 160, "Height": 120, "AcquisitionFrameRate": 100.0}
    )
    src = build_source("line1", cfg)
    assert isinstance(src, GenicamSource)
    await src.start()
    try:
        frames = await read_n(src, 8)
        state = src.state()
        details = src.details()
    finally:
        await src.stop()
    f = frames[-1]
    assert (f.pixel_format, f.width, f.height) == ("Mono8", 160, 120)
    assert f.data.shape == (120, 160)
    assert f.data.dtype == np.uint8
    assert not f.data.flags.writeable  # frames are read-only (leased or copied)
    assert f.camera == "line1"
    assert [fr.seq for fr in frames] == list(range(8))
    ids = [fr.frame_id for fr in frames]
    assert all(a is not None for a in ids)
    assert ids == sorted(set(ids))  # type: ignore[type-var]
    assert decode(f).shape == (120, 160)
    assert state.connected
    assert state.device == "Machine Vision Games Ltd. Viky serial 1"
    assert details["features"]["applied"] == {
        "PixelFormat": "Mono8",
        "Width": 160,
        "Height": 120,
        "AcquisitionFrameRate": 100.0,
        "StreamBufferHandlingMode": "NewestOnly",
    }
    assert details["features"]["refused"] == []
    # All 8 frames are still held here: leases stop while the child would be left
    # without a free slot (4 slots: at most 3 leased), the rest were copied out.
    assert 1 <= details["frames_leased"] <= 3
    assert details["frames_copied"] == 8 - details["frames_leased"]
    assert src.state().connected is False  # stopped


async def test_free_running_camera_runs_at_the_line_fps() -> None:
    cfg = genicam_camera(serial="2")
    assert cfg.genicam is not None
    del cfg.genicam.features["AcquisitionFrameRate"]
    cfg.fps = 25.0
    src = GenicamSource("c", cfg)
    await src.start()
    try:
        applied = src.details()["features"]["applied"]
    finally:
        await src.stop()
    assert applied["AcquisitionFrameRate"] == 25.0


async def test_rgba8_stream_decodes_to_bgr() -> None:
    cfg = genicam_camera(serial="2", features={"PixelFormat": "RGBa8", "Width": 120, "Height": 100})
    src = GenicamSource("c", cfg)
    await src.start()
    try:
        (f,) = await read_n(src, 1)
    finally:
        await src.stop()
    assert f.pixel_format == "RGBa8"
    assert f.data.shape == (100, 120, 4)
    bgr = decode(f)
    assert bgr.shape == (100, 120, 3)
    np.testing.assert_array_equal(bgr, f.data[..., [2, 1, 0]])
    assert len(np.unique(bgr.reshape(-1, 3), axis=0)) > 1  # a real picture, not a blank


async def test_select_by_model_and_index() -> None:
    cfg = genicam_camera(serial=None, model="Viky", index=2)
    src = GenicamSource("c", cfg)
    await src.start()
    try:
        assert src.state().device.endswith("serial 2")
    finally:
        await src.stop()


async def test_unknown_user_name_lists_what_was_found() -> None:
    src = GenicamSource("c", genicam_camera(serial=None, user_name="line-3-top"))
    with pytest.raises(SourceError) as info:
        await src.start()
    text = str(info.value)
    assert "expected a GenICam device with user name 'line-3-top'" in text
    assert "got 3 device(s)" in text
    assert "Viky serial 0" in text
    assert src.pid is None


async def test_a_file_that_is_no_producer_finds_no_device(tmp_path: Path) -> None:
    fake = tmp_path / "fake.cti"
    fake.write_text("not a GenTL producer")
    src = GenicamSource("c", genicam_camera(cti=[str(fake)]))
    with pytest.raises(
        SourceError,
        match=r"^camera 'c': expected a GenICam device with serial "
        r"'0', got 0 device\(s\): none$",
    ):
        await src.start()


async def test_refused_settings_are_reported_by_name_with_what_is_allowed() -> None:
    cfg = genicam_camera(
        serial="0",
        features={
            "Width": 5000,
            "ExposureTime": 1000.0,
            "PixelFormat": "BayerRG8",
            "AcquisitionMode": "SingleFrame",
            "AcquisitionFrameRate": 500.0,
        },
    )
    src = GenicamSource("c", cfg)
    with pytest.raises(ConfigError) as info:
        await src.start()
    text = str(info.value)
    assert "Width: expected an integer in [100, 800], got 5000" in text
    assert "ExposureTime: no such feature on this device" in text
    assert "PixelFormat: expected one of ['RGBa8', 'Mono8'], got 'BayerRG8'" in text
    assert "AcquisitionMode: read-only" in text
    assert "AcquisitionFrameRate: expected a number in [1, 200] Hz, got 500" in text
    assert src.state().last_error == text
    assert src.pid is None  # the acquisition process is gone


async def test_software_trigger_on_a_camera_without_trigger_nodes_is_refused() -> None:
    src = GenicamSource("c", genicam_camera(trigger="software"))
    with pytest.raises(ConfigError, match="TriggerMode: no such feature on this device"):
        await src.start()
    free = GenicamSource("c", genicam_camera())
    with pytest.raises(InputError, match="expected a source with a software trigger"):
        await free.trigger()


async def test_chunk_data_is_carried_in_the_frame() -> None:
    src = GenicamSource("c", genicam_camera(serial="1", chunks=["NrBounces"]))
    await src.start()
    try:
        frames = await read_n(src, 3)
    finally:
        await src.stop()
    for f in frames:
        assert set(f.chunks) == {"NrBounces"}
        assert isinstance(f.chunks["NrBounces"], int)
    bad = GenicamSource("c", genicam_camera(serial="1", chunks=["Temperature"]))
    with pytest.raises(ConfigError, match=r"ChunkSelector: expected one of \['NrBounces'"):
        await bad.start()


async def test_drop_oldest_keeps_the_newest_and_counts_drops() -> None:
    src = GenicamSource("c", genicam_camera(features={"AcquisitionFrameRate": 100.0}, ring_slots=3))
    await src.start()
    try:
        await asyncio.sleep(0.6)  # nobody reads: ~60 frames arrive, 2 may wait
        first, second = await read_n(src, 2)
        details = src.details()
        state = src.state()
    finally:
        await src.stop()
    assert first.frame_id is not None
    assert first.frame_id >= 10  # the early frames were dropped, not queued
    assert second.frame_id is not None
    assert second.frame_id > first.frame_id
    assert details["dropped_queue_full"] >= 5
    assert state.dropped >= details["dropped_queue_full"]


async def test_block_delivers_every_frame_in_order() -> None:
    """Triggered-line policy: the ring fills, the driver buffers, nothing is lost."""
    cfg = genicam_camera(
        on_full="block", ring_slots=2, buffer_handling="OldestFirst", num_buffers=16
    )
    src = GenicamSource("c", cfg)
    await src.start()
    try:
        await asyncio.sleep(0.2)  # ~10 frames at 50 fps: 2 in the ring, the rest in the driver
        frames = await read_n(src, 14)
        details = src.details()
    finally:
        await src.stop()
    ids = [f.frame_id for f in frames]
    assert ids[0] is not None
    assert ids == list(range(ids[0], ids[0] + 14))
    assert details["dropped_queue_full"] == 0
    assert details["skipped_by_driver"] == 0


async def test_a_leased_slot_is_not_reused_until_its_last_view_is_gone() -> None:
    """Zero-copy hand-over: a frame is a view of its ring slot. While any array
    derived from it lives (here the decoded Mono8 image, itself a view) the child
    must not write that slot again; once it is gone the slot comes back."""
    src = GenicamSource("c", genicam_camera(features={"AcquisitionFrameRate": 100.0}))
    await src.start()
    try:
        first = await asyncio.wait_for(src.read(), 10)
        assert src.details()["slots_leased_now"] == 1
        image = decode(first)
        assert np.shares_memory(image, first.data)  # no copy on the way
        snapshot = image.copy()
        del first
        later = await read_n(src, 20)  # 20 frames through the 3 other slots
        assert not np.array_equal(later[-1].data, snapshot)  # the scene does change
        del later
        await _until(lambda: src.details()["slots_leased_now"] == 1)  # only `image`
        np.testing.assert_array_equal(image, snapshot)
        del image
        await _until(lambda: src.details()["slots_leased_now"] == 0)
        before = src.details()["frames_leased"]
        await read_n(src, 3)
        assert src.details()["frames_leased"] > before  # all slots free: leasing again
        # A frame whose last reference goes in another thread (a worker) comes back too.
        held = await read_n(src, 2)
        assert src.details()["slots_leased_now"] >= 1  # the first is always leased
        await asyncio.to_thread(held.clear)
        await _until(lambda: src.details()["slots_leased_now"] == 0)
        kept = await asyncio.wait_for(src.read(), 10)
        kept_copy = kept.data.copy()
    finally:
        await src.stop()
    # The ring is closed and the child gone; the leased frame still reads its pixels.
    np.testing.assert_array_equal(kept.data, kept_copy)


async def test_frames_held_across_a_process_restart_keep_their_pixels() -> None:
    """A killed acquisition process takes its ring with it, but not the frames the
    pipeline still holds: their memory stays mapped until they are dropped, and the
    new process streams into a new ring."""
    src = GenicamSource("c", genicam_camera(features={"AcquisitionFrameRate": 100.0}))
    await src.start()
    try:
        held = await asyncio.wait_for(src.read(), 10)
        assert src.details()["slots_leased_now"] == 1
        snapshot = held.data.copy()
        old_pid = src.pid
        _kill(src)
        await _until(lambda: src.pid not in (None, old_pid) and src.state().connected)
        fresh = await read_n(src, 5)
        assert all(f.seq > held.seq for f in fresh)
        np.testing.assert_array_equal(held.data, snapshot)
        assert src.details()["process_restarts"] == 1
    finally:
        await src.stop()
    np.testing.assert_array_equal(held.data, snapshot)


@pytest.mark.slow
async def test_three_cameras_recover_from_faults_while_the_others_stream() -> None:
    faults = FaultSwitch()
    sources = [
        GenicamSource("cam0", genicam_camera(serial="0")),
        GenicamSource("cam1", genicam_camera(serial="1"), faults=faults),
        GenicamSource("cam2", genicam_camera(serial="2")),
    ]
    counts = [0, 0, 0]
    stop = asyncio.Event()

    async def pump(i: int) -> None:
        while not stop.is_set():
            try:
                await sources[i].read()
            except SourceError:
                return
            counts[i] += 1

    with LoopLag() as lag:
        await asyncio.gather(*(s.start() for s in sources))
        tasks = [asyncio.create_task(pump(i), name=f"pump-{i}") for i in range(3)]
        try:
            await asyncio.sleep(0.5)
            assert min(counts) > 5

            # 1. Kill camera 0's acquisition process: the daemon restarts it.
            pid0 = sources[0].pid
            _kill(sources[0])
            before = counts.copy()
            await _until(lambda: sources[0].pid not in (None, pid0) and counts[0] > before[0] + 5)
            assert counts[1] > before[1] + 10  # the others kept streaming meanwhile
            assert counts[2] > before[2] + 10
            st0 = sources[0].state()
            assert st0.connected
            assert st0.reconnects == 1
            assert "killed by SIGKILL" in (st0.last_error or "")

            # 2. Destroy camera 1's acquirer: reopened by serial in the same process.
            pid1 = sources[1].pid
            faults.fire("destroy_acquirer")
            await _until(lambda: sources[1].state().reconnects == 1)
            before = counts.copy()
            await _until(lambda: counts[1] > before[1] + 5)
            assert sources[1].pid == pid1
            assert sources[1].state().connected
            assert "GenTL error" in (sources[1].state().last_error or "")
            assert sources[2].state().reconnects == 0
        finally:
            stop.set()
            await asyncio.gather(*(s.stop() for s in sources))
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    # Generous bound: the real figure (~1 ms) is measured in tools/bench_acquisition.py.
    assert lag.p99_ms() < 50.0


@pytest.mark.slow
async def test_a_hung_driver_is_killed_by_the_watchdog_and_restarted() -> None:
    faults = FaultSwitch()
    src = GenicamSource("c", genicam_camera(serial="2", watchdog_s=1.0), faults=faults)
    await src.start()
    try:
        await read_n(src, 2)
        pid = src.pid
        faults.fire("hang")
        await _until(lambda: src.pid not in (None, pid), timeout_s=10.0)
        await read_n(src, 3)
        state = src.state()
    finally:
        await src.stop()
    assert state.reconnects == 1
    assert "silent" in (state.last_error or "") or "SIGKILL" in (state.last_error or "")


def _kill(src: GenicamSource) -> None:
    """The acquisition process dies (as after a segfault in the producer)."""
    assert src.pid is not None
    os.kill(src.pid, signal.SIGKILL)


async def _until(cond: object, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            msg = "condition not met in time"
            raise AssertionError(msg)
        await asyncio.sleep(0.05)


_ORPHAN_SCRIPT = """
import asyncio, sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {tests!r})
from _acq_helpers import genicam_camera
from edged.sources.genicam import GenicamSource

async def main():
    src = GenicamSource("c", genicam_camera(serial="0"))
    await src.start()
    await src.read()
    print(src.pid, flush=True)
    await asyncio.sleep(60)

if __name__ == "__main__":
    asyncio.run(main())
"""


@pytest.mark.slow
def test_acquisition_process_dies_with_a_killed_daemon(tmp_path: Path) -> None:
    script = tmp_path / "daemon.py"
    here = Path(__file__).parent
    script.write_text(_ORPHAN_SCRIPT.format(root=str(here.parent), tests=str(here)))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        child_pid = int(proc.stdout.readline())
        assert _alive(child_pid)
        proc.kill()  # SIGKILL: no cleanup code runs in the daemon
        proc.wait(10)
        deadline = time.monotonic() + 5
        while _alive(child_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child_pid)
    finally:
        proc.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has exited all the same.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


async def test_a_daemon_line_inspects_leased_frames_and_hands_every_slot_back(
    write_config,  # type: ignore[no-untyped-def]
) -> None:
    """The whole line on a real camera: frames are leased, cross into the worker
    threads, are decoded and inspected, and their slots come back."""
    camera = genicam_camera(features={"Width": 320, "Height": 240})
    port = free_port()
    settings = load_settings(
        write_config(
            {
                "node_id": "gc",
                "cameras": {"cam": camera.model_dump(mode="json", exclude_unset=True)},
                "recipes": {
                    "r": {
                        "checks": {"quality": {}},
                        # viky draws a white field with a few dark pixels
                        "limits": ["quality.brightness.l_mean > 200"],
                    }
                },
                "mqtt": {"enabled": False},
                "http": {"port": port},
            }
        )
    )
    sink = RecordingSink()
    daemon = Daemon(settings, sink=sink)
    await daemon.start()
    try:
        await wait_for(lambda: len(sink.results) >= 30, timeout_s=30)
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/api/v1/cameras/cam") as resp,
        ):
            assert resp.status == 200
            doc = await resp.json()
        source = daemon.lines["cam"].source
        assert isinstance(source, GenicamSource)
        details = source.details()
    finally:
        await daemon.stop()
    # What a technician sees in the admin API: the camera's process, what the
    # camera accepted, and how frames were handed over.
    assert doc["state"]["device"] == "Machine Vision Games Ltd. Viky serial 0"
    assert doc["details"]["pid"] > 0
    assert doc["details"]["features"]["applied"]["Width"] == 320
    assert doc["details"]["features"]["refused"] == []
    assert doc["details"]["frames_leased"] >= 10
    assert {r.verdict for r in sink.results} == {"pass"}
    assert {(r.frame.width, r.frame.height, r.frame.pixel_format) for r in sink.results} == {
        (320, 240, "Mono8")
    }
    # Slots that never came back would stop leasing after 3 (ring_slots - 1) frames.
    assert details["frames_leased"] >= 10
    assert details["frames_leased"] + details["frames_copied"] == details["delivered"]
    # The daemon never holds more than ring_slots - 1 slots as leases.
    assert details["slots_leased_now"] <= 3


async def test_a_lost_acquisition_process_is_retried_by_the_source_not_the_supervisor(
    write_config,  # type: ignore[no-untyped-def]
) -> None:
    """Two retry layers, not three: the source replaces a dead process (layer 2)
    and the daemon's supervisor, above it, restarts nothing."""
    camera = genicam_camera()
    settings = load_settings(
        write_config(
            {
                "node_id": "gc",
                "cameras": {"cam": camera.model_dump(mode="json", exclude_unset=True)},
                "recipes": {"r": {"checks": {"quality": {}}}},
                "mqtt": {"enabled": False},
                "http": {"port": free_port()},
                "pipeline": {"restart_backoff_min_s": 0.05},
            }
        )
    )
    sink = RecordingSink()
    daemon = Daemon(settings, sink=sink)
    await daemon.start()
    try:
        await wait_for(lambda: len(sink.results) >= 5, timeout_s=30)
        source = daemon.lines["cam"].source
        assert isinstance(source, GenicamSource)
        old_pid = source.pid
        _kill(source)
        await _until(lambda: source.pid not in (None, old_pid) and source.state().connected)
        seen = len(sink.results)
        await wait_for(lambda: len(sink.results) >= seen + 5, timeout_s=30)
        details = source.details()
        restarts = dict(daemon.supervisor.restarts)
    finally:
        await daemon.stop()
    assert details["process_restarts"] == 1
    assert restarts == {}


async def test_a_refused_setting_stops_that_camera_with_the_reason_not_restarts(
    write_config, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 20: a setting the device refuses is a configuration error. The camera
    stops with the message (one log line, no traceback, no restart loop of the
    acquisition process), the state and a metric report it, and the daemon is ready
    because the other camera runs and this one failed for a reported reason."""
    import logging

    bad = genicam_camera(features={"Width": 5000})
    port = free_port()
    settings = load_settings(
        write_config(
            {
                "node_id": "gc",
                "cameras": {
                    "bad": bad.model_dump(mode="json", exclude_unset=True),
                    "good": {"recipe": "r", "fps": 10, "synthetic": {"width": 64, "height": 64}},
                },
                "recipes": {"r": {}},
                "mqtt": {"enabled": False},
                "http": {"port": port},
                "pipeline": {"restart_backoff_min_s": 0.05, "restart_backoff_max_s": 0.1},
            }
        )
    )
    sink = RecordingSink()
    daemon = Daemon(settings, sink=sink)
    with caplog.at_level(logging.INFO):
        await daemon.start()
        try:
            await wait_for(lambda: "acquire:bad" in daemon.supervisor.failed, timeout_s=30)
            await asyncio.sleep(1.0)  # a restart loop would have restarted it ~10 times
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    ready = (resp.status, await resp.json())
                async with http.get(f"http://127.0.0.1:{port}/api/v1/cameras/bad") as resp:
                    doc = await resp.json()
            failed = daemon.runtime.metrics.registry.get_sample_value(
                "edged_camera_failed", {"camera": "bad"}
            )
        finally:
            await daemon.stop()
    reason = daemon.supervisor.failed["acquire:bad"]
    assert "Width: expected an integer in [100, 800], got 5000" in reason
    assert daemon.supervisor.restarts.get("acquire:bad", 0) == 0
    assert ready[0] == 200, ready
    assert failed == 1
    assert "Width: expected an integer" in doc["state"]["last_error"]
    stopped = [r for r in caplog.records if "stopped by a configuration error" in r.getMessage()]
    assert len(stopped) == 1
    assert stopped[0].exc_info is None
    assert not any("crashed" in r.getMessage() for r in caplog.records if "bad" in r.getMessage())


async def test_readyz_waits_for_a_camera_that_has_not_started(
    write_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 20: /readyz was 200 as soon as the tasks were spawned. A camera that
    never started (here: its device is not there, so it keeps retrying) keeps the
    daemon not ready; the other camera alone does not make it ready."""
    import edged.daemon

    monkeypatch.setattr(edged.daemon, "READY_WAIT_S", 1.0)
    missing = genicam_camera(serial="9")
    port = free_port()
    settings = load_settings(
        write_config(
            {
                "node_id": "gc",
                "cameras": {
                    "missing": missing.model_dump(mode="json", exclude_unset=True),
                    "good": {"recipe": "r", "fps": 10, "synthetic": {"width": 64, "height": 64}},
                },
                "recipes": {"r": {}},
                "mqtt": {"enabled": False},
                "http": {"port": port},
            }
        )
    )
    daemon = Daemon(settings, sink=RecordingSink())
    await daemon.start()
    try:
        await asyncio.sleep(0.6)
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/readyz") as resp,
        ):
            status, body = resp.status, await resp.json()
        not_ready = daemon.cameras_not_ready()
    finally:
        await daemon.stop()
    assert not_ready == ["missing"]
    assert status == 503
    assert body["components"]["cameras"] is False
    assert body["components"]["workers"] is True
