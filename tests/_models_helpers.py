"""Tiny deterministic ONNX models built in code, and their Deepomatic configs."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

COLOURS = ("red", "green", "blue")


def _model(nodes: list[Any], inputs: list[Any], outputs: list[Any], inits: list[Any]) -> bytes:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def colour_classifier(
    *, size: int = 8, gain: float = 10.0, bias: tuple[float, ...] = (0, 0, 0)
) -> bytes:
    """Input ``input`` (1, 3, size, size) RGB in [0, 1]; output ``logits`` (1, 3):
    ``gain * mean(channel) + bias`` — red, green, blue."""
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])
    inits = [
        numpy_helper.from_array(np.array(gain, np.float32), "gain"),
        numpy_helper.from_array(np.array(bias, np.float32), "bias"),
    ]
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Mul", ["flat", "gain"], ["scaled"]),
        helper.make_node("Add", ["scaled", "bias"], ["logits"]),
    ]
    return _model(nodes, [inp], [out], inits)


def constant_detector(
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    *,
    size_wh: tuple[int, int] = (100, 50),
) -> bytes:
    """Input ``image`` (1, 3, H, W); outputs ``boxes`` (1, N, 4), ``scores`` (1, N),
    ``classes`` (1, N): the given constants (plus 0 x the image mean, so the graph
    reads its input)."""
    w, h = size_wh
    n = len(boxes)
    inp = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, h, w])
    outs = [
        helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, n, 4]),
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, n]),
        helper.make_tensor_value_info("classes", TensorProto.FLOAT, [1, n]),
    ]
    inits = [
        numpy_helper.from_array(np.asarray(boxes, np.float32)[None], "b"),
        numpy_helper.from_array(np.asarray(scores, np.float32)[None], "s"),
        numpy_helper.from_array(np.asarray(classes, np.float32)[None], "c"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["b", "z"], ["boxes"]),
        helper.make_node("Add", ["s", "z"], ["scores"]),
        helper.make_node("Add", ["c", "z"], ["classes"]),
    ]
    return _model(nodes, [inp], outs, inits)


def constant_yolo(table: np.ndarray, *, size: int = 64) -> bytes:
    """Input ``images`` (1, 3, size, size); output ``output0`` = ``table[None]``."""
    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, *table.shape])
    inits = [
        numpy_helper.from_array(np.asarray(table, np.float32)[None], "t"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["t", "z"], ["output0"]),
    ]
    return _model(nodes, [inp], [out], inits)


def labels(
    names: tuple[str, ...], *, roi: str = "NONE", exclusive: bool = True, first_id: int = 0
) -> dict[str, Any]:
    return {
        "outputs": [
            {
                "labels": {
                    "roi": roi,
                    "exclusive": exclusive,
                    "labels": [{"id": first_id + i, "name": n} for i, n in enumerate(names)],
                }
            }
        ]
    }


def classifier_preprocessing(size: int = 8) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "tensor_name": "input",
                "image": {
                    "resize_type": "SQUASH",
                    "data_type": "FLOAT32",
                    "dimension_order": "NCHW",
                    "pixel_scaling": 1.0,
                    "target_size": f"{size}x{size}",
                    "color_channels": "RGB",
                },
            }
        ],
        "batched_output": True,
    }


def detector_preprocessing(
    size_wh: tuple[int, int] = (100, 50), resize: str = "SQUASH"
) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "tensor_name": "image",
                "image": {
                    "resize_type": resize,
                    "target_size": f"{size_wh[0]}x{size_wh[1]}",
                    "pixel_scaling": 1.0,
                    "color_channels": "RGB",
                },
            }
        ],
    }


DIRECT_POST: dict[str, Any] = {
    "detection": {
        "direct_output": {
            "boxes_tensor": "boxes",
            "scores_tensor": "scores",
            "classes_tensor": "classes",
        },
        "discard_threshold": 0.025,
        "nms_threshold": 0.3,
    }
}

# yxyx normalised boxes (TF order): A; B overlaps A (same class); C overlaps A
# (other class); D low score; E below the discard threshold.
DET_BOXES = np.array(
    [
        [0.1, 0.1, 0.5, 0.5],
        [0.12, 0.12, 0.52, 0.5],
        [0.1, 0.1, 0.5, 0.5],
        [0.6, 0.6, 0.9, 0.8],
        [0.0, 0.0, 0.2, 0.2],
    ],
    np.float32,
)
DET_SCORES = np.array([0.95, 0.9, 0.85, 0.5, 0.01], np.float32)
DET_CLASSES = np.array([1, 1, 2, 1, 1], np.float32)
