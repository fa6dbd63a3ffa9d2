"""Known answers of ``prepare_reference`` + ``compare`` + the LTU JSON on fixed pairs.

The expected values in ``golden/difference_golden.json`` were recorded with the code
of main before the speed work of issue 21 (``python tests/test_difference_golden.py``
records them again; only do that for an intended change of results). Speed-ups must
reproduce them: integers, boxes, polarities, methods and masks exactly; floats to
1e-6 relative (the registration matrix to 1e-6 relative or 1e-6 px absolute).

The pairs cover what the fast paths touch: colour and grey, phase correlation and
ORB features (a 25 degree turn), similarity and homography motion, uniform and field
lighting, clipped pixels, an ROI, a two-image variation model, 400 and 900 px working
sizes, several defects per image.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from _refs_helpers import capture as ref_capture  # noqa: E402
from _refs_helpers import paint_square  # noqa: E402
from _refs_helpers import world as ref_world  # noqa: E402

from edged.checks.difference import DifferenceResult, DifferenceSettings, compare  # noqa: E402
from edged.checks.ltu_differences import ltu_differences  # noqa: E402
from edged.checks.prepared import ReferenceParams, prepare_reference  # noqa: E402
from tools import _scenes as scenes  # noqa: E402
from tools.bench._frames import make_frames  # noqa: E402

GOLDEN = HERE / "golden" / "difference_golden.json"
REL = 1e-6


@dataclass(frozen=True, slots=True)
class Case:
    references: tuple[np.ndarray, ...]
    query: np.ndarray
    settings: DifferenceSettings
    resolution: int
    roi: np.ndarray | None = None
    ltu: dict[str, Any] | None = None  # ltu_differences options


def _ltu_settings(preset: int = 3, **kw: Any) -> DifferenceSettings:
    return DifferenceSettings.preset(preset, **kw)


@cache
def _bench(size_wh: tuple[int, int]) -> Any:
    return make_frames(size_wh)


def _bench_defective() -> Case:
    fr = _bench((1024, 768))
    return Case((fr.reference,), fr.defective, _ltu_settings(), 400)


def _bench_good_900() -> Case:
    fr = _bench((1024, 768))
    ltu = {"mask_type": "contours", "mask_color": (0, 0, 255, 125), "transform": True}
    return Case((fr.reference,), fr.good, _ltu_settings(2), 900, ltu=ltu)


def _bench_large() -> Case:
    fr = _bench((2448, 2048))
    return Case((fr.reference,), fr.defective, _ltu_settings(), 400)


def _scene_line(kind: str, colour: bool, defect: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    size = (640, 480)
    rng = np.random.default_rng(seed)
    wld = scenes.world(kind, size, colour=colour, seed=seed)
    ref = scenes.capture(wld, scenes.REFERENCE_POSE, size, rng)
    q, _, _ = scenes.query(wld, size, rng, defect, "line")
    # two more defects painted in query pixels: several regions, both polarities
    q = paint_square(q, 100, 90, 9, 60)
    q = paint_square(q, 420, 300, 14, -55)
    return ref, q


def _label_line() -> Case:
    ref, q = _scene_line("label", True, "scratch", 3)
    return Case((ref,), q, _ltu_settings(), 400)


def _pcb_grey_full() -> Case:
    ref, q = _scene_line("pcb", False, "spot", 5)
    return Case((ref,), q, _ltu_settings(2), 1024, ltu={"vertices": False})


def _print_roi_field() -> Case:
    ref, q = _scene_line("print", True, "hairline", 8)
    roi = np.zeros(ref.shape[:2], np.uint8)
    cv2.rectangle(roi, (40, 30), (600, 450), 255, -1)
    cv2.circle(roi, (320, 240), 40, 0, -1)
    return Case((ref,), q, _ltu_settings(1), 900, roi=roi, ltu={"mask_type": "none"})


def _rotated(angle_deg: float) -> Callable[[], Case]:
    def make() -> Case:
        wld = ref_world((320, 240), seed=7)
        ref = ref_capture(wld, noise=1.0, seed=20)
        q = ref_capture(
            wld, dx=9.0, dy=-6.0, angle_deg=angle_deg, gain=1.08, offset=-5, noise=2, seed=21
        )
        q = paint_square(q, 150, 100, 12, -80)
        return Case((ref,), q, _ltu_settings(motion_model="similarity"), 400)

    return make


def _clipped_global() -> Case:
    wld = ref_world((320, 240), seed=9)
    ref = ref_capture(wld, noise=1.0, seed=30)
    q = ref_capture(wld, dx=3.3, dy=2.1, angle_deg=-0.8, gain=1.35, offset=10, noise=2, seed=31)
    q = paint_square(q, 60, 50, 8, -90)
    return Case((ref,), q, _ltu_settings(lighting="global"), 400)


def _variation_two() -> Case:
    wld = ref_world((320, 240), seed=11)
    refs = (
        ref_capture(wld, noise=1.5, seed=40),
        ref_capture(wld, dx=1.5, dy=-1.0, angle_deg=0.4, gain=1.04, noise=1.5, seed=41),
    )
    q = ref_capture(wld, dx=-2.0, dy=3.0, angle_deg=0.7, gain=0.95, noise=2.0, seed=42)
    q = paint_square(q, 200, 150, 10, 70)
    return Case(refs, q, _ltu_settings(), 1024)


CASES: dict[str, Callable[[], Case]] = {
    "bench_1024x768_defective": _bench_defective,
    "bench_1024x768_good_res900": _bench_good_900,
    "bench_2448x2048_defective": _bench_large,
    "label_line_colour": _label_line,
    "pcb_line_grey_full_size": _pcb_grey_full,
    "print_line_roi_preset1": _print_roi_field,
    "rotated_25deg_phase": _rotated(25.0),
    "rotated_60deg_features": _rotated(60.0),
    "clipped_global_lighting": _clipped_global,
    "variation_two_references": _variation_two,
}


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


def outcome(case: Case) -> dict[str, Any]:
    """Everything the golden file records for one case (JSON-ready)."""
    params = ReferenceParams(
        resolution=case.resolution,
        behaviors=case.settings.behaviors,
        motion_model=case.settings.motion_model,
        colour=case.settings.colour,
    )
    prepared = prepare_reference(list(case.references), params=params, roi=case.roi)
    res: DifferenceResult = compare(prepared, case.query, case.settings)
    wh1 = (case.references[0].shape[1], case.references[0].shape[0])
    wh2 = (case.query.shape[1], case.query.shape[0])
    body = ltu_differences(res, image1_wh=wh1, image2_wh=wh2, **(case.ltu or {}))
    reg = res.registration
    assert res.excess is not None
    return {
        "prepared": {
            "work_wh": list(prepared.work_wh),
            "keypoints": len(prepared.registration.keypoints_xy),
            "channels": {
                n: {"mean": _digest(m.mean), "std": _digest(m.std), "count": _digest(m.count)}
                for n, m in prepared.channels.items()
            },
        },
        "count": res.count,
        "score": res.score,
        "area_px": res.area_px,
        "compared_px": res.compared_px,
        "not_inspected_px": res.not_inspected_px,
        "lighting_spread": res.lighting_spread,
        "channels": list(res.channels),
        "matrix1": [float(v) for v in res.matrix1.ravel()],
        "registration": {
            "method": reg.method,
            "model": reg.model,
            "iterations": reg.iterations,
            "inliers": reg.inliers,
            "matches": reg.matches,
            "correlation": reg.correlation,
            "gain": reg.gain,
            "offset": reg.offset,
            "overlap": reg.overlap,
            "residual_px": reg.residual_px,
        },
        "excess": {"nonzero": int(np.count_nonzero(res.excess)), "sum": int(res.excess.sum())},
        "regions": [
            {
                "box1": list(r.box1_xywh),
                "box2": list(r.box2_xywh),
                "work_box": list(r.work_box_xywh),
                "area_px": r.area_px,
                "contrast": r.contrast,
                "polarity": r.polarity,
                "circle1": list(r.circle1_xyr),
                "circle2": list(r.circle2_xyr),
                "mask": _digest(np.packbits(r.mask)),
            }
            for r in res.regions
        ],
        "ltu": body,
    }


def assert_close(got: Any, want: Any, where: str = "") -> None:
    """Equal structure; ints, strings, bools exact; floats to ``REL`` relative
    (absolute 1e-6 near zero)."""
    if isinstance(want, dict):
        assert isinstance(got, dict), where
        assert sorted(got) == sorted(want), where
        for k in want:
            assert_close(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list | tuple):
        assert isinstance(got, list | tuple), where
        assert len(got) == len(want), f"{where}: {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_close(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(got, bool):
        assert isinstance(got, int | float), where
        assert got == pytest.approx(want, rel=REL, abs=1e-6), where
    else:
        assert got == want, where


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value))


@cache
def _golden() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(GOLDEN.read_text())
    return data


@pytest.mark.parametrize("name", list(CASES))
def test_compare_reproduces_the_recorded_answer(name: str) -> None:
    got = _jsonable(outcome(CASES[name]()))
    assert_close(got, _golden()[name], name)


def test_the_cases_cover_the_paths_the_speed_work_touches() -> None:
    g = _golden()
    methods = {c["registration"]["method"] for c in g.values()}
    models = {c["registration"]["model"] for c in g.values()}
    assert {"phase", "features"} <= methods
    assert {"similarity", "homography"} <= models or len(models) >= 2
    assert any(c["lighting_spread"] > 0 for c in g.values())
    assert any(c["count"] >= 2 for c in g.values())
    assert any("ca" in c["channels"] for c in g.values())


def record() -> None:
    """Write the golden file from the code as it is (only for intended changes)."""
    GOLDEN.parent.mkdir(exist_ok=True)
    out = {name: _jsonable(outcome(make())) for name, make in CASES.items()}
    GOLDEN.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes)")


if __name__ == "__main__":
    record()
