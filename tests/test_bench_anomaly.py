"""tools/bench_anomaly.py runs end to end on a small slice and writes its figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tools.bench_anomaly import auroc, main


def test_auroc_known_answers() -> None:
    assert auroc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 1.0
    assert auroc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 0.0
    assert auroc(np.array([1.0, 1.0]), np.array([1.0])) == 0.5  # ties count half
    assert auroc(np.array([0.0, 2.0]), np.array([1.0])) == 0.5


@pytest.mark.slow
def test_quick_run_writes_the_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "anomaly.json"
    assert main(["--quick", "--size", "128", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["schema"] == "edged.bench.anomaly.v1"
    methods = {r["method"] for r in doc["rows"]}
    assert {"anomaly:filterbank", "anomaly:dog", "variation"} <= methods
    surfaces = {r["surface"] for r in doc["rows"]}
    assert surfaces == {"granulate", "brick"}
    for row in doc["rows"]:
        assert 0.0 <= row["image_auroc"] <= 1.0
        assert row["ms_per_image"]["median"] > 0
    best = next(
        r for r in doc["rows"] if (r["surface"], r["method"]) == ("granulate", "anomaly:filterbank")
    )
    assert best["image_auroc"] >= 0.9  # the same check as the engine tests, through the tool
    assert "load average" in capsys.readouterr().out


def test_photo_positions_train_on_the_top_half_and_test_on_the_bottom() -> None:
    from tools.bench_anomaly import _photo_positions

    rows = (np.arange(512) // 2).astype(np.uint8)  # the pixel value says its row
    image = np.repeat(rows[:, None], 512, axis=1)
    s = _photo_positions("gravel", image, n_train=30, n_test=10)
    assert len(s.train) == 30
    assert len(s.good) == len(s.bad) == len(s.masks) == 10
    assert all(c.shape == (128, 128) for c in s.train + s.good)
    assert max(int(c.max()) for c in s.train) < 128  # rows 0..255
    assert min(int(c.min()) for c in s.good) >= 128  # rows 256..511
    # which training crops overlap: told to training, left out together
    assert s.overlapping is not None
    assert len(s.overlapping) == 30
    assert all(i not in others for i, others in enumerate(s.overlapping))
    assert all(i in s.overlapping[j] for i, others in enumerate(s.overlapping) for j in others)


def test_overlaps_known_answer() -> None:
    from tools.bench_anomaly import overlaps

    corners = [(0, 0), (0, 127), (0, 128), (127, 127), (200, 0)]
    assert overlaps(corners, 128) == [[1, 3], [0, 2, 3], [1, 3], [0, 1, 2, 4], [3]]
