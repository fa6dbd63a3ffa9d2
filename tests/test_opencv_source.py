"""OpenCV source on real files, folders and a real HTTP MJPEG stream; device discovery."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from _acq_helpers import MjpegServer, read_n

from edged.config import CameraConfig
from edged.core.errors import SourceError
from edged.imaging.pixfmt import decode
from edged.sources.base import EndOfStream
from edged.sources.discovery import list_opencv
from edged.sources.factory import build_source
from edged.sources.opencv import OpenCVSource


def opencv_camera(
    device: int | str, *, fps: float = 1000.0, on_full: str = "block", **options: Any
) -> CameraConfig:
    return CameraConfig.model_validate(
        {
            "source": "opencv",
            "recipe": "r",
            "fps": fps,
            "on_full": on_full,
            "opencv": {"device": device, **options},
        }
    )


def write_video(path: Path, levels: list[int], size_wh: tuple[int, int] = (64, 48)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 25.0, size_wh)
    assert writer.isOpened()
    for level in levels:
        img = np.full((size_wh[1], size_wh[0], 3), level, np.uint8)
        cv2.rectangle(img, (4, 4), (20, 20), (0, 0, 255), -1)  # a red mark: colour order
        writer.write(img)
    writer.release()


async def test_video_file_replays_every_frame_then_ends(tmp_path: Path) -> None:
    video = tmp_path / "line.avi"
    levels = [20 * i for i in range(10)]
    write_video(video, levels)
    src = build_source("cam", opencv_camera(str(video)))
    assert isinstance(src, OpenCVSource)
    await src.start()
    try:
        frames = await read_n(src, 10)
        with pytest.raises(EndOfStream):
            await src.read()
        state = src.state()
    finally:
        await src.stop()
    assert [f.frame_id for f in frames] == list(range(10))
    assert [f.seq for f in frames] == list(range(10))
    for f, level in zip(frames, levels, strict=True):
        assert f.pixel_format == "BGR8"
        assert f.data.shape == (48, 64, 3)
        assert abs(float(np.median(f.data[30:, 30:])) - level) <= 3
        b, g, r = decode(f)[12, 12]
        assert r > 200 and b < 60 and g < 60  # noqa: PT018 - the red mark stays red
    ts = [f.device_ts_ns for f in frames]
    assert ts == sorted(ts)
    assert ts[1] is not None
    assert ts[1] > 0
    assert state.frames == 10
    assert state.dropped == 0


async def test_video_file_loops(tmp_path: Path) -> None:
    video = tmp_path / "loop.avi"
    write_video(video, [0, 100, 200])
    src = OpenCVSource("cam", opencv_camera(str(video), loop=True))
    await src.start()
    try:
        frames = await read_n(src, 8)
    finally:
        await src.stop()
    medians = [round(float(np.median(f.data[30:, 30:])) / 100) for f in frames]
    assert medians == [0, 1, 2, 0, 1, 2, 0, 1]


async def test_image_folder_in_name_order_with_exact_pixels(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    grey = rng.integers(0, 256, (30, 40), dtype=np.uint8)
    colour = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    deep = rng.integers(0, 65536, (30, 40), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "a.png"), grey)
    cv2.imwrite(str(tmp_path / "b.png"), colour)
    cv2.imwrite(str(tmp_path / "c.png"), deep)
    (tmp_path / "d_broken.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("ignored")
    src = OpenCVSource("cam", opencv_camera(str(tmp_path)))
    await src.start()
    try:
        frames = await read_n(src, 3)
        with pytest.raises(EndOfStream):
            await src.read()
        state = src.state()
        details = src.details()
    finally:
        await src.stop()
    assert [f.pixel_format for f in frames] == ["Mono8", "BGR8", "Mono16"]
    np.testing.assert_array_equal(frames[0].data, grey)
    np.testing.assert_array_equal(frames[1].data, colour)
    np.testing.assert_array_equal(frames[2].data, deep)
    np.testing.assert_array_equal(decode(frames[2]), (deep >> 8).astype(np.uint8))
    assert [f.frame_id for f in frames] == [0, 1, 2]
    assert "d_broken.png: not a readable image" in (state.last_error or "")
    assert details["skipped_files"] == ["d_broken.png: not a readable image"]


async def test_block_loses_nothing_and_drop_oldest_counts(tmp_path: Path) -> None:
    for i in range(12):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), np.full((8, 8), i, np.uint8))
    blocking = OpenCVSource("cam", opencv_camera(str(tmp_path), on_full="block"))
    await blocking.start()
    try:
        await asyncio.sleep(0.2)
        frames = await read_n(blocking, 12)
    finally:
        await blocking.stop()
    assert [int(f.data[0, 0]) for f in frames] == list(range(12))
    assert blocking.state().dropped == 0

    dropping = OpenCVSource("cam", opencv_camera(str(tmp_path), on_full="drop_oldest"))
    await dropping.start()
    try:
        await _until(lambda: dropping.state().dropped >= 10)  # nobody read meanwhile
        kept = await read_n(dropping, 2)
        with pytest.raises(EndOfStream):
            await dropping.read()
    finally:
        await dropping.stop()
    assert [int(f.data[0, 0]) for f in kept] == [10, 11]
    assert dropping.state().dropped == 10


async def test_missing_inputs_say_what_was_expected(tmp_path: Path) -> None:
    cases = {
        str(tmp_path / "nope.avi"): "expected an existing video file",
        str(tmp_path / "no-folder" / "x.png"): "expected an existing image folder",
        "/dev/video99": "expected an openable device",
    }
    (tmp_path / "empty").mkdir()
    cases[str(tmp_path / "empty")] = "expected image files in"
    for device, text in cases.items():
        src = OpenCVSource("cam", opencv_camera(device))
        with pytest.raises(SourceError, match=text):
            await src.start()
        assert text in (src.state().last_error or "")


async def test_http_stream_reconnects_after_the_camera_goes_away() -> None:
    server = MjpegServer()
    server.start()
    src = OpenCVSource("cam", opencv_camera(server.url, on_full="drop_oldest", reconnect_s=0.2))
    await src.start()
    try:
        first = await read_n(src, 3)
        assert all(f.data.shape == (48, 64, 3) for f in first)
        server.stop()
        await _until(lambda: not src.state().connected)
        assert server.url in (src.state().last_error or "")
        await asyncio.sleep(0.5)  # a few failed reopen attempts while the camera is away
        server.start()  # same port
        await _until(lambda: src.state().reconnects == 1)
        after = await read_n(src, 3)
        state = src.state()
    finally:
        await src.stop()
        server.stop()
    assert state.connected
    # The restarted camera counts its frames from 0 again: grey levels restart low.
    assert min(float(np.median(f.data)) for f in after) < 60


def test_list_opencv_maps_stable_links_and_names(tmp_path: Path) -> None:
    dev, sysfs = tmp_path / "dev", tmp_path / "sys"
    (dev / "v4l" / "by-id").mkdir(parents=True)
    (dev / "v4l" / "by-path").mkdir(parents=True)
    for n in (0, 1, 10):
        (dev / f"video{n}").write_bytes(b"")
        (sysfs / f"video{n}").mkdir(parents=True)
    (sysfs / "video0" / "name").write_text("HD Pro Webcam C920\n")
    (sysfs / "video1" / "name").write_text("HD Pro Webcam C920\n")
    os.symlink("../../video0", dev / "v4l" / "by-id" / "usb-046d_C920_ABC123-video-index0")
    os.symlink("../../video1", dev / "v4l" / "by-id" / "usb-046d_C920_ABC123-video-index1")
    by_path = dev / "v4l" / "by-path" / "pci-0000:00:14.0-usb-0:1:1.0-video-index0"
    os.symlink("../../video0", by_path)
    (dev / "videoX").write_bytes(b"")  # not a video node name
    found = list_opencv(dev, sysfs)
    assert [d.index for d in found] == [0, 1, 10]
    first = found[0]
    assert first.path == str(dev / "video0")
    assert first.name == "HD Pro Webcam C920"
    assert first.by_id == (str(dev / "v4l" / "by-id" / "usb-046d_C920_ABC123-video-index0"),)
    assert first.by_path == (str(by_path),)
    assert first.capture is None  # a plain file answers no V4L2 query
    assert found[2].name == ""
    assert found[2].by_id == ()
    assert first.to_dict()["by_id"] == list(first.by_id)
    assert list_opencv(tmp_path / "missing", sysfs) == []


async def _until(cond: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            msg = "condition not met in time"
            raise AssertionError(msg)
        await asyncio.sleep(0.02)
