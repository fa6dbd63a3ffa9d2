"""The official Deepomatic client (deepomatic-api 1.0.0), unchanged, against edged's server."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from _http_helpers import ServerThread, make_runtime, png_bytes
from _models_helpers import COLOURS, classifier_preprocessing, colour_classifier, labels
from aiohttp import web
from deepomatic.api.client import Client
from deepomatic.api.exceptions import ClientError, TaskError
from deepomatic.api.inputs import ImageInput

from edged.core.errors import InputError
from edged.http.deepomatic import TASKS
from edged.models.public import TEXT_ORIENTATION
from edged.models.repository import ModelRepository

KEY = "dpm-key"
POST = [{"classification": {"output_tensor": "logits"}}]
RED = np.full((16, 16, 3), (0, 0, 255), np.uint8)
BLUE = np.full((16, 16, 3), (255, 0, 0), np.uint8)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    runtime = make_runtime(api_key=KEY, url_fetch_hosts=["127.0.0.1"])
    runtime.models = ModelRepository(tmp_path_factory.mktemp("models"))

    images = {"blue": BLUE, "half": np.concatenate([RED, BLUE], axis=1)}

    def hook(app: web.Application) -> None:
        async def image(request: web.Request) -> web.Response:
            body = png_bytes(images[request.match_info["name"]])
            return web.Response(body=body, content_type="image/png")

        app.router.add_get("/fixtures/{name}.png", image)

    with ServerThread(runtime, app_hook=hook) as srv:
        yield srv


@pytest.fixture
def client(server: ServerThread) -> Client:
    return Client(api_key=KEY, host=server.url)


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "colours.onnx"
    path.write_bytes(colour_classifier())
    return path


def _top(data: dict[str, Any]) -> tuple[str, float]:
    best = data["outputs"][0]["labels"]["predicted"][0]
    return best["label_name"], best["score"]


def test_client_creates_runs_polls_lists_and_deletes(
    client: Client, model_file: Path, tmp_path: Path
) -> None:
    net = client.Network.create(
        name="colours",
        description="mean colour",
        framework="onnx",
        preprocessing=classifier_preprocessing(),
        files={"model.onnx": str(model_file)},
    )
    assert isinstance(net["id"], int)
    assert net["preprocessing"]["inputs"][0]["image"]["target_size"] == "8x8"
    # the network alone: raw output tensors (the client turns them into arrays)
    raw = net.inference(inputs=[ImageInput(png_bytes(RED), encoding="binary")])
    assert raw["logits"].tolist() == pytest.approx([10.0, 0.0, 0.0])
    spec = client.RecognitionSpec.create(name="colour", outputs=labels(COLOURS)["outputs"])
    version = client.RecognitionVersion.create(
        spec_id=spec["id"], network_id=net["id"], post_processings=POST
    )
    assert spec.refresh()["current_version_id"] == version["id"]

    # inference from a file, from bytes, from base64 (the client decodes it), on spec and version
    image_path = tmp_path / "red.png"
    image_path.write_bytes(png_bytes(RED))
    with open(image_path, "rb") as fh:
        assert _top(spec.inference(inputs=[ImageInput(fh)]))[0] == "red"
    assert (
        _top(version.inference(inputs=[ImageInput(png_bytes(BLUE), encoding="binary")]))[0]
        == "blue"
    )
    b64 = base64.b64encode(png_bytes(RED))
    data = spec.inference(inputs=[ImageInput(b64, encoding="base64")], show_discarded=True)
    labels_out = data["outputs"][0]["labels"]
    assert [p["label_name"] for p in labels_out["discarded"]] == ["green", "blue"]
    assert labels_out["predicted"][0]["roi"]["bbox"] == {
        "xmin": 0.0,
        "ymin": 0.0,
        "xmax": 1.0,
        "ymax": 1.0,
    }
    # a URL from an allowed host
    url = client.http_helper.host + f"fixtures/blue.png?api_key={KEY}"  # edged serves it too
    assert _top(version.inference(inputs=[ImageInput(url)]))[0] == "blue"
    # an input bbox (the client can send one only with a URL: its multipart encoder
    # cannot send floats): the right half of a red | blue image is blue
    box = {"xmin": 0.5, "ymin": 0.0, "xmax": 1.0, "ymax": 1.0}
    half = client.http_helper.host + f"fixtures/half.png?api_key={KEY}"
    assert _top(spec.inference(inputs=[ImageInput(half)]))[1] < 0.99
    data = spec.inference(inputs=[ImageInput(half, bbox=box)])
    assert _top(data)[0] == "blue"
    assert data["outputs"][0]["labels"]["predicted"][0]["roi"]["bbox"] == box

    # tasks: one at a time and as a batch
    tasks = [
        spec.inference(inputs=[ImageInput(png_bytes(c), encoding="binary")], return_task=True)
        for c in (RED, BLUE)
    ]
    assert [t["status"] for t in tasks] == ["success", "success"]
    pending, success, error = client.Task.batch_wait(tasks=tasks)
    assert (len(pending), len(success), len(error)) == (0, 2, 0)
    listed = list(client.Task.list(task_ids=[t.pk for t in tasks]))
    assert [_top(t["data"])[0] for t in listed] == ["red", "blue"]

    # lists, with paging followed by the client
    other = client.RecognitionSpec.create(name="other", outputs=labels(("a", "b"))["outputs"])
    names = [s["name"] for s in client.RecognitionSpec.list(limit=1)]
    assert names == ["colour", "other"]
    assert client.RecognitionSpec.list().count() == 2
    assert [v["id"] for v in spec.versions()] == [version["id"]]
    assert [n["name"] for n in client.Network.list()] == ["colours"]

    # update, then delete everything
    spec.update(name="colour-v2")
    assert client.RecognitionSpec.retrieve(spec["id"])["name"] == "colour-v2"
    with pytest.raises(ClientError) as err:
        net.delete()
    assert err.value.status_code == 409
    assert "used by versions" in err.value.json()["error"]
    version.delete()
    spec.delete()
    other.delete()
    net.delete()
    assert client.RecognitionSpec.list().count() == 0
    assert client.Network.list().count() == 0


def test_deterministic_failures_are_4xx_the_client_does_not_retry(
    client: Client, model_file: Path
) -> None:
    net = client.Network.create(
        name="c",
        framework="onnx",
        preprocessing=classifier_preprocessing(),
        files={"model.onnx": str(model_file)},
    )
    spec = client.RecognitionSpec.create(name="c", outputs=labels(COLOURS)["outputs"])
    client.RecognitionVersion.create(
        spec_id=spec["id"], network_id=net["id"], post_processings=POST
    )
    with pytest.raises(ClientError) as err:
        spec.inference(inputs=[ImageInput(b"not an image", encoding="binary")])
    assert err.value.status_code == 400
    assert "inputs[0].image.source" in err.value.json()["error"]
    with pytest.raises(ClientError) as err:
        spec.inference(inputs=[ImageInput("http://example.invalid/x.png")])
    assert err.value.status_code == 400
    assert "url_fetch_hosts" in err.value.json()["error"]
    with pytest.raises(ClientError) as err:
        client.RecognitionSpec.retrieve(99999).refresh()
    assert err.value.status_code == 404
    # a network that does not fit its preprocessing is refused at upload
    bad = classifier_preprocessing()
    bad["inputs"][0]["image"]["target_size"] = "32x32"
    with pytest.raises(ClientError) as err:
        client.Network.create(
            name="bad", framework="onnx", preprocessing=bad, files={"model.onnx": str(model_file)}
        )
    assert err.value.status_code == 400
    assert "wrong input size" in err.value.json()["error"]
    with pytest.raises(ClientError) as err:
        client.RecognitionVersion.create(
            spec_id=spec["id"],
            network_id=net["id"],
            post_processings=[{"classification": {"output_tensor": "nope"}}],
        )
    assert "expected output tensors from ['logits']" in err.value.json()["error"]
    with pytest.raises(ClientError) as err:
        Client(api_key="wrong", host=client.http_helper.host).RecognitionSpec.list()
    assert err.value.status_code == 401


@pytest.mark.skipif(not TEXT_ORIENTATION.available(), reason="rapidocr (models extra) absent")
def test_public_models_listed_and_run(client: Client) -> None:
    import cv2

    names = [s.pk for s in client.RecognitionSpec.list(public=True)]
    assert "text-orientation-v1" in names
    spec = client.RecognitionSpec.retrieve("text-orientation-v1")
    assert [lab["name"] for lab in spec["outputs"][0]["labels"]["labels"]] == ["0", "180"]
    line = np.full((48, 200, 3), 255, np.uint8)
    cv2.putText(line, "Hello World 42", (5, 34), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 2)
    flipped = cv2.rotate(line, cv2.ROTATE_180)
    assert _top(spec.inference(inputs=[ImageInput(png_bytes(line), encoding="binary")]))[0] == "0"
    assert (
        _top(spec.inference(inputs=[ImageInput(png_bytes(flipped), encoding="binary")]))[0] == "180"
    )


# ------------------------------------------------------------------ raw HTTP: every route


def _url(server: ServerThread, path: str) -> str:
    return f"{server.url}/v0.7{path}"


ROUTES = [
    ("GET", "/networks/"),
    ("POST", "/networks/"),
    ("GET", "/networks/1/"),
    ("PATCH", "/networks/1/"),
    ("PUT", "/networks/1/"),
    ("DELETE", "/networks/1/"),
    ("POST", "/networks/1/inference"),
    ("GET", "/networks/1/revisions"),
    ("POST", "/networks/1/rollback"),
    ("GET", "/recognition/specs/"),
    ("POST", "/recognition/specs/"),
    ("GET", "/recognition/specs/1/"),
    ("PATCH", "/recognition/specs/1/"),
    ("PUT", "/recognition/specs/1/"),
    ("DELETE", "/recognition/specs/1/"),
    ("GET", "/recognition/specs/1/versions"),
    ("POST", "/recognition/specs/1/inference"),
    ("GET", "/recognition/specs/1/revisions/"),
    ("POST", "/recognition/specs/1/rollback/"),
    ("GET", "/recognition/versions/"),
    ("POST", "/recognition/versions/"),
    ("GET", "/recognition/versions/1/"),
    ("DELETE", "/recognition/versions/1/"),
    ("POST", "/recognition/versions/1/inference"),
    ("GET", "/recognition/versions/1/revisions"),
    ("POST", "/recognition/versions/1/rollback"),
    ("GET", "/recognition/public/"),
    ("GET", "/recognition/public/text-orientation-v1/"),
    ("POST", "/recognition/public/text-orientation-v1/inference"),
    ("GET", "/tasks/"),
    ("GET", "/tasks/1/"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_wants_the_api_key(server: ServerThread, method: str, path: str) -> None:
    resp = requests.request(method, _url(server, path), timeout=10)
    assert resp.status_code == 401
    assert "api key" in resp.json()["error"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "expected"),
    [
        ("GET", "/networks/abc/", {}, 404, "expected a numeric id"),
        ("GET", "/networks/424242/", {}, 404, "network 424242"),
        ("POST", "/networks/", {"json": {"name": "x"}}, 400, "expected exactly one ONNX graph"),
        (
            "POST",
            "/networks/",
            {"files": {"model.onnx": b"junk"}, "data": {"name": "x"}},
            400,
            "network preprocessing",
        ),
        ("PATCH", "/networks/424242/", {"json": {"name": "y"}}, 404, "network 424242"),
        (
            "PATCH",
            "/networks/424242/",
            {"json": {"preprocessing": {}}},
            400,
            "expected name, description, metadata",
        ),
        ("DELETE", "/networks/424242/", {}, 404, "network 424242"),
        ("GET", "/networks/424242/revisions", {}, 404, "network 424242"),
        (
            "POST",
            "/networks/424242/inference",
            {
                "json": {
                    "inputs": [{"image": {"source": base64.b64encode(png_bytes(RED)).decode()}}]
                }
            },
            404,
            "network 424242",
        ),
        (
            "POST",
            "/networks/424242/inference",
            {
                "json": {
                    "inputs": [{"image": {"source": base64.b64encode(png_bytes(RED)).decode()}}],
                    "output_tensors": "logits",
                }
            },
            400,
            "output_tensors: expected a list",
        ),
        ("POST", "/networks/424242/rollback", {"json": {}}, 404, "network 424242"),
        ("POST", "/recognition/specs/", {"json": {"name": "s"}}, 400, "spec outputs"),
        (
            "POST",
            "/recognition/specs/",
            {"data": "{", "headers": {"Content-Type": "application/json"}},
            400,
            "invalid JSON",
        ),
        (
            "POST",
            "/recognition/specs/",
            {"json": {"outputs": labels(("a",))["outputs"]}},
            400,
            "spec name",
        ),
        ("PATCH", "/recognition/specs/424242/", {"json": {"name": "y"}}, 404, "spec 424242"),
        ("GET", "/recognition/specs/424242/versions", {}, 404, "spec 424242"),
        (
            "POST",
            "/recognition/specs/424242/inference",
            {
                "json": {
                    "inputs": [{"image": {"source": base64.b64encode(png_bytes(RED)).decode()}}]
                }
            },
            404,
            "spec 424242",
        ),
        (
            "POST",
            "/recognition/versions/",
            {"json": {"spec_id": "x", "network_id": 1, "post_processings": POST}},
            400,
            "spec_id: expected an integer id",
        ),
        (
            "POST",
            "/recognition/versions/",
            {"json": {"spec_id": 1, "network_id": 1, "post_processings": []}},
            400,
            "post_processings: expected a list of one",
        ),
        (
            "POST",
            "/recognition/versions/",
            {"json": {"spec_id": 1, "network_id": 1, "post_processings": [{"segmentation": {}}]}},
            400,
            "post_processings[0]",
        ),
        ("GET", "/recognition/versions/424242/", {}, 404, "version 424242"),
        ("DELETE", "/recognition/versions/424242/", {}, 404, "version 424242"),
        (
            "POST",
            "/recognition/versions/424242/inference",
            {"json": {"inputs": []}},
            400,
            "inputs: expected a list of one",
        ),
        (
            "POST",
            "/recognition/public/nope/inference",
            {
                "json": {
                    "inputs": [{"image": {"source": base64.b64encode(png_bytes(RED)).decode()}}]
                }
            },
            404,
            "public model: expected one of",
        ),
        (
            "POST",
            "/recognition/public/nope/inference",
            {"json": {"inputs": [{"image": {}}]}},
            400,
            "inputs[0].image.source",
        ),
        (
            "POST",
            "/recognition/public/nope/inference",
            {"json": {"inputs": [{"image": {"source": "%%%"}}]}},
            400,
            "invalid base64",
        ),
        (
            "POST",
            "/recognition/public/nope/inference",
            {
                "json": {
                    "inputs": [
                        {
                            "image": {
                                "source": base64.b64encode(png_bytes(RED)).decode(),
                                "bbox": {"xmin": 0.5, "ymin": 0, "xmax": 0.2, "ymax": 1},
                            }
                        }
                    ]
                }
            },
            400,
            "xmin < xmax",
        ),
        (
            "POST",
            "/recognition/public/nope/inference",
            {
                "json": {
                    "inputs": [{"image": {"source": base64.b64encode(png_bytes(RED)).decode()}}],
                    "max_predictions": "many",
                }
            },
            400,
            "max_predictions",
        ),
        (
            "POST",
            "/recognition/public/nope/inference",
            {
                "json": {
                    "inputs": [{"image": {"source": base64.b64encode(png_bytes(RED)).decode()}}],
                    "show_discarded": "maybe",
                }
            },
            400,
            "show_discarded",
        ),
        ("GET", "/recognition/public/nope/", {}, 404, "public model: expected one of"),
        ("GET", "/tasks/", {}, 400, "task_ids: expected one or more"),
        ("GET", "/tasks/?task_ids=x", {}, 400, "expected numeric task ids"),
        ("GET", "/tasks/424242/", {}, 404, "unknown or expired"),
        ("GET", "/recognition/specs/?limit=0", {}, 400, "limit: expected an integer"),
    ],
)
def test_bad_input_gets_a_clear_4xx(
    server: ServerThread, method: str, path: str, kwargs: dict[str, Any], status: int, expected: str
) -> None:
    headers = {"X-API-KEY": KEY, **kwargs.pop("headers", {})}
    resp = requests.request(method, _url(server, path), headers=headers, timeout=10, **kwargs)
    assert resp.status_code == status, resp.text
    assert expected in resp.json()["error"]


def test_raw_json_base64_and_data_url_inference(server: ServerThread, model_file: Path) -> None:
    client = Client(api_key=KEY, host=server.url)
    net = client.Network.create(
        name="raw",
        framework="onnx",
        preprocessing=classifier_preprocessing(),
        files={"model.onnx": str(model_file)},
    )
    spec = client.RecognitionSpec.create(name="raw", outputs=labels(COLOURS)["outputs"])
    version = client.RecognitionVersion.create(
        spec_id=spec["id"], network_id=net["id"], post_processings=POST
    )
    b64 = base64.b64encode(png_bytes(BLUE)).decode()
    for source in (b64, f"data:image/png;base64,{b64}"):
        body = {"inputs": [{"image": {"source": source}}], "show_discarded": False}
        resp = requests.post(
            _url(server, f"/recognition/versions/{version['id']}/inference"),
            json=body,
            headers={"X-API-KEY": KEY},
            timeout=10,
        )
        assert resp.status_code == 200
        task_id = resp.json()["task_id"]
        task = client.Task.retrieve(task_id).wait()
        assert task["status"] == "success"
        assert task["error"] is None
        assert _top(task["data"])[0] == "blue"
        assert task["data"]["outputs"][0]["labels"]["discarded"] == []
    version.delete()
    spec.delete()
    net.delete()


def test_task_error_surfaces_as_task_error(server: ServerThread) -> None:
    # a task whose work fails ends in "error"; the client raises TaskError
    client = Client(api_key=KEY, host=server.url)
    assert server.app is not None
    store = server.app[TASKS]

    async def boom() -> dict[str, Any]:
        raise InputError("image: expected something else")

    async def submit() -> int:
        return store.submit(boom).id

    task_id = server.call(submit())
    with pytest.raises(TaskError) as err:
        client.Task.retrieve(task_id).wait()
    assert "expected something else" in str(err.value)
