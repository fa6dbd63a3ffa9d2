"""Reference store: versions, rollback, atomic writes (real crashes), caching, input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from _refs_helpers import capture, paint_square, world

from edged.checks.difference import compare
from edged.checks.prepared import ReferenceParams
from edged.config import RecipeConfig
from edged.core.errors import EdgedError, InputError, NotFoundError
from edged.core.frames import Frame
from edged.references import InMemoryReferences, ReferenceStore

SIZE = (320, 240)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wld() -> np.ndarray:
    return world(SIZE, seed=21)


@pytest.fixture(scope="module")
def goods(wld: np.ndarray) -> list[np.ndarray]:
    return [capture(wld, dx=0.5 * i, noise=1.0, seed=100 + i) for i in range(3)]


def test_teach_then_load_compares_like_the_in_memory_reference(
    tmp_path: Path, wld: np.ndarray, goods: list[np.ndarray]
) -> None:
    store = ReferenceStore(tmp_path)
    assert store.teach("label", "cam1", goods[:1], created_by="tester", note="first") == "v1"
    info = store.current("label", "cam1")
    assert info is not None
    assert (info.version, info.n_images, info.kind, info.current) == (1, 1, "single", True)
    assert info.size_wh == SIZE
    assert str(info) == "label/cam1 v1: 1 image(s) 320x240, single model (current)"
    manifest = json.loads((tmp_path / "label/cam1/v0001/manifest.json").read_text())
    assert manifest["schema"] == "edged.reference.v1"
    assert manifest["created_by"] == "tester"
    assert manifest["note"] == "first"
    assert manifest["images"][0]["width"] == 320
    assert (tmp_path / "label/cam1/CURRENT").read_text().strip() == "v0001"

    loaded = ReferenceStore(tmp_path).load("label", "cam1")
    q = paint_square(
        capture(wld, dx=3.0, dy=-2.0, angle_deg=1.0, noise=2.0, seed=5), 150, 90, 10, 70
    )
    a = compare(loaded, q)
    b = compare(InMemoryReferences.from_images(goods[:1]).prepared("x", "y"), q)  # type: ignore[arg-type]
    assert a.count == b.count == 1
    assert a.regions[0].box2_xywh == b.regions[0].box2_xywh
    np.testing.assert_array_equal(store.images("label", "cam1")[0], goods[0])


def test_versions_rollback_and_delete(tmp_path: Path, goods: list[np.ndarray]) -> None:
    store = ReferenceStore(tmp_path)
    store.teach("r", "c", goods[:1])
    v2 = store.add_version("r", "c", goods)
    assert v2.version == 2
    assert v2.version_id == "v2"
    assert v2.kind == "variation"
    assert [i.version for i in store.versions("r", "c")] == [1, 2]
    assert [i.current for i in store.versions("r", "c")] == [False, True]
    prepared = store.prepared("r", "c")
    assert prepared is not None
    assert prepared.n_images == 3
    assert store.rollback("r", "c") == "v1"
    back = store.current("r", "c")
    assert back is not None
    assert back.version == 1
    rolled = store.prepared("r", "c")
    assert rolled is not None
    assert rolled.n_images == 1
    with pytest.raises(NotFoundError, match="no version before v1"):
        store.rollback("r", "c")
    assert store.rollback("r", "c", "v2") == "v2"
    with pytest.raises(InputError, match="v2 is current"):
        store.delete("r", "c", 2)
    store.delete("r", "c", "1")
    assert [i.version for i in store.versions("r", "c")] == [2]
    with pytest.raises(NotFoundError, match=r"expected a version in \[2\], got 7"):
        store.rollback("r", "c", 7)
    assert [i.recipe for i in store.list_references()] == ["r"]
    store.delete("r", "c")
    assert store.prepared("r", "c") is None
    assert store.list_references() == []
    with pytest.raises(NotFoundError, match="teach one with `edged teach --recipe r --camera c"):
        store.load("r", "c")


def test_old_versions_are_pruned(tmp_path: Path, goods: list[np.ndarray]) -> None:
    store = ReferenceStore(tmp_path, keep_versions=2)
    for _ in range(4):
        store.teach("r", "c", goods[:1])
    assert [i.version for i in store.versions("r", "c")] == [3, 4]


_CRASH = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, {root!r})
    sys.path.insert(0, {tests!r})
    import numpy as np
    from _refs_helpers import capture, world
    from edged.references import ReferenceStore

    real = np.savez
    def crash(*args, **kwargs):  # the process dies while writing prepared.npz
        os._exit(17)
    np.savez = crash
    img = capture(world((320, 240), seed=21), noise=1.0, seed=999)
    ReferenceStore({store!r}).teach("r", "c", [img])
    """
)


def test_a_crash_mid_write_leaves_the_previous_version_intact(
    tmp_path: Path, goods: list[np.ndarray]
) -> None:
    store = ReferenceStore(tmp_path)
    store.teach("r", "c", goods[:1])
    before = store.load("r", "c").mean_image()
    script = _CRASH.format(root=str(ROOT), tests=str(ROOT / "tests"), store=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == 17, proc.stderr.decode()
    leftovers = [p.name for p in (tmp_path / "r/c").iterdir() if p.name.startswith(".tmp-")]
    assert len(leftovers) == 1  # the half-written version, invisible to readers
    fresh = ReferenceStore(tmp_path)
    assert [i.version for i in fresh.versions("r", "c")] == [1]
    np.testing.assert_array_equal(fresh.load("r", "c").mean_image(), before)
    # The next writer cleans up after the crashed one and numbers on from v1.
    assert fresh.teach("r", "c", goods[:1]) == "v2"
    assert not [p for p in (tmp_path / "r/c").iterdir() if p.name.startswith(".tmp-")]


def test_a_failure_before_the_pointer_moves_keeps_the_old_current(
    tmp_path: Path, goods: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ReferenceStore(tmp_path)
    store.teach("r", "c", goods[:1])

    def fail(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("edged.references._store.set_current", fail)
    with pytest.raises(OSError, match="disk full"):
        store.teach("r", "c", goods)
    current = ReferenceStore(tmp_path).current("r", "c")
    assert current is not None
    assert current.version == 1  # v2 exists on disk but never became current
    assert current.n_images == 1


def test_a_damaged_reference_is_reported(tmp_path: Path, goods: list[np.ndarray]) -> None:
    store = ReferenceStore(tmp_path)
    store.teach("r", "c", goods[:1])
    blob = tmp_path / "r/c/v0001/prepared.npz"
    data = bytearray(blob.read_bytes())
    data[-10] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(EdgedError, match="does not match its manifest checksum"):
        ReferenceStore(tmp_path).load("r", "c")
    (tmp_path / "r/c/CURRENT").write_text("v0009\n")
    with pytest.raises(EdgedError, match="CURRENT names 'v0009'"):
        ReferenceStore(tmp_path).prepared("r", "c")


def test_prepared_is_cached_and_follows_other_writers(
    tmp_path: Path, goods: list[np.ndarray]
) -> None:
    daemon = ReferenceStore(tmp_path)
    daemon.teach("r", "c", goods[:1])
    first = daemon.prepared("r", "c")
    assert daemon.prepared("r", "c") is first  # no reload per frame
    ReferenceStore(tmp_path).teach("r", "c", goods)  # e.g. `edged teach` in another process
    second = daemon.prepared("r", "c")
    assert second is not first
    assert second is not None
    assert second.n_images == 3


def test_recipe_options_decide_the_preparation(tmp_path: Path, goods: list[np.ndarray]) -> None:
    plain = ReferenceStore(tmp_path)
    plain.teach("r", "c", goods[:1])
    assert plain.load("r", "c").work_wh == SIZE
    recipes = {"r": RecipeConfig(checks={"difference": {"resolution": 160}})}
    tuned = ReferenceStore(tmp_path, recipes=recipes)
    ref = tuned.load("r", "c")  # stored at 1024: prepared again from the stored images
    assert ref.work_wh == (160, 120)
    assert ref.params == ReferenceParams(resolution=160)
    assert tuned.add_version("r", "c", goods[:1]).params["resolution"] == 160


def test_names_are_checked(tmp_path: Path, goods: list[np.ndarray]) -> None:
    store = ReferenceStore(tmp_path)
    for bad in ("../etc", "a/b", "", ".hidden", "x" * 65):
        with pytest.raises(InputError, match="recipe: expected 1-64 characters"):
            store.teach(bad, "c", goods[:1])
    with pytest.raises(InputError, match="camera: expected"):
        store.prepared("r", "cam 1")


def test_teach_from_files(tmp_path: Path, goods: list[np.ndarray]) -> None:
    files = []
    for i, img in enumerate(goods):
        path = tmp_path / f"good{i}.png"
        cv2.imwrite(str(path), img)
        files.append(path)
    store = ReferenceStore(tmp_path / "refs")
    info = store.teach_files("r", "c", files)
    assert info.n_images == 3
    assert info.source == "files"
    manifest = json.loads((info.path / "manifest.json").read_text())
    assert [e["source_name"] for e in manifest["images"]] == ["good0.png", "good1.png", "good2.png"]
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(InputError, match=r"junk\.png: expected a PNG/JPEG/BMP/TIFF image"):
        store.teach_files("r", "c", [junk])
    with pytest.raises(InputError, match=r"missing\.png: expected a readable image file"):
        store.teach_files("r", "c", [tmp_path / "missing.png"])


def test_teach_from_camera_frames(tmp_path: Path, goods: list[np.ndarray]) -> None:
    frames = [
        Frame(
            data=img,
            pixel_format="Mono8",
            width=320,
            height=240,
            camera="cam1",
            seq=i,
            host_ts_ns=0,
        )
        for i, img in enumerate(goods)
    ]
    info = ReferenceStore(tmp_path).teach_frames("r", "cam1", frames)
    assert info.source == "camera"
    assert info.n_images == 3


def test_teach_rejects_unusable_images(tmp_path: Path, goods: list[np.ndarray]) -> None:
    store = ReferenceStore(tmp_path)
    with pytest.raises(InputError, match=r"expected 1\.\.1000 images, got 0"):
        store.teach("r", "c", [])
    with pytest.raises(InputError, match=r"reference image 1: expected the shape of image 0"):
        store.teach("r", "c", [goods[0], goods[1][:200]])
    other = capture(world(SIZE, seed=5), noise=1.0)
    with pytest.raises(InputError, match="reference image 1 does not register onto image 0"):
        store.teach("r", "c", [goods[0], other])
    assert store.current("r", "c") is None
    assert not os.path.exists(tmp_path / "r" / "c" / "v0001")


def test_a_pending_version_is_listed_but_not_active_until_confirmed(
    tmp_path: Path, goods: list[np.ndarray]
) -> None:
    """Issue 20: an MQTT-taught reference waits for a confirm (a second command, or the
    admin API's rollback to that version)."""
    store = ReferenceStore(tmp_path / "refs", keep_versions=1)
    assert store.teach("r", "cam", goods[:1]) == "v1"
    assert store.teach("r", "cam", goods[1:2], activate=False) == "v2"
    [entry] = store.entries()
    assert entry["active"] == "v1"
    assert [v["version"] for v in entry["versions"]] == ["v1", "v2"]  # kept despite keep=1
    prepared_before = store.prepared("r", "cam")
    with pytest.raises(NotFoundError, match=r"expected a pending version in \['v2'\], got 'v1'"):
        store.activate_pending("r", "cam", "v1")
    assert store.activate_pending("r", "cam", "v2") == "v2"
    current = store.current("r", "cam")
    assert current is not None
    assert current.version_id == "v2"
    assert store.prepared("r", "cam") is not prepared_before
    # the admin API's confirm: roll "back" to a pending version
    assert store.teach("r", "cam", goods[2:3], activate=False) == "v3"
    assert store.rollback("r", "cam", "v3") == "v3"
