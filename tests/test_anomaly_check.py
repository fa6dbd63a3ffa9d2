"""The ``anomaly`` recipe check: Inspector verdicts, the reference store keeping its
model (versions, rollback, retraining), and teach + analyze over a real HTTP server."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest

from edged.checks import CheckContext, figure_paths, registry
from edged.checks.anomaly import FORMAT_VERSION, AnomalyModel
from edged.cli.main import main
from edged.config import HttpConfig, RecipeConfig, Settings
from edged.core.errors import ConfigError, EdgedError, InputError
from edged.http import create_app
from edged.recipes.inspection import Inspector
from edged.recipes.validate import load_checked_settings, recipe_problems
from edged.references import InMemoryReferences, ReferenceStore
from edged.runtime.metrics import Metrics
from edged.runtime.shared import Runtime
from edged.runtime.workers import WorkerPool
from edged.sources._textures import draw_defect, render_texture

SIZE = 128
BOX = (40, 40, 88, 88)


def _goods(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [render_texture("granulate", width=SIZE, height=SIZE, rng=rng) for _ in range(n)]


def _defective(seed: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    img = _goods(1, seed)[0]
    box = draw_defect(
        img, "foreign", rng=np.random.default_rng(seed), box_xyxy=BOX, size_px=32, base="granulate"
    )
    return img, box


def _recipe(checks: dict[str, Any], limits: list[str] | None = None) -> RecipeConfig:
    return RecipeConfig.model_validate({"checks": checks, "limits": limits or []})


@pytest.fixture(scope="module")
def refs() -> InMemoryReferences:
    recipes = {"surface": _recipe({"anomaly": {}})}
    return InMemoryReferences.from_images(_goods(10, seed=1), recipes=recipes)


def test_no_limit_written_fails_a_part_above_the_threshold(refs: InMemoryReferences) -> None:
    insp = Inspector("surface", _recipe({"anomaly": {}}))
    ctx = CheckContext("surface", "cam1", refs.prepared("surface", "cam1"))
    good = insp.inspect(_goods(1, seed=50)[0], context=ctx)
    assert good.verdict == "pass", good.reasons
    fig = good.figures["anomaly"]
    assert fig["score"] < fig["threshold"]
    assert (fig["count"], fig["area_px"], fig["anomalous"]) == (0, 0, False)
    assert (fig["n_images"], fig["features"]) == (10, "filterbank")

    bad, box = _defective(seed=51)
    res = insp.inspect(bad, context=ctx)
    assert res.verdict == "fail"
    assert res.reasons == ("anomaly.anomalous = true, limit == false",)
    fig = res.figures["anomaly"]
    assert fig["score"] > fig["threshold"]
    assert fig["count"] == len(res.regions) >= 1
    assert fig["area_px"] == sum(r.area_px or 0 for r in res.regions) > 0
    top = max(res.regions, key=lambda r: r.score or 0.0)
    assert (top.label, top.check) == ("anomaly", "anomaly")
    assert top.x < box[2]
    assert top.x + top.width > box[0]
    assert top.y < box[3]
    assert top.y + top.height > box[1]
    assert res.heatmap is not None
    assert res.heatmap.shape == (SIZE, SIZE)
    assert float(res.heatmap.max()) > 0.5 > float(res.heatmap[:16].max())  # 0.5 = threshold


def test_written_limits_replace_the_default(refs: InMemoryReferences) -> None:
    ctx = CheckContext("surface", "cam1", refs.prepared("surface", "cam1"))
    bad, _ = _defective(seed=52)
    loose = Inspector("surface", _recipe({"anomaly": {}}, ["anomaly.score <= 1000"]))
    assert loose.inspect(bad, context=ctx).verdict == "pass"
    by_area = Inspector("surface", _recipe({"anomaly": {}}, ["anomaly.area_px <= 100"]))
    assert by_area.inspect(bad, context=ctx).verdict == "fail"
    fixed = Inspector("surface", _recipe({"anomaly": {"threshold": 1000.0}}))
    out = fixed.inspect(bad, context=ctx)
    assert (out.verdict, out.figures["anomaly"]["threshold"]) == ("pass", 1000.0)


def test_without_a_model_the_verdict_is_error_saying_teach() -> None:
    insp = Inspector("surface", _recipe({"anomaly": {}}))
    assert insp.needs_reference
    res = insp.inspect(_goods(1, seed=3)[0], context=CheckContext("surface", "cam1", None))
    assert res.verdict == "error"
    assert "no anomaly model" in res.reasons[0]
    assert "edged teach" in res.reasons[0]


def test_a_named_check_and_its_default_limit(refs: InMemoryReferences) -> None:
    insp = Inspector("surface", _recipe({"surface": {"type": "anomaly"}}))
    ctx = CheckContext("surface", "cam1", refs.prepared("surface", "cam1"))
    bad, _ = _defective(seed=53)
    res = insp.inspect(bad, context=ctx)
    assert res.verdict == "fail"
    assert res.reasons == ("surface.anomalous = true, limit == false",)
    assert {r.check for r in res.regions} == {"surface"}
    assert set(res.figures) == {"surface"}


def test_declared_figures_are_the_figures_produced(refs: InMemoryReferences) -> None:
    spec = registry()["anomaly"]
    ctx = CheckContext("surface", "cam1", refs.prepared("surface", "cam1"))
    bad, _ = _defective(seed=54)
    out = spec.run(bad, spec.options.model_validate({}), ctx)
    assert out.figures["count"] >= 1
    assert figure_paths(out.figures) == set(spec.figures)
    good = spec.run(_goods(1, seed=55)[0], spec.options.model_validate({}), ctx)
    assert figure_paths(good.figures) - {"regions"} <= set(spec.figures)


def test_options_and_limits_are_validated_with_the_recipe() -> None:
    def problems(checks: dict[str, Any], limits: list[str] | None = None) -> list[str]:
        return recipe_problems("surface", _recipe(checks, limits))

    assert problems({"surface": {"type": "anomaly"}}, ["surface.score <= 9"]) == []
    assert "features" in problems({"anomaly": {"features": "cnn-from-the-internet"}})[0]
    assert "even" in problems({"anomaly": {"cell_px": 7}})[0]
    assert "false_alarm" in problems({"anomaly": {"false_alarm": 0.9}})[0]
    (typo,) = problems({"anomaly": {}}, ["anomaly.scor <= 3"])
    assert "did you mean `anomaly.score`" in typo
    (two,) = problems({"a": {"type": "anomaly"}, "b": {"type": "anomaly", "bank_size": 64}})
    assert "one bank_size for all of them" in two
    (both,) = problems({"anomaly": {}, "difference": {}})
    assert "each need their own reference model" in both
    recipes = {"both": _recipe({"anomaly": {}, "difference": {}})}
    with pytest.raises(InputError, match="each need their own reference model"):
        InMemoryReferences.from_images(_goods(3, seed=4), recipes=recipes).prepared("both", "c")


def test_store_keeps_versions_rolls_back_and_loads_once(tmp_path: Path) -> None:
    recipes = {"surface": _recipe({"anomaly": {"bank_size": 512}})}
    store = ReferenceStore(tmp_path, recipes=recipes)
    info = store.add_version("surface", "cam1", _goods(6, seed=10), source="test")
    assert (info.kind, info.n_images, info.size_wh, info.colour) == ("anomaly", 6, (128, 128), True)
    manifest = json.loads((info.path / "manifest.json").read_text())
    training = manifest["prepared"]["training"]
    assert training["images"] == 6
    assert training["bank_vectors"] == 512
    assert len(training["loo_scores"]) == 6
    assert manifest["prepared"]["params"]["bank_size"] == 512

    fresh = ReferenceStore(tmp_path, recipes=recipes)  # nothing cached: loads from disk
    model = fresh.prepared("surface", "cam1")
    assert isinstance(model, AnomalyModel)
    assert fresh.prepared("surface", "cam1") is model  # loaded once
    assert model.threshold == pytest.approx(manifest["prepared"]["threshold"])

    v2 = store.teach("surface", "cam1", _goods(8, seed=11))
    assert v2 == "v2"
    m2 = fresh.prepared("surface", "cam1")  # follows the other writer
    assert isinstance(m2, AnomalyModel)
    assert m2.n_images == 8
    assert store.rollback("surface", "cam1") == "v1"
    m1 = fresh.prepared("surface", "cam1")
    assert isinstance(m1, AnomalyModel)
    assert (m1.n_images, m1.threshold) == (6, model.threshold)

    # The recipe asks for another training: the stored images are trained again.
    other = ReferenceStore(tmp_path, recipes={"surface": _recipe({"anomaly": {"bank_size": 64}})})
    retrained = other.prepared("surface", "cam1")
    assert isinstance(retrained, AnomalyModel)
    assert retrained.bank.shape[0] == 64


def test_store_refuses_too_few_images_and_keeps_the_current(tmp_path: Path) -> None:
    store = ReferenceStore(tmp_path, recipes={"surface": _recipe({"anomaly": {}})})
    store.teach("surface", "cam1", _goods(4, seed=12))
    with pytest.raises(InputError, match="at least 3 good images"):
        store.teach("surface", "cam1", _goods(2, seed=13))
    current = store.current("surface", "cam1")
    assert current is not None
    assert current.version == 1


def test_a_damaged_model_is_reported(tmp_path: Path) -> None:
    store = ReferenceStore(tmp_path, recipes={"surface": _recipe({"anomaly": {}})})
    info = store.add_version("surface", "cam1", _goods(3, seed=14))
    manifest = json.loads((info.path / "manifest.json").read_text())
    manifest["prepared"]["format"] = 99
    (info.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EdgedError, match="format"):
        ReferenceStore(tmp_path, recipes={"surface": _recipe({"anomaly": {}})}).load(
            "surface", "cam1"
        )


@pytest.mark.parametrize("older", [1, 2])
def test_a_model_of_the_older_format_is_trained_again(tmp_path: Path, older: int) -> None:
    """Format 1 (edged 0.2.0: border band not inspected, no position classes) and 2
    (contrast features linear, no smoothest spot) are trained again from the
    stored images instead of refused."""
    store = ReferenceStore(tmp_path, recipes={"surface": _recipe({"anomaly": {}})})
    info = store.add_version("surface", "cam1", _goods(3, seed=14))
    manifest = json.loads((info.path / "manifest.json").read_text())
    manifest["prepared"]["format"] = older
    (info.path / "manifest.json").write_text(json.dumps(manifest))
    model = ReferenceStore(tmp_path, recipes={"surface": _recipe({"anomaly": {}})}).load(
        "surface", "cam1"
    )
    assert isinstance(model, AnomalyModel)
    assert model.meta()["format"] == FORMAT_VERSION == 4
    assert set(np.unique(model.bank_class)) == {0, 1, 2}


def test_config_file_with_an_anomaly_recipe(tmp_path: Path) -> None:
    cfg = tmp_path / "edged.yaml"
    cfg.write_text(
        "recipes:\n  surface:\n    checks:\n      anomaly: {features: dog, false_alarm: 0.02}\n"
    )
    settings = load_checked_settings(cfg)
    assert settings.recipes["surface"].checks["anomaly"]["features"] == "dog"
    cfg.write_text("recipes:\n  surface:\n    checks:\n      anomaly: {bank: 3}\n")
    with pytest.raises(ConfigError, match="bank"):
        load_checked_settings(cfg)


# --------------------------------------------------------------------------- over HTTP


def _png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return bytes(buf.tobytes())


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> AsyncIterator[Any]:
    recipes = {"surface": _recipe({"anomaly": {}})}
    settings = Settings(recipes=recipes, http=HttpConfig(api_key="adm"))
    runtime = Runtime(
        settings=settings,
        metrics=Metrics(),
        pool=WorkerPool(2),
        inspectors={name: Inspector(name, rc) for name, rc in recipes.items()},
        references=ReferenceStore(tmp_path / "refs", recipes=recipes),
    )
    yield await aiohttp_client(create_app(runtime))
    runtime.pool.shutdown()


async def test_teach_over_http_then_analyze_image(client: Any) -> None:
    headers = {"X-API-Key": "adm"}
    before = await client.post(
        "/analyze_image?recipe=surface&response_type=context",
        data=_png(_goods(1, 2)[0]),
        headers=headers,
    )
    assert before.status == 200
    assert (await before.json())["verdict"] == "error"  # nothing taught yet

    form = aiohttp.FormData()
    for i, img in enumerate(_goods(8, seed=20)):
        form.add_field("images", _png(img), filename=f"good{i}.png", content_type="image/png")
    taught = await client.post("/api/v1/references/surface/http", data=form, headers=headers)
    assert taught.status == 201, await taught.text()
    assert (await taught.json())["images"] == 8
    listed = await client.get("/api/v1/references/surface/http", headers=headers)
    assert (await listed.json())["versions"][0]["kind"] == "anomaly"

    good = await client.post(
        "/analyze_image?recipe=surface&response_type=context",
        data=_png(_goods(1, 21)[0]),
        headers=headers,
    )
    ctx = await good.json()
    assert (ctx["verdict"], ctx["result"]) == ("pass", True)
    assert ctx["checks"]["anomaly"]["score"] < ctx["checks"]["anomaly"]["threshold"]

    bad, box = _defective(seed=22)
    resp = await client.post(
        "/analyze_image?recipe=surface&response_type=heatmap", data=_png(bad), headers=headers
    )
    assert resp.status == 200
    assert resp.headers["X-Edged-Heatmap"] == "check"
    heat = cv2.imdecode(np.frombuffer(await resp.read(), np.uint8), cv2.IMREAD_COLOR)
    assert heat.shape == (SIZE, SIZE, 3)
    ctx = json.loads(base64.b64decode(resp.headers["ContextBase64utf"]))
    assert (ctx["verdict"], ctx["result"]) == ("fail", False)
    assert ctx["checks"]["anomaly"]["count"] >= 1
    rects = ctx["detectedRectangles"]
    assert rects
    assert any(r["x"] < box[2] and r["x"] + r["width"] > box[0] and r["y"] < box[3] for r in rects)
    annotated = await client.post(
        "/analyze_image?recipe=surface&response_type=annotated_image",
        data=_png(bad),
        headers=headers,
    )
    assert annotated.headers["X-Edged-Heatmap"] == "check"


def test_edged_teach_trains_the_anomaly_model(
    tmp_path: Path,
    write_config: Callable[[dict[str, Any]], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = write_config(
        {
            "cameras": {"cam1": {"recipe": "surface", "synthetic": {"scene": "texture"}}},
            "recipes": {"surface": {"checks": {"surface": {"type": "anomaly", "bank_size": 256}}}},
            "mqtt": {"enabled": False},
            "http": {"enabled": False},
        }
    )
    folder = tmp_path / "good"
    folder.mkdir()
    for i, img in enumerate(_goods(5, seed=30)):
        cv2.imwrite(str(folder / f"{i:02d}.png"), img)
    args = ["teach", "--config", str(cfg), "--recipe", "surface", "--camera", "cam1"]
    assert main([*args, str(folder)]) == 0
    out = capsys.readouterr().out
    assert out.strip() == "taught surface/cam1 v1: 5 image(s) 128x128, anomaly model (current)"
    recipes = load_checked_settings(cfg).recipes
    model = ReferenceStore(tmp_path / "refs", recipes=recipes).prepared("surface", "cam1")
    assert isinstance(model, AnomalyModel)
    assert model.bank.shape[0] == 256
    assert main([*args, str(folder / "00.png")]) == 1  # one image: refused, says why
    assert "at least 3 good images" in capsys.readouterr().err
