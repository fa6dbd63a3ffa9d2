"""End to end in one process: a synthetic line teaches itself, then every verdict
matches the frame's ground truth (fail exactly when a defect was drawn)."""

from __future__ import annotations

from _daemon_helpers import RecordingSink, wait_for

from edged.config import load_settings
from edged.daemon import Daemon


def _settings(write_config):  # type: ignore[no-untyped-def]
    return load_settings(
        write_config(
            {
                "node_id": "e2e",
                "cameras": {
                    "line1": {
                        "recipe": "label",
                        "fps": 20,
                        "on_full": "block",
                        "synthetic": {
                            "width": 640,
                            "height": 512,
                            "pixel_format": "BayerRG8",
                            "defect_rate": 0.5,
                            "seed": 11,
                            "auto_teach": 3,
                        },
                    }
                },
                "recipes": {
                    "label": {
                        "checks": {"quality": {}, "difference": {}},
                        "limits": ['quality.encoding == "OK"', "difference.count == 0"],
                    }
                },
                "mqtt": {"enabled": False},
                "http": {"enabled": False},
            }
        )
    )


async def test_verdicts_follow_ground_truth(write_config) -> None:
    sink = RecordingSink()
    daemon = Daemon(_settings(write_config), sink=sink)
    await daemon.start()
    try:
        await wait_for(lambda: len(sink.results) >= 24, timeout_s=60)
    finally:
        await daemon.stop()
    store = daemon.runtime.references
    info = store.current("label", "line1")
    assert info is not None
    assert info.source == "auto_teach"
    mismatches = []
    defects = 0
    for r in sink.results:
        assert r.ground_truth is not None
        defects += r.ground_truth["defect"]
        expected = "fail" if r.ground_truth["defect"] else "pass"
        if r.verdict != expected:
            mismatches.append((r.frame.seq, r.verdict, r.reasons, r.ground_truth))
        if r.verdict == "fail":
            # The found region overlaps the drawn defect's box.
            box = r.ground_truth["box"]
            assert any(
                reg.x < box["x"] + box["width"]
                and box["x"] < reg.x + reg.width
                and reg.y < box["y"] + box["height"]
                and box["y"] < reg.y + reg.height
                for reg in r.regions
                if reg.check == "difference"
            ), (r.regions, box)
    assert 0 < defects < len(sink.results)
    assert mismatches == []


async def test_damaged_reference_gives_error_verdicts_and_line_goes_on(
    write_config, tmp_path
) -> None:
    sink = RecordingSink()
    daemon = Daemon(_settings(write_config), sink=sink)
    await daemon.start()
    try:
        await wait_for(lambda: len(sink.results) >= 3, timeout_s=60)
        base = tmp_path / "refs"
        current = next(base.rglob("CURRENT"))
        for npz in current.parent.rglob("*.npz"):
            npz.write_bytes(b"damaged by a failing disk")
        current.write_text(current.read_text())  # a new stamp: the store reloads
        n = len(sink.results)
        await wait_for(lambda: len(sink.results) >= n + 6, timeout_s=60)
    finally:
        await daemon.stop()
    late = sink.results[n + 2 :]
    assert late, "the line kept producing results"
    for r in late:
        assert r.verdict == "error"
        assert r.reasons[0].startswith("reference for recipe 'label', camera 'line1': reference ")
        assert "checksum" in r.reasons[0]


async def test_unreadable_reference_is_logged_once_not_per_frame(
    write_config, tmp_path, caplog
) -> None:
    """Issue 20: a prepared reference that cannot be read (here: its file is gone) gave
    one traceback per frame. Now every frame gets an error verdict with the reason,
    the log has one line for it, and when it is usable again that is logged too."""
    import logging

    sink = RecordingSink()
    daemon = Daemon(_settings(write_config), sink=sink)
    await daemon.start()
    try:
        await wait_for(lambda: len(sink.results) >= 3, timeout_s=60)
        current = next((tmp_path / "refs").rglob("CURRENT"))
        [npz] = list(current.parent.rglob("prepared.npz"))
        saved = npz.read_bytes()
        with caplog.at_level(logging.WARNING):
            npz.unlink()
            current.write_text(current.read_text())  # a new stamp: the store reloads
            n = len(sink.results)
            await wait_for(lambda: len(sink.results) >= n + 10, timeout_s=60)
            npz.write_bytes(saved)
            m = len(sink.results)
            await wait_for(
                lambda: len(sink.results) >= m + 3 and sink.results[-1].verdict != "error",
                timeout_s=60,
            )
    finally:
        await daemon.stop()
    errors = [r for r in sink.results[n + 2 : m] if r.verdict == "error"]
    assert len(errors) >= 6
    assert all("unreadable (FileNotFoundError" in r.reasons[0] for r in errors)
    lines = [r.getMessage() for r in caplog.records if r.name == "edged.line"]
    failed = [t for t in lines if "frames get an error verdict until it is fixed" in t]
    assert len(failed) == 1, lines
    assert not any("inspecting frame" in t for t in lines)
    assert any("the reference is usable again" in t for t in lines)
