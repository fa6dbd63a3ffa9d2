"""End to end in one process: a synthetic line teaches itself, then every verdict
matches the frame's ground truth (fail exactly when a defect was drawn)."""

from __future__ import annotations

from _daemon_helpers import RecordingSink, wait_for

from edged.config import load_settings
from edged.daemon import Daemon


async def test_verdicts_follow_ground_truth(write_config) -> None:
    settings = load_settings(
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
    sink = RecordingSink()
    daemon = Daemon(settings, sink=sink)
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
