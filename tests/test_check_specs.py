"""One spec per check: declared figures match what the checks produce, and the LTU
routes, the OpenAPI LTU paths and recipe validation all come from the registry."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np
import pytest
from _checks_helpers import disk_scene, shapes_scene
from _refs_helpers import capture, paint_square, world
from aiohttp import web
from pydantic import Field

from edged.checks import (
    CheckContext,
    CheckOptions,
    CheckOutcome,
    CheckSpec,
    LtuReply,
    LtuService,
    Region,
    _registry,
    figure_paths,
    registry,
    specs,
)
from edged.config import RecipeConfig
from edged.core.errors import ConfigError
from edged.http import ltu, openapi
from edged.recipes.inspection import Inspector
from edged.recipes.validate import recipe_problems, validate_recipe
from edged.references import InMemoryReferences

CTX = CheckContext(recipe="r", camera="cam")
LTU_NAMES = {
    "quality": "imageQuality",
    "mask": "objectMaskDetection",
    "contours": "contours",
    "edges": "edges",
    "palette": "colorPalette",
    "heatmap": "heatMap",
    "text": "textDetection",
}


def _scene() -> np.ndarray:
    """A BGR disk with a textured background: every check finds something."""
    img, _ = disk_scene((320, 240), (160, 120), 60)
    rng = np.random.default_rng(3)
    img[:, :40] = rng.integers(0, 256, (240, 40, 3), dtype=np.uint8)
    return img


def _run(name: str, options: dict[str, Any], image: np.ndarray) -> CheckOutcome:
    spec = registry()[name]
    return spec.run(image, spec.options.model_validate(options), CTX)


IMAGE_CHECKS = [
    ("quality", "masks"),
    ("mask", "include_images"),
    ("contours", None),
    ("edges", "include_images"),
    ("palette", None),
    ("heatmap", "include_images"),
]


def test_every_registered_check_has_its_figures_tested() -> None:
    """A new check must join IMAGE_CHECKS (or get its own figure test like difference;
    recognition's is in test_checks_recognition.py, text's in test_checks_text.py, anomaly's
    in test_anomaly_check.py)."""
    expected = {name for name, _ in IMAGE_CHECKS} | {"difference", "recognition", "text", "anomaly"}
    assert expected == set(registry())


@pytest.mark.parametrize(("name", "images_option"), IMAGE_CHECKS)
def test_declared_figures_are_the_figures_produced(name: str, images_option: str | None) -> None:
    image = _scene()
    produced = figure_paths(_run(name, {}, image).figures)
    if images_option is not None:
        with_images = figure_paths(_run(name, {images_option: True}, image).figures)
        assert with_images == produced  # the PNG keys are there either way (null without)
    assert produced == set(registry()[name].figures)


def test_declared_figures_of_contours_on_a_scene_with_shapes() -> None:
    out = _run("contours", {"color_space": "G"}, shapes_scene())
    assert out.figures["count"] == 3
    assert figure_paths(out.figures) == set(registry()["contours"].figures)


@pytest.fixture(scope="module")
def reference_scene() -> tuple[np.ndarray, np.ndarray, Any]:
    wld = world((320, 240), seed=31)
    ref = capture(wld, noise=1.0, seed=1)
    query = paint_square(capture(wld, dx=3.0, noise=1.0, seed=2), 150, 100, 14, 90)
    recipes = {"r": RecipeConfig(checks={"difference": {}})}
    prepared = InMemoryReferences.from_images([ref], recipes=recipes).prepared("r", "cam")
    return ref, query, prepared


def test_declared_figures_of_difference(reference_scene: tuple[Any, ...]) -> None:
    _ref, query, prepared = reference_scene
    ctx = CheckContext(recipe="r", camera="cam", reference=prepared)
    spec = registry()["difference"]
    out = spec.run(query, spec.options.model_validate({}), ctx)
    assert out.figures["count"] >= 1
    registered = figure_paths(out.figures)
    # An unregistered frame (on_unregistered: fail) reports how far registration got.
    noise = np.random.default_rng(0).integers(0, 256, query.shape, dtype=np.uint8)
    lost = spec.run(noise, spec.options.model_validate({"on_unregistered": "fail"}), ctx)
    assert lost.figures["registration"]["ok"] is False
    unregistered = figure_paths(lost.figures) - {"regions"}  # no region list: empty
    assert registered | unregistered == set(spec.figures)


def test_every_image_check_declares_its_ltu_service() -> None:
    for name, service in LTU_NAMES.items():
        spec = registry()[name]
        assert spec.ltu is not None
        assert spec.ltu.name == service
        assert "include_images" not in spec.ltu.options.model_fields
    assert registry()["difference"].ltu is None
    assert set(ltu.services()) == set(LTU_NAMES.values())


def test_ltu_compute_is_the_recipe_run_in_the_document_shape() -> None:
    """One function: the LTU reply is the recipe figures in the LTU document's shape
    (the mask as the image object ``binary mask``)."""
    image = _scene()
    spec = registry()["mask"]
    assert spec.ltu is not None
    figures = dict(_run("mask", {"include_images": True}, image).figures)
    reply = spec.ltu.compute(image, spec.ltu.options())
    assert isinstance(reply, LtuReply)
    png = figures.pop("mask")
    assert reply.result == {
        "binary mask": {"encoding": "base64", "format": "image/png", "value": png},
        **figures,
    }
    assert reply.info == {"channel": figures["channel"]}


def test_openapi_ltu_paths_are_the_registry_services() -> None:
    doc = openapi.openapi_document()
    for service in ltu.services().values():
        post = doc["paths"][f"/v2/services/image/{service.name}"]["post"]
        assert post["summary"] == service.summary


# --------------------------------------------------------------------------- a toy check


class _ToyOptions(CheckOptions):
    level: int = Field(default=128, ge=0, le=255)


def _toy_compute(image: np.ndarray, options: Any) -> dict[str, Any]:
    return {"bright_px": int(np.count_nonzero(image >= options.level))}


def _toy_run(image: np.ndarray, options: Any, _: CheckContext) -> CheckOutcome:
    return CheckOutcome(
        _toy_compute(image, options), (Region(0, 0, 1, 1, "spot", "toy", area_px=1),)
    )


TOY = CheckSpec(
    "toy",
    _ToyOptions,
    _toy_run,
    figures=("bright_px",),
    ltu=LtuService("toyService", _ToyOptions, _toy_compute, "Counts bright pixels"),
)


@pytest.fixture
def toy_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    everything = (*specs(), TOY)
    monkeypatch.setattr(_registry, "specs", lambda: everything)
    registry.cache_clear()
    openapi._document.cache_clear()
    yield
    monkeypatch.undo()
    registry.cache_clear()
    openapi._document.cache_clear()


@pytest.mark.usefixtures("toy_registered")
def test_a_spec_added_to_the_registry_appears_everywhere() -> None:
    # LTU routes
    app = web.Application()
    ltu.setup(app)
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert f"{ltu.PREFIX}/toyService" in paths
    # OpenAPI
    doc = openapi.openapi_document()
    assert doc["paths"]["/v2/services/image/toyService"]["post"]["summary"] == (
        "Counts bright pixels"
    )
    # recipe validation: options, then limit paths
    assert (
        recipe_problems("r", RecipeConfig(checks={"toy": {}}, limits=["toy.bright_px > 3"])) == []
    )
    problems = recipe_problems("r", RecipeConfig(checks={"toy": {"level": 300}}))
    assert problems == [
        "recipes.r.checks.toy.level: Input should be less than or equal to 255 (got 300)"
    ]
    problems = recipe_problems("r", RecipeConfig(checks={"toy": {}}, limits=["toy.brite_px > 3"]))
    assert problems == [
        "recipes.r.limits.0: limit 'toy.brite_px > 3': no check of recipe 'r' produces "
        "toy.brite_px (did you mean `toy.bright_px`?)"
    ]
    # and the recipe runs it, under its name
    recipe = RecipeConfig(checks={"a": {"type": "toy", "level": 200}}, limits=["a.bright_px == 2"])
    image = np.array([[0, 199, 200, 255]], np.uint8)
    out = Inspector("r", recipe).inspect(image, context=CTX)
    assert out.verdict == "pass", out.reasons
    assert out.figures == {"a": {"bright_px": 2}}
    assert [r.check for r in out.regions] == ["a"]


@pytest.mark.usefixtures("toy_registered")
async def test_the_toy_ltu_service_answers(aiohttp_client: Any) -> None:
    app = web.Application()
    ltu.setup(app)
    client = await aiohttp_client(app)
    png = cv2.imencode(".png", np.array([[0, 199, 200, 255]], np.uint8))[1].tobytes()
    data = {"image": base64.b64encode(png).decode()}
    resp = await client.post(f"{ltu.PREFIX}/toyService?level=199", data=data)
    body = await resp.json()
    assert resp.status == 200, body
    assert body["result"] == {"bright_px": 3}


def test_a_toy_spec_is_unknown_without_its_registry_line() -> None:
    with pytest.raises(ConfigError, match=r"recipes\.r\.checks: unknown check"):
        validate_recipe("r", RecipeConfig(checks={"toy": {}}))
