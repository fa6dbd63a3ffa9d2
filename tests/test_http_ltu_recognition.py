"""LTU classification and objectDetection backed by recognition models."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from _http_helpers import png_bytes
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
from aiohttp.test_utils import TestClient

from edged.config import Settings
from edged.http.app import create_app
from edged.models.repository import ModelRepository
from edged.runtime.shared import Runtime

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
RED = np.full((20, 40, 3), (0, 0, 255), np.uint8)


def _versions(root: Path) -> tuple[int, int]:
    repo = ModelRepository(root)
    net = repo.create_network(
        {"name": "c", "preprocessing": classifier_preprocessing()},
        {"model.onnx": colour_classifier()},
    ).id
    spec = repo.create_spec({"name": "c", **labels(COLOURS)}).id
    post = [{"classification": {"output_tensor": "logits", "thresholds": [0.5] * 3}}]
    cls = repo.create_version({"spec_id": spec, "network_id": net, "post_processings": post}).id
    dnet = repo.create_network(
        {"name": "d", "preprocessing": detector_preprocessing()},
        {"model.onnx": constant_detector(DET_BOXES, DET_SCORES, DET_CLASSES)},
    ).id
    dspec = repo.create_spec({"name": "d", **labels(("screw", "nut"), roi="BBOX", first_id=1)}).id
    det = repo.create_version(
        {"spec_id": dspec, "network_id": dnet, "post_processings": [DIRECT_POST]}
    ).id
    return cls, det


@pytest.fixture
async def make_client(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[tuple[TestClient[Any, Any], int, int]]]]:
    runtimes: list[Runtime] = []
    cls, det = _versions(tmp_path / "models")

    async def make(**recognition: Any) -> tuple[TestClient[Any, Any], int, int]:
        settings = Settings(
            state_dir=tmp_path,
            http={"api_key": "k"},
            recognition={
                k: (cls if v == "cls" else det if v == "det" else v) for k, v in recognition.items()
            },
        )
        rt = Runtime.build(settings)
        runtimes.append(rt)
        return await aiohttp_client(create_app(rt)), cls, det

    yield make
    for rt in runtimes:
        rt.pool.shutdown()


def _form(image: bytes, **fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("image", image, filename="x.png", content_type="image/png")
    for key, value in fields.items():
        form.add_field(key, value)
    return form


H = {"Authorization": "Bearer k"}


async def test_classification_with_the_configured_version(make_client: Any) -> None:
    client, cls, _ = await make_client(classification="cls")
    resp = await client.post(
        "/v2/services/image/classification", data=_form(png_bytes(RED)), headers=H
    )
    assert resp.status == 200
    body = await resp.json()
    score = round(float(np.exp(10) / (np.exp(10) + 2)), 6)
    assert body["result"] == {
        "content": {
            "labelAnnotations": [
                {"score": score, "topicality": score, "mid": "0", "description": "red"}
            ]
        },
        "message": "ok",
        "code": "0",
    }
    # the LTU document's answer at the top level, as its clients read it
    assert body["content"] == body["result"]["content"]
    assert (body["message"], body["code"]) == ("ok", "0")
    assert body["details"]["name"] == "classification"
    assert body["details"]["score"] == score
    assert body["details"]["info"]["model"] == str(cls)


async def test_object_detection_vertices_and_the_model_option(make_client: Any) -> None:
    client, _, det = await make_client()
    image = np.zeros((100, 200, 3), np.uint8)
    resp = await client.post(
        "/v2/services/image/objectDetection",
        data=_form(png_bytes(image), model=str(det)),
        headers=H,
    )
    assert resp.status == 200
    body = await resp.json()
    assert body["content"] == body["result"]["content"]
    objects = body["content"]["localizedObjectAnnotations"]
    assert [(o["name"], o["mid"], o["score"]) for o in objects] == [
        ("screw", "1", 0.95),
        ("nut", "2", 0.85),
    ]
    assert objects[0]["boundingPoly"]["normalizedVertices"] == [
        {"x": 0.1, "y": 0.1},
        {"x": 0.5, "y": 0.1},
        {"x": 0.5, "y": 0.5},
        {"x": 0.1, "y": 0.5},
    ]


@pytest.mark.parametrize(
    ("service", "settings", "fields", "status", "expected"),
    [
        ("classification", {}, {}, 404, "set recognition.classification"),
        ("objectDetection", {"object_detection": "cls"}, {}, 400, "expected a detection model"),
        (
            "classification",
            {"classification": "det"},
            {},
            400,
            "expected a classification or tagging model",
        ),
        ("classification", {}, {"model": "9999"}, 404, "version 9999"),
        ("classification", {}, {"model": "no-such-public"}, 404, "public model: expected one of"),
        ("classification", {"classification": "cls"}, {"bogus": "1"}, 400, "unknown option"),
    ],
)
async def test_bad_requests_say_what_was_expected(
    make_client: Any,
    service: str,
    settings: dict[str, Any],
    fields: dict[str, str],
    status: int,
    expected: str,
) -> None:
    client, _, _ = await make_client(**settings)
    resp = await client.post(
        f"/v2/services/image/{service}", data=_form(png_bytes(RED), **fields), headers=H
    )
    assert resp.status == status
    body = await resp.json()
    assert expected in body["details"]["message"]
    assert body["result"] is None


async def test_wants_the_api_key_and_an_image(make_client: Any) -> None:
    client, _, _ = await make_client(classification="cls")
    resp = await client.post("/v2/services/image/classification", data=_form(png_bytes(RED)))
    assert resp.status == 401
    resp = await client.post("/v2/services/image/objectDetection", data={"x": "1"}, headers=H)
    assert resp.status == 400
