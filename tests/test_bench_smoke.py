"""The benchmark suite's smoke run, as CI runs it: ``python -m tools.bench --quick``.

Speed is never asserted here (the machine is shared); what is checked is that every
section either reports finite numbers or says it is not available, that sections
whose components are in this checkout do report, and that the figures hang together
(p99 >= p50, the floor below the stages, drops counted in whole frames).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("stages", "pipeline", "peers", "http", "ltu", "e2e", "memory")


def _expected_available() -> set[str]:
    """Sections whose components exist in this checkout and must therefore report."""
    need = {"stages", "pipeline", "memory"}
    if importlib.util.find_spec("skimage") is not None:
        need.update({"peers", "ltu"})
    if (ROOT / "tools" / "bench_http.py").is_file():
        need.add("http")
    publish = importlib.util.find_spec("edged.publish") is not None
    broker = os.access("/usr/sbin/mosquitto", os.X_OK) or (ROOT / "tests" / "_broker.py").is_file()
    if publish and broker:
        need.add("e2e")
    return need


def _metric(section: dict[str, Any], prefix: str) -> dict[str, Any]:
    found = [m for m in section["metrics"] if m["name"].startswith(prefix)]
    assert found, f"no metric starting {prefix!r} in {[m['name'] for m in section['metrics']]}"
    return found[0]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text()), proc.stdout


@pytest.mark.slow
def test_every_section_reports_numbers_or_says_why_not(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    doc, _table = quick_run
    assert doc["schema"] == "edged.bench.v1"
    assert doc["mode"] == "quick"
    assert set(doc["sections"]) == set(SECTIONS)
    for name, sec in doc["sections"].items():
        if not sec["available"]:
            assert sec["note"].startswith("not available: "), (name, sec["note"])
            continue
        assert sec["metrics"], name
        for m in sec["metrics"]:
            assert isinstance(m["value"], int | float), (name, m)
            assert math.isfinite(m["value"]), (name, m)
            assert m["size"] in doc["sizes"] or "x" in m["size"], (name, m)
    missing = sorted(n for n in _expected_available() if not doc["sections"][n]["available"])
    assert not missing, {n: doc["sections"][n]["note"] for n in missing}
    for t in doc["targets"]:
        assert t["status"] in ("PASS", "MISS", "n/a"), t


@pytest.mark.slow
def test_figures_hang_together(quick_run: tuple[dict[str, Any], str]) -> None:
    doc, table = quick_run
    stages = doc["sections"]["stages"]
    read = _metric(stages, "floor: read pass")
    cvt = _metric(stages, "floor: debayer")
    assert read["value"] > 0
    assert cvt["value"] > 0
    debayer = [m for m in stages["metrics"] if m["name"].startswith("debayer Bayer")]
    assert {m["name"][8:16] for m in debayer} == {"BayerRG8", "BayerGR8", "BayerGB8", "BayerBG8"}
    for m in debayer:
        assert m["x_debayer"] == pytest.approx(m["value"] / cvt["value"], rel=1e-3)
        assert m["p99_ms"] >= m["value"]
    pipe = doc["sections"]["pipeline"]
    p50 = _metric(pipe, "per frame p50")
    p99 = _metric(pipe, "per frame p99")
    assert p50["value"] > 0
    assert p50["value"] <= p99["value"]
    assert _metric(pipe, "frames/s sustained")["value"] > 0
    e2e = doc["sections"]["e2e"]
    if e2e["available"]:
        drops = _metric(e2e, "drops")
        assert drops["value"] == int(drops["value"])
        assert drops["value"] == drops["sent"] - drops["received"]
        assert drops["received"] > 0
        assert _metric(e2e, "frame -> subscriber p50")["value"] > 0
    memory = doc["sections"]["memory"]
    assert _metric(memory, "RSS after warm-up")["value"] > 10  # MB: a Python with OpenCV
    # One markdown table: a header, a separator, then rows for every section.
    lines = table.strip().splitlines()
    assert lines[0].startswith("| section | measurement |")
    for name in SECTIONS:
        assert any(line.startswith(f"| {name} |") for line in lines), name
