"""The on-disk ring of failed parts (count and byte caps, restart) and verdict rates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edged.core.errors import NotFoundError
from edged.core.result import FrameInfo, RegionModel, Result, new_result_id
from edged.runtime.failures import FailureRing
from edged.runtime.rates import VerdictRates

JPEG = b"\xff\xd8" + b"j" * 998  # 1000 bytes: only stored and served, never decoded here


def failed(camera: str, seq: int) -> Result:
    return Result(
        id=new_result_id(),
        seq=seq,
        node="n1",
        camera=camera,
        recipe="label",
        ts="2026-01-01T00:00:00.000Z",
        frame=FrameInfo(width=8, height=8, pixel_format="Mono8", seq=seq, host_ts="t"),
        verdict="fail",
        reasons=["difference.count = 2, limit == 0"],
        regions=[
            RegionModel(x=1, y=2, width=3, height=4, label="defect", check="difference"),
            RegionModel(x=5, y=5, width=2, height=2, label="defect", check="difference"),
        ],
    )


def test_keeps_the_newest_parts_per_camera(tmp_path: Path) -> None:
    ring = FailureRing(tmp_path, keep_per_camera=3, max_bytes=10**9)
    kept = [ring.add(failed("cam1", i), JPEG) for i in range(5)]
    ring.add(failed("cam2", 0), JPEG)
    assert [p.seq for p in ring.parts("cam1")] == [4, 3, 2]  # newest first
    assert [p.camera for p in ring.parts()] == ["cam2", "cam1", "cam1", "cam1"]
    assert sorted(f.name for f in (tmp_path / "cam1").iterdir()) == sorted(
        f"{p.id}{s}" for p in kept[2:] for s in (".jpg", ".json")
    )
    part = ring.parts("cam1")[0]
    assert part.reasons == ("difference.count = 2, limit == 0",)
    assert part.regions == 2
    assert ring.image("cam1", part.id) == JPEG
    assert ring.result("cam1", part.id)["seq"] == 4


def test_the_byte_cap_drops_the_oldest_of_any_camera(tmp_path: Path) -> None:
    one = FailureRing(tmp_path / "probe", keep_per_camera=10, max_bytes=10**9)
    size = one.add(failed("cam1", 0), JPEG).size_bytes
    ring = FailureRing(tmp_path / "ring", keep_per_camera=10, max_bytes=3 * size + 10)
    ring.add(failed("cam1", 0), JPEG)
    ring.add(failed("cam2", 0), JPEG)
    ring.add(failed("cam1", 1), JPEG)
    ring.add(failed("cam2", 1), JPEG)  # the fourth: cam1 #0, the oldest of all, goes
    assert [(p.camera, p.seq) for p in ring.parts()] == [("cam2", 1), ("cam1", 1), ("cam2", 0)]
    assert ring.total_bytes == sum(p.size_bytes for p in ring.parts()) <= 3 * size + 10
    on_disk = sum(f.stat().st_size for f in (tmp_path / "ring").rglob("*") if f.is_file())
    assert on_disk == ring.total_bytes


def test_a_restart_finds_the_parts_and_removes_strays(tmp_path: Path) -> None:
    ring = FailureRing(tmp_path, keep_per_camera=5, max_bytes=10**9)
    ids = [ring.add(failed("cam1", i), JPEG).id for i in range(3)]
    (tmp_path / "cam1" / ".half.jpg.tmp").write_bytes(b"x")  # an interrupted write
    orphan = new_result_id()
    (tmp_path / "cam1" / f"{orphan}.jpg").write_bytes(JPEG)  # its Result never written
    broken = new_result_id()
    (tmp_path / "cam1" / f"{broken}.json").write_text("{not json")
    again = FailureRing(tmp_path, keep_per_camera=2, max_bytes=10**9)  # a smaller cap now
    assert [p.id for p in again.parts("cam1")] == ids[:0:-1]
    assert sorted(f.name for f in (tmp_path / "cam1").iterdir()) == sorted(
        f"{i}{s}" for i in ids[1:] for s in (".jpg", ".json")
    )
    assert again.total_bytes == sum(p.size_bytes for p in again.parts())


@pytest.mark.parametrize("part_id", ["../../etc/passwd", "nope", ""])
def test_only_kept_parts_are_served(tmp_path: Path, part_id: str) -> None:
    ring = FailureRing(tmp_path, keep_per_camera=5, max_bytes=10**9)
    ring.add(failed("cam1", 0), JPEG)
    with pytest.raises(NotFoundError, match="expected the id of a kept part"):
        ring.image("cam1", part_id)
    with pytest.raises(NotFoundError):
        ring.result("cam9", ring.parts()[0].id)


def test_the_result_json_is_the_results(tmp_path: Path) -> None:
    ring = FailureRing(tmp_path, keep_per_camera=5, max_bytes=10**9)
    result = failed("cam1", 7)
    ring.add(result, JPEG)
    assert ring.result("cam1", result.id) == result.to_json_dict()
    path = tmp_path / "cam1" / f"{result.id}.json"
    assert json.loads(path.read_text()) == result.to_json_dict()


def test_bad_caps_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keep_per_camera >= 1"):
        FailureRing(tmp_path, keep_per_camera=0, max_bytes=1)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_verdict_rates_over_the_last_minute_and_hour() -> None:
    clock = Clock()
    rates = VerdictRates(clock)
    for _ in range(30):  # 30 results over 30 s: 10 fail
        for verdict in ("pass", "pass", "fail"):
            rates.add("cam1", verdict)
        clock.now += 3.0
    clock.now -= 3.0  # at the last result: t = 1087 s
    snap = rates.snapshot("cam1")
    assert snap["total"] == {"pass": 60, "fail": 30, "error": 0}
    minute = snap["last_minute"]
    assert (minute["pass"], minute["fail"], minute["error"]) == (40, 20, 0)  # the last 60 s
    assert minute["fail_per"] == pytest.approx(100 * 20 / 60, abs=0.01)
    assert minute["per_min"] == 60.0  # 60 results in the last 60 s (t = 1030 ... 1087)
    hour = snap["last_hour"]
    assert (hour["pass"], hour["fail"]) == (60, 30)
    assert hour["per_min"] == pytest.approx(90 * 60 / 88, abs=0.01)  # ran 88 s, not an hour
    clock.now += 3600
    later = rates.snapshot("cam1")
    assert later["last_hour"]["pass"] == 0
    assert later["last_hour"]["fail_per"] is None
    assert later["total"]["pass"] == 60
    assert rates.snapshot("other")["total"] == {"pass": 0, "fail": 0, "error": 0}
    with pytest.raises(ValueError, match="verdict"):
        rates.add("cam1", "maybe")
