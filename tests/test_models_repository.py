"""The model repository on disk: atomic revisions, validation at upload, shared loads."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from _models_helpers import (
    COLOURS,
    classifier_preprocessing,
    colour_classifier,
    labels,
)

from edged.core.errors import InputError, NotFoundError
from edged.models import ModelError
from edged.models.repository import ConflictError, ModelRepository

RED = np.full((16, 16, 3), (0, 0, 255), np.uint8)
POST = [{"classification": {"output_tensor": "logits"}}]


def _network(repo: ModelRepository, model: bytes | None = None, **pre: str) -> int:
    doc = {"name": "colours", "preprocessing": classifier_preprocessing()}
    doc["preprocessing"]["inputs"][0]["image"].update(pre)
    return repo.create_network(doc, {"model.onnx": model or colour_classifier()}, who="t@h").id


def _setup(repo: ModelRepository) -> tuple[int, int, int]:
    net = _network(repo)
    spec = repo.create_spec({"name": "colour", **labels(COLOURS)}).id
    version = repo.create_version({"spec_id": spec, "network_id": net, "post_processings": POST}).id
    return net, spec, version


def test_network_written_atomically_with_a_manifest(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    model = colour_classifier()
    net = _network(repo, model)
    base = tmp_path / "networks" / str(net)
    assert (base / "CURRENT").read_text().strip() == "r0001"
    manifest = json.loads((base / "r0001" / "manifest.json").read_text())
    assert manifest["created_by"] == "t@h"
    assert manifest["files"] == [
        {"file": "model.onnx", "sha256": hashlib.sha256(model).hexdigest(), "size": len(model)}
    ]
    assert manifest["doc"]["preprocessing"]["inputs"][0]["image"]["target_size"] == "8x8"
    assert (base / "r0001" / "model.onnx").read_bytes() == model
    assert [r.id for r in repo.records("networks")] == [net]
    api = repo.get("networks", net).to_api()
    assert (api["id"], api["name"], api["framework"], api["revision"]) == (
        net,
        "colours",
        "onnx",
        1,
    )
    assert not list(base.glob(".tmp-*"))


@pytest.mark.parametrize(
    ("model", "pre", "expected"),
    [
        (b"\x00garbage", {}, "expected an ONNX model"),
        (None, {"target_size": "32x32"}, "wrong input size: the graph wants 8x8"),
        (None, {"color_channels": "L"}, "the graph wants 3 channels"),
    ],
)
def test_bad_network_refused_at_upload_and_nothing_written(
    tmp_path: Path, model: bytes | None, pre: dict[str, str], expected: str
) -> None:
    repo = ModelRepository(tmp_path)
    with pytest.raises(ModelError, match=expected):
        _network(repo, model, **pre)
    assert repo.records("networks") == []


def test_upload_needs_the_graph_and_valid_documents(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    pre = classifier_preprocessing()
    with pytest.raises(InputError, match="expected the ONNX graph as a file"):
        repo.create_network({"name": "x", "preprocessing": pre}, {})
    with pytest.raises(InputError, match="framework: expected 'onnx'"):
        repo.create_network(
            {"name": "x", "framework": "caffe", "preprocessing": pre},
            {"model.onnx": colour_classifier()},
        )
    with pytest.raises(
        InputError, match=r"network preprocessing: \(root\): Input should be a valid dictionary"
    ):
        repo.create_network({"name": "x"}, {"model.onnx": colour_classifier()})
    with pytest.raises(InputError, match="spec outputs"):
        repo.create_spec({"name": "s", "outputs": [{"labels": {"labels": []}}]})


def test_version_is_checked_against_spec_and_network(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    net = _network(repo)
    two = repo.create_spec({"name": "two", **labels(("a", "b"))}).id
    with pytest.raises(ModelError, match="expected 2 scores"):
        repo.create_version({"spec_id": two, "network_id": net, "post_processings": POST})
    bad = [{"classification": {"output_tensor": "prob"}}]
    three = repo.create_spec({"name": "three", **labels(COLOURS)}).id
    with pytest.raises(ModelError, match=r"expected output tensors from \['logits'\]"):
        repo.create_version({"spec_id": three, "network_id": net, "post_processings": bad})
    with pytest.raises(NotFoundError, match="network 99"):
        repo.create_version({"spec_id": three, "network_id": 99, "post_processings": POST})
    assert repo.records("versions") == []


def test_version_loaded_once_shared_and_swapped_on_change(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    net, spec, version = _setup(repo)
    assert repo.get("specs", spec).doc["current_version_id"] == version
    first = repo.recognizer(version)
    assert repo.recognizer(version) is first
    assert repo.spec_recognizer(spec) == (version, first)
    assert first.recognize(RED).predicted[0].label_name == "red"
    # a new revision of the network whose bias favours blue
    doc = {"name": "colours", "preprocessing": classifier_preprocessing()}
    repo.replace_network(net, doc, {"model.onnx": colour_classifier(bias=(0, 0, 20))})
    second = repo.recognizer(version)
    assert second is not first
    assert second.recognize(RED).predicted[0].label_name == "blue"
    assert first.recognize(RED).predicted[0].label_name == "red"  # in-flight users unharmed
    assert [r.revision for r in repo.revisions("networks", net)] == [1, 2]
    repo.rollback("networks", net)
    assert repo.get("networks", net).revision == 1
    assert repo.recognizer(version).recognize(RED).predicted[0].label_name == "red"


def test_replacing_a_network_that_breaks_its_versions_is_undone(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    net, _, version = _setup(repo)
    doc = {"name": "colours", "preprocessing": classifier_preprocessing()}
    other = colour_classifier()  # same graph but with an output of another name below
    other = other.replace(b"logits", b"scores")
    with pytest.raises(ModelError, match="expected output tensors"):
        repo.replace_network(net, doc, {"model.onnx": other})
    assert repo.get("networks", net).revision == 1
    assert repo.recognizer(version).recognize(RED).predicted[0].label_name == "red"


def test_spec_update_delete_and_ids_never_reused(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    net, spec, version = _setup(repo)
    updated = repo.update_spec(spec, {"name": "renamed", "description": "d"})
    assert (updated.doc["name"], updated.revision) == ("renamed", 3)  # 2: current_version_id
    with pytest.raises(InputError, match="expected a version of spec"):
        repo.update_spec(spec, {"current_version_id": 42})
    with pytest.raises(ConflictError, match="used by versions"):
        repo.delete("networks", net)
    with pytest.raises(ConflictError, match="outputs cannot change"):
        repo.update_spec(spec, {"outputs": labels(("a",))["outputs"]})
    repo.delete("versions", version)
    assert repo.get("specs", spec).doc["current_version_id"] is None
    with pytest.raises(NotFoundError, match="expected a current version"):
        repo.spec_recognizer(spec)
    repo.delete("networks", net)
    with pytest.raises(NotFoundError):
        repo.get("networks", net)
    assert _network(repo) > version  # a fresh id, never a reused one


def test_old_revisions_pruned_and_rollback_to_a_named_one(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path, keep_revisions=2)
    spec = repo.create_spec({"name": "s0", **labels(COLOURS)}).id
    for i in range(1, 4):
        repo.update_spec(spec, {"name": f"s{i}"})
    assert [r.revision for r in repo.revisions("specs", spec)] == [3, 4]
    assert repo.rollback("specs", spec, 3).doc["name"] == "s2"
    with pytest.raises(NotFoundError, match=r"expected a revision from \[3, 4\], got 1"):
        repo.rollback("specs", spec, 1)


def test_mean_file_uploaded_with_the_network(tmp_path: Path) -> None:
    import io

    repo = ModelRepository(tmp_path)
    buf = io.BytesIO()
    np.save(buf, np.full((1, 1, 3), 0.5, np.float32), allow_pickle=False)
    doc = {"name": "m", "preprocessing": classifier_preprocessing()}
    doc["preprocessing"]["inputs"][0]["image"]["mean_file"] = "mean.npy"
    with pytest.raises(InputError, match=r"expected an uploaded file 'mean\.npy'"):
        repo.create_network(doc, {"model.onnx": colour_classifier()})
    net = repo.create_network(doc, {"model.onnx": colour_classifier(), "mean.npy": buf.getvalue()})
    spec = repo.create_spec({"name": "c", **labels(COLOURS)}).id
    v = repo.create_version({"spec_id": spec, "network_id": net.id, "post_processings": POST}).id
    # grey 128 -> 0.502 - 0.5 each channel: equal logits
    grey = np.full((8, 8, 3), 128, np.uint8)
    scores = [p.score for p in repo.recognizer(v).recognize(grey).predicted]
    assert scores == [pytest.approx(1 / 3, abs=1e-6)] * 3
