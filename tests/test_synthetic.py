"""The synthetic line: deterministic frames, nuisance within bounds, true defect boxes."""

from __future__ import annotations

import asyncio

import cv2
import numpy as np
import pytest

from edged.config import CameraConfig, SyntheticConfig
from edged.imaging import pixfmt
from edged.sources.base import EndOfStream
from edged.sources.synthetic import SyntheticLine, SyntheticSource, mosaic

SMALL = {"width": 320, "height": 256}


def test_frames_are_deterministic_per_seed_and_seq() -> None:
    a = SyntheticLine(SyntheticConfig(**SMALL, seed=3)).render(5)
    b = SyntheticLine(SyntheticConfig(**SMALL, seed=3)).render(5)
    c = SyntheticLine(SyntheticConfig(**SMALL, seed=3)).render(6)
    assert np.array_equal(a.image, b.image)
    assert a.truth == b.truth
    assert not np.array_equal(a.image, c.image)


def _noise_only(sigma: float, seed: int = 3) -> SyntheticLine:
    still = {"shift_px": 0, "rotation_deg": 0, "gain": 0, "offset": 0, "noise_sigma": sigma}
    return SyntheticLine(SyntheticConfig(**SMALL, seed=seed, nuisance=still))


def test_sensor_noise_has_the_configured_sigma_and_differs_per_frame() -> None:
    line = _noise_only(4.0)
    mid = line.nominal.astype(np.int16)
    usable = (mid > 20) & (mid < 235)  # away from saturation, where the add clips
    a = line.render(1, defect=False).image.astype(np.int16) - mid
    b = line.render(2, defect=False).image.astype(np.int16) - mid
    assert abs(float(a[usable].std()) - 4.0) < 0.2
    assert abs(float(a[usable].mean())) < 0.1
    corr = np.corrcoef(a[usable].ravel(), b[usable].ravel())[0, 1]
    assert abs(corr) < 0.05  # per pixel, two frames' noise is unrelated
    again = _noise_only(4.0).render(1, defect=False).image.astype(np.int16) - mid
    assert np.array_equal(a, again)  # deterministic in (seed, seq)


def test_no_noise_leaves_the_part_untouched() -> None:
    line = _noise_only(0.0)
    assert np.array_equal(line.render(1, defect=False).image, line.nominal)


def test_defect_rate_is_respected() -> None:
    line = SyntheticLine(SyntheticConfig(**SMALL, defect_rate=0.3))
    rate = np.mean([line.render(i).truth["defect"] for i in range(400)])
    assert 0.24 <= rate <= 0.36


def test_nuisance_stays_within_configured_bounds() -> None:
    cfg = SyntheticConfig(
        **SMALL, nuisance={"shift_px": 3, "rotation_deg": 0.5, "gain": 0.05, "offset": 4}
    )
    line = SyntheticLine(cfg)
    for i in range(50):
        t = line.render(i).truth
        assert all(abs(v) <= 3 for v in t["shift_px"])
        assert abs(t["rotation_deg"]) <= 0.5
        assert 0.95 <= t["gain"] <= 1.05
        assert abs(t["offset"]) <= 4


def test_without_nuisance_a_good_frame_is_the_nominal_part() -> None:
    cfg = SyntheticConfig(
        **SMALL,
        nuisance={"shift_px": 0, "rotation_deg": 0, "gain": 0, "offset": 0, "noise_sigma": 0},
    )
    line = SyntheticLine(cfg)
    frame = line.render(0, defect=False)
    assert np.array_equal(frame.image, line.nominal)


@pytest.mark.parametrize("seq", range(12))
def test_ground_truth_box_covers_the_defect(seq: int) -> None:
    """The only pixels that differ from the nominal part lie inside the truth box."""
    cfg = SyntheticConfig(
        width=640,
        height=512,
        nuisance={"shift_px": 0, "rotation_deg": 0, "gain": 0, "offset": 0, "noise_sigma": 0},
    )
    line = SyntheticLine(cfg)
    frame = line.render(seq, defect=True)
    diff = cv2.absdiff(frame.image, line.nominal).max(axis=2) > 20
    ys, xs = np.nonzero(diff)
    assert xs.size > 10, frame.truth
    box = frame.truth["box"]
    assert box["x"] <= xs.min()
    assert xs.max() < box["x"] + box["width"]
    assert box["y"] <= ys.min()
    assert ys.max() < box["y"] + box["height"]
    # ... and the box is tight: the changed pixels span most of it.
    assert (xs.max() - xs.min() + 1) >= 0.5 * box["width"]
    assert frame.truth["kind"] in ("scratch", "spot", "missing", "stain")


def test_box_follows_the_nuisance_shift() -> None:
    still = SyntheticConfig(
        width=640, height=512,
        nuisance={"shift_px": 0, "rotation_deg": 0, "gain": 0, "offset": 0, "noise_sigma": 0},
    )  # fmt: skip
    moving = still.model_copy(
        update={"nuisance": still.nuisance.model_copy(update={"shift_px": 8})}
    )
    a = SyntheticLine(still).render(4, defect=True).truth
    b = SyntheticLine(moving).render(4, defect=True).truth
    dx, dy = b["shift_px"]
    assert abs(b["box"]["x"] - (a["box"]["x"] + dx)) <= 1.5
    assert abs(b["box"]["y"] - (a["box"]["y"] + dy)) <= 1.5


@pytest.mark.parametrize("pattern", ["RG", "GR", "GB", "BG"])
def test_bayer_output_decodes_back_to_the_colours(pattern: str) -> None:
    """Flat colour patches survive mosaic (PFNC order) + edged's debayer."""
    img = np.zeros((64, 64, 3), np.uint8)
    img[:, :32] = (200, 40, 10)  # blue-ish (BGR)
    img[:, 32:] = (10, 60, 220)  # red-ish
    raw = mosaic(img, pattern)
    back = pixfmt.debayer(raw, pattern)  # type: ignore[arg-type]
    assert np.abs(back[8:56, 4:28].astype(int) - (200, 40, 10)).max() <= 2
    assert np.abs(back[8:56, 36:60].astype(int) - (10, 60, 220)).max() <= 2


@pytest.mark.parametrize("fmt", ["Mono8", "BGR8", "RGB8", "BayerRG8", "BayerBG8"])
async def test_source_emits_frames_in_the_configured_format(fmt: str) -> None:
    cfg = CameraConfig(
        recipe="r", fps=200, synthetic=SyntheticConfig(**SMALL, pixel_format=fmt, frames=3)
    )
    src = SyntheticSource("c", cfg)
    await src.start()
    frames = [await src.read() for _ in range(3)]
    with pytest.raises(EndOfStream):
        await src.read()
    await src.stop()
    assert [f.seq for f in frames] == [0, 1, 2]
    f = frames[0]
    assert f.pixel_format == fmt
    assert f.resolution_wh == (320, 256)
    expected = (256, 320) if fmt == "Mono8" or fmt.startswith("Bayer") else (256, 320, 3)
    assert f.data.shape == expected
    assert pixfmt.decode(f).shape[:2] == (256, 320)
    assert f.ground_truth is not None
    assert f.ground_truth["seq"] == 0


async def test_source_paces_at_the_configured_fps() -> None:
    cfg = CameraConfig(recipe="r", fps=20, synthetic=SyntheticConfig(**SMALL))
    src = SyntheticSource("c", cfg)
    await src.start()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for _ in range(11):
        await src.read()
    elapsed = loop.time() - t0
    await src.stop()
    assert 0.4 <= elapsed <= 1.5  # 10 periods of 50 ms, generous for a loaded machine


@pytest.mark.parametrize(("width", "height"), [(64, 64), (128, 96), (97, 65)])
def test_smallest_frames_get_defects_inside_them(width: int, height: int) -> None:
    line = SyntheticLine(SyntheticConfig(width=width, height=height, defect_rate=1.0))
    for seq in range(20):
        box = line.render(seq).truth["box"]
        assert box["x"] >= 0
        assert box["y"] >= 0
        assert box["x"] + box["width"] <= width
        assert box["y"] + box["height"] <= height


async def test_triggered_line_emits_one_frame_per_trigger() -> None:
    cfg = CameraConfig(recipe="r", synthetic=SyntheticConfig(**SMALL, triggered=True))
    src = SyntheticSource("c", cfg)
    assert src.triggerable
    await src.start()
    pending = asyncio.ensure_future(src.read())
    await asyncio.sleep(0.2)
    assert not pending.done()  # no trigger, no frame
    await src.trigger()
    await src.trigger()
    first = await asyncio.wait_for(pending, 5)
    second = await asyncio.wait_for(src.read(), 5)
    assert (first.seq, second.seq) == (0, 1)
    third = asyncio.ensure_future(src.read())
    await asyncio.sleep(0.1)
    assert not third.done()  # two triggers, two frames
    third.cancel()
    await src.stop()


async def test_free_running_line_refuses_trigger() -> None:
    from edged.core.errors import InputError

    src = SyntheticSource("c", CameraConfig(recipe="r", synthetic=SyntheticConfig(**SMALL)))
    assert not src.triggerable
    with pytest.raises(InputError, match="expected a source with a software trigger"):
        await src.trigger()
