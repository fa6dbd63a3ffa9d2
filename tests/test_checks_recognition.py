"""The recognition check: figures for limits, regions for detections, and a daemon line
whose recognition verdicts reach MQTT."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _broker import Broker, broker_fixture, require  # noqa: F401
from _models_helpers import (
    COLOURS,
    DET_BOXES,
    DET_CLASSES,
    DET_SCORES,
    DIRECT_POST,
    classifier_preprocessing,
    colour_classifier,
    constant_detector,
    detector_preprocessing,
    labels,
)
from _mqtt_helpers import Collector, first_seen

from edged.checks import ANY_KEY, CheckContext, Region, figure_paths
from edged.checks.recognition import SPEC, RecognitionOptions, recognize
from edged.config import RecipeConfig, load_settings
from edged.core.errors import ConfigError
from edged.daemon import Daemon
from edged.models.repository import ModelRepository
from edged.publish._topics import Topics
from edged.recipes.inspection import Inspector
from edged.recipes.validate import validate_recipe


def _detector_version(repo: ModelRepository) -> int:
    net = repo.create_network(
        {"name": "det", "preprocessing": detector_preprocessing()},
        {"model.onnx": constant_detector(DET_BOXES, DET_SCORES, DET_CLASSES)},
    ).id
    spec = repo.create_spec(
        {"name": "parts", **labels(("screw", "nut"), roi="BBOX", first_id=1)}
    ).id
    return repo.create_version(
        {"spec_id": spec, "network_id": net, "post_processings": [DIRECT_POST]}
    ).id


def _classifier_version(repo: ModelRepository, **kwargs: Any) -> int:
    net = repo.create_network(
        {"name": "colours", "preprocessing": classifier_preprocessing()},
        {"model.onnx": colour_classifier(**kwargs)},
    ).id
    spec = repo.create_spec({"name": "colour", **labels(COLOURS)}).id
    post = [{"classification": {"output_tensor": "logits", "thresholds": [0.5, 0.5, 0.5]}}]
    return repo.create_version({"spec_id": spec, "network_id": net, "post_processings": post}).id


def test_detections_become_figures_and_labelled_regions(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    version = _detector_version(repo)
    image = np.zeros((100, 200, 3), np.uint8)
    figures = recognize(image, repo.recognizer(version), model=str(version))
    d = figures.to_dict()
    assert (d["kind"], d["label"], d["score"], d["count"]) == ("detection", "screw", 0.95, 2)
    assert d["labels"] == {"screw": {"count": 1, "score": 0.95}, "nut": {"count": 1, "score": 0.85}}
    assert d["screw"] == {"count": 1, "score": 0.95}
    assert [p["label_name"] for p in d["predicted"]] == ["screw", "nut"]
    # boxes (0.1, 0.1)-(0.5, 0.5) of 200 x 100 px
    assert figures.regions("parts") == (
        Region(20, 10, 80, 40, "screw", "parts", score=0.95),
        Region(20, 10, 80, 40, "nut", "parts", score=0.85),
    )
    # a pixel ROI: boxes stay in pixels of the whole image
    right = recognize(image, repo.recognizer(version), roi_xywh=(100, 0, 100, 100))
    assert right.regions("parts")[0] == Region(110, 10, 40, 40, "screw", "parts", score=0.95)
    with pytest.raises(ValueError, match="expected a region inside the 200x100 image"):
        recognize(image, repo.recognizer(version), roi_xywh=(300, 0, 10, 10))


def test_recipe_limits_on_recognition_figures(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    version = _detector_version(repo)
    context = CheckContext(recipe="r", camera="c", models=repo)
    recipe = RecipeConfig.model_validate(
        {
            "checks": {"parts": {"type": "recognition", "model": version}},
            "limits": ["parts.count == 2", "parts.screw.count == 1", "parts.screw.score >= 0.9"],
        }
    )
    validate_recipe("r", recipe)
    image = np.zeros((100, 200), np.uint8)  # grey frames work too
    inspection = Inspector("r", recipe).inspect(image, context=context)
    assert inspection.verdict == "pass", inspection.reasons
    assert [(r.label, r.check) for r in inspection.regions] == [
        ("screw", "parts"),
        ("nut", "parts"),
    ]
    strict = RecipeConfig.model_validate(
        {
            "checks": {"recognition": {"model": version}},
            "limits": ["recognition.labels.nut.count == 0", 'recognition.label == "nut"'],
        }
    )
    failed = Inspector("r", strict).inspect(image, context=context)
    assert failed.verdict == "fail"
    assert failed.reasons == (
        "recognition.labels.nut.count = 1, limit == 0",
        'recognition.label = "screw", limit == "nut"',
    )


def test_recipe_validation_knows_the_recognition_figures() -> None:
    recipe = RecipeConfig.model_validate(
        {
            "checks": {"variant": {"type": "recognition", "model": "text-orientation-v1"}},
            "limits": ['variant.lable == "B"'],
        }
    )
    with pytest.raises(ConfigError, match=r"did you mean `variant.label`"):
        validate_recipe("r", recipe)
    bad = RecipeConfig.model_validate({"checks": {"variant": {"type": "recognition"}}})
    with pytest.raises(ConfigError, match=r"recipes.r.checks.variant.model: Field required"):
        validate_recipe("r", bad)


def _normalised(paths: set[str], names: tuple[str, ...]) -> set[str]:
    """Label names in figure paths written as the spec's ``<name>``."""
    out = set()
    for path in paths:
        parts = path.split(".")
        if parts[0] == "labels" and parts[1] in names:
            parts[1] = ANY_KEY
        elif parts[0] in names:
            parts[0] = ANY_KEY
        out.add(".".join(parts))
    return out


def test_declared_figures_are_the_figures_produced(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    version = _detector_version(repo)
    context = CheckContext(recipe="r", camera="c", models=repo)
    found = SPEC.run(np.zeros((100, 200, 3), np.uint8), RecognitionOptions(model=version), context)
    produced = _normalised(figure_paths(found.figures), ("screw", "nut"))
    assert produced == set(SPEC.figures) - {"predicted"}
    # nothing predicted: grey gives each colour 1/3, under the thresholds of 0.5
    colours = _classifier_version(repo)
    grey = np.full((16, 16, 3), 128, np.uint8)
    none = SPEC.run(grey, RecognitionOptions(model=colours), context)
    assert none.figures["count"] == 0
    assert none.figures["label"] == ""
    nothing = {p for p in SPEC.figures if not p.startswith("predicted.")}
    assert _normalised(figure_paths(none.figures), COLOURS) == nothing


def test_unknown_model_or_no_repository_is_an_error_verdict(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    recipe = RecipeConfig.model_validate({"checks": {"recognition": {"model": 77}}})
    image = np.zeros((10, 10), np.uint8)
    got = Inspector("r", recipe).inspect(image, context=CheckContext("r", "c", models=repo))
    assert got.verdict == "error"
    assert "version 77" in got.reasons[0]
    got = Inspector("r", recipe).inspect(image, context=CheckContext("r", "c"))
    assert got.reasons == (
        "recognition: recognition: expected a model repository (models_dir), got none",
    )
    with pytest.raises(ValueError, match="model"):
        RecognitionOptions.model_validate({"model": " "})
    assert SPEC.name == "recognition"


async def test_daemon_line_with_a_recognition_check_publishes_verdicts(
    write_config: Callable[..., Path], broker: Broker, tmp_path: Path
) -> None:
    require(broker)
    models = tmp_path / "models"
    # fixed probabilities red 0.7, green 0.2, blue 0.1 whatever the frame
    version = _classifier_version(ModelRepository(models), gain=0.0, bias=(0.7, 0.2, 0.1))
    prefix = f"r{uuid.uuid4().hex[:6]}"
    settings = load_settings(
        write_config(
            {
                "node_id": "line-r",
                "models_dir": str(models),
                "cameras": {
                    "cam1": {
                        "recipe": "colour",
                        "fps": 10,
                        "synthetic": {"width": 160, "height": 128, "pixel_format": "BayerRG8"},
                    }
                },
                "recipes": {
                    "colour": {
                        "checks": {"recognition": {"model": version}},
                        "limits": ['recognition.label == "red"', "recognition.red.score >= 0.6"],
                    }
                },
                "mqtt": {"host": broker.host, "port": broker.port, "prefix": prefix},
                "http": {"enabled": False},
            }
        )
    )
    t = Topics(prefix, "line-r")
    col = Collector(broker, [t.result("cam1")]).start()
    daemon = Daemon(settings)
    await daemon.start()
    try:
        await asyncio.to_thread(col.wait_for, lambda ms: len(ms) >= 3, 15)
    finally:
        await daemon.stop()
        col.stop()
    docs = first_seen(col.on(t.result("cam1")))
    assert len(docs) >= 3
    for doc in docs:
        assert doc["verdict"] == "pass", doc["reasons"]
        figures = doc["checks"]["recognition"]
        assert (figures["label"], figures["score"], figures["count"]) == ("red", 0.7, 1)
        assert figures["red"] == {"count": 1, "score": 0.7}


async def test_pekat_analyze_shows_detections_as_labelled_rectangles(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    import cv2

    from edged.config import Settings
    from edged.http.app import create_app
    from edged.runtime.shared import Runtime

    version = _detector_version(ModelRepository(tmp_path / "models"))
    settings = Settings(
        state_dir=tmp_path,
        recipes={
            "parts": {
                "checks": {"recognition": {"model": version}},
                "limits": ["recognition.count == 2"],
            }
        },
    )
    runtime = Runtime.build(settings)
    try:
        client = await aiohttp_client(create_app(runtime))
        ok, png = cv2.imencode(".png", np.zeros((100, 200, 3), np.uint8))
        assert ok
        resp = await client.post("/analyze_image?response_type=context", data=png.tobytes())
        assert resp.status == 200
        ctx = await resp.json()
    finally:
        runtime.pool.shutdown()
    assert ctx["result"] is True
    rects = [
        (r["x"], r["y"], r["width"], r["height"], r["classNames"])
        for r in ctx["detectedRectangles"]
    ]
    assert rects == [
        (20, 10, 80, 40, [{"label": "screw"}]),
        (20, 10, 80, 40, [{"label": "nut"}]),
    ]
