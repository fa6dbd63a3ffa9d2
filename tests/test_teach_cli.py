"""``edged teach``: store, list, roll back and delete references from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from _refs_helpers import capture, world

from edged.cli.main import main
from edged.references import ReferenceStore

ROOT = Path(__file__).parent.parent
CONFIG = {
    "cameras": {"cam1": {"recipe": "parts", "synthetic": {"width": 320, "height": 240}}},
    "recipes": {
        "parts": {
            "checks": {"difference": {"resolution": 256}},
            "limits": ["difference.count == 0"],
        }
    },
    "mqtt": {"enabled": False},
    "http": {"enabled": False},
}


@pytest.fixture
def setup(
    tmp_path: Path, write_config: Callable[[dict[str, Any]], Path]
) -> tuple[Path, list[Path]]:
    wld = world((320, 240), seed=51)
    files = []
    for i in range(3):
        path = tmp_path / "good" / f"{i:02d}.png"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), capture(wld, dx=0.4 * i, noise=1.0, seed=i))
        files.append(path)
    return write_config(CONFIG), files


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["teach", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_teach_list_rollback_delete(
    setup: tuple[Path, list[Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, files = setup
    base = ["--config", str(cfg), "--recipe", "parts", "--camera", "cam1"]
    code, out, err = _run(capsys, *base, str(files[0]), "--note", "first", "--by", "qa")
    assert code == 0, err
    assert out.strip() == "taught parts/cam1 v1: 1 image(s) 320x240, single model (current)"
    code, out, _ = _run(capsys, *base, str(files[0].parent), "--json")  # a folder: all three
    assert code == 0
    info = json.loads(out)
    assert (info["version"], info["n_images"], info["kind"]) == (2, 3, "variation")
    assert info["params"]["resolution"] == 256  # the recipe's difference options
    store = ReferenceStore(tmp_path / "refs")
    manifest = json.loads((store.root / "parts/cam1/v0001/manifest.json").read_text())
    assert (manifest["note"], manifest["created_by"]) == ("first", "qa")

    code, out, _ = _run(capsys, *base, "--list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("parts/cam1 v1: 1 image(s)")
    assert lines[1].startswith("parts/cam1 v2: 3 image(s) 320x240, variation model (current)")
    code, out, _ = _run(capsys, *base, "--rollback")
    assert (code, out.strip()) == (
        0,
        "rolled back: parts/cam1 v1: 1 image(s) 320x240, single model (current)",
    )
    code, out, _ = _run(capsys, *base, "--delete", "v2")
    assert (code, out.strip()) == (0, "deleted v2 of parts/cam1")
    code, _, err = _run(capsys, *base, "--delete", "1")
    assert code == 1
    assert "v1 is current" in err
    code, out, _ = _run(capsys, *base, "--delete", "all")
    assert code == 0
    assert store.current("parts", "cam1") is None


def test_teach_for_http_analyze_requests(
    setup: tuple[Path, list[Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--camera http`` (what analyze_image's error message suggests) is accepted."""
    cfg, files = setup
    base = ["--config", str(cfg), "--recipe", "parts", "--camera", "http"]
    code, out, err = _run(capsys, *base, str(files[0]))
    assert code == 0, err
    assert out.strip() == "taught parts/http v1: 1 image(s) 320x240, single model (current)"
    assert ReferenceStore(tmp_path / "refs").current("parts", "http") is not None


def test_teach_refuses_bad_input(
    setup: tuple[Path, list[Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, files = setup
    code, _, err = _run(
        capsys, "--config", str(cfg), "--recipe", "nope", "--camera", "cam1", str(files[0])
    )
    assert code == 2
    assert "--recipe: expected one of ['parts'], got 'nope'" in err
    code, _, err = _run(
        capsys, "--config", str(cfg), "--recipe", "parts", "--camera", "cam9", str(files[0])
    )
    assert code == 2
    assert "--camera: expected one of ['cam1', 'http', 'offline'], got 'cam9'" in err
    base = ["--config", str(cfg), "--recipe", "parts", "--camera", "cam1"]
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a png")
    code, _, err = _run(capsys, *base, str(files[0]), str(junk))
    assert code == 1
    assert "junk.png: expected a PNG/JPEG/BMP/TIFF image" in err
    code, _, err = _run(capsys, *base)
    assert code == 1
    assert "expected image files" in err
    unrelated = tmp_path / "other.png"
    cv2.imwrite(
        str(unrelated), np.random.default_rng(0).integers(0, 255, (240, 320), dtype=np.uint8)
    )
    code, _, err = _run(capsys, *base, str(files[0]), str(unrelated))
    assert code == 1
    assert "reference image 1 does not register onto image 0" in err
    code, _, err = _run(capsys, *base, "--rollback")
    assert code == 1
    assert "no version before" in err
    bad_cfg = tmp_path / "bad.yaml"
    bad_cfg.write_text("recipes: [1, 2]\n")
    code, _, err = _run(capsys, "--config", str(bad_cfg), "--recipe", "parts", "--camera", "cam1")
    assert code == 2
    assert "invalid config" in err


def test_teach_as_a_real_process_with_roi(setup: tuple[Path, list[Path]], tmp_path: Path) -> None:
    cfg, files = setup
    roi = np.full((240, 320), 255, np.uint8)
    roi[:, :40] = 0
    cv2.imwrite(str(tmp_path / "roi.png"), roi)
    p = subprocess.run(
        [sys.executable, "-m", "edged", "teach", "--config", str(cfg), "--recipe", "parts",
         "--camera", "cam1", "--roi", str(tmp_path / "roi.png"), *map(str, files[:2])],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("taught parts/cam1 v1: 2 image(s)")
    ref = ReferenceStore(tmp_path / "refs").load("parts", "cam1")
    assert ref.roi is not None
    assert ref.roi[:, :30].max() == 0  # 40 px of 320 at 256 working px = 32 columns
    assert ref.roi[:, 40:].min() == 255


def test_analyze_judges_against_the_stored_references(
    setup: tuple[Path, list[Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Getting started: teach a camera, then verify parts offline against what it learned."""
    cfg, files = setup
    base = ["--config", str(cfg), "--recipe", "parts", "--camera", "cam1"]
    code, _, err = _run(capsys, *base, str(files[0].parent))
    assert code == 0, err
    wld = world((320, 240), seed=51)
    good = capture(wld, dx=0.2, noise=1.0, seed=9)
    bad = good.copy()
    cv2.circle(bad, (160, 120), 9, (0, 0, 0), -1)  # a dark spot on the part
    for name, image in (("good.png", good), ("bad.png", bad)):
        cv2.imwrite(str(tmp_path / name), image)

    def analyze(camera: str, name: str) -> tuple[int, dict[str, Any]]:
        # A child process: analyze sets up logging on its stderr for good.
        args = ["analyze", "--config", str(cfg), "--camera", camera, str(tmp_path / name)]
        p = subprocess.run(
            [sys.executable, "-m", "edged", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        return p.returncode, json.loads(p.stdout)

    verdicts = {}
    for name in ("good.png", "bad.png"):
        code, result = analyze("cam1", name)
        verdicts[name] = (code, result["verdict"], result["camera"])
    assert verdicts == {"good.png": (0, "pass", "cam1"), "bad.png": (1, "fail", "cam1")}
    # Another camera has nothing stored: an error saying how to teach it.
    code, result = analyze("http", "good.png")
    assert (code, result["verdict"]) == (1, "error")
    assert "edged teach --config FILE --recipe parts --camera http" in result["reasons"][0]
