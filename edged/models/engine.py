"""A loaded recognition version: an onnxruntime CPU session with its pre- and
post-processing.

Building a :class:`Recognizer` checks everything it can before the first frame:
the bytes are an ONNX model, the tensor names exist, the input size matches the
preprocessing, and one run on a grey image decodes into the spec's labels. Every
failure is a :class:`ModelError` that says what was expected and what came.
``recognize`` is thread-safe (onnxruntime sessions are).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edged.core.errors import InputError
from edged.models.decode import decode_direct, decode_gfl, decode_yolo, label_scores
from edged.models.detections import Detections, nms
from edged.models.preprocess import Geometry, preprocess, tensor_size
from edged.models.results import FULL_IMAGE, BBox, Prediction, Recognition
from edged.models.vocabulary import (
    DEFAULT_THRESHOLDS,
    NetworkConfig,
    PostProcessing,
    SpecOutputs,
)

if TYPE_CHECKING:
    import onnxruntime as ort


class ModelError(InputError):
    """A network, spec or version that cannot work together (refused when loaded)."""


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """onnxruntime CPU settings: ``threads`` intra-op threads per session."""

    threads: int = 1


def _session(model: bytes, options: SessionOptions) -> ort.InferenceSession:
    import onnxruntime as ort  # imported when the first model loads, not with edged

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, options.threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several untyped errors for bad graphs
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        msg = (
            f"network: expected an ONNX model onnxruntime can load, got {len(model)} bytes "
            f"({first})"
        )
        raise ModelError(msg) from exc


def _check_inputs(session: ort.InferenceSession, network: NetworkConfig) -> None:
    graph = {i.name: i for i in session.get_inputs()}
    given = {i.tensor_name for i in network.inputs}
    if missing := sorted(given - set(graph)):
        msg = f"preprocessing inputs: expected tensor names from {sorted(graph)}, got {missing}"
        raise ModelError(msg)
    if unfed := sorted(set(graph) - given):
        msg = f"preprocessing inputs: the graph also needs {unfed}; expected all of {sorted(graph)}"
        raise ModelError(msg)
    node = graph[network.image_input.tensor_name]
    prep = network.image
    shape = list(node.shape)
    if len(shape) != 4:
        msg = f"input {node.name!r}: expected a 4-D image tensor, the graph has {shape}"
        raise ModelError(msg)
    if prep.dimension_order == "NCHW":
        c, h, w = shape[1], shape[2], shape[3]
    else:
        h, w, c = shape[1], shape[2], shape[3]
    if isinstance(c, int) and c != prep.channels:
        msg = (
            f"input {node.name!r}: the graph wants {c} channels ({prep.dimension_order} "
            f"{shape}), color_channels {prep.color_channels} gives {prep.channels}"
        )
        raise ModelError(msg)
    fixed_h, fixed_w = isinstance(h, int), isinstance(w, int)
    if fixed_h or fixed_w:
        if prep.size_wh()[1] is None and prep.resize_type == "NETWORK":
            msg = (
                f"input {node.name!r}: the graph has a fixed size {shape}; expected "
                f"target_size 'WIDTHxHEIGHT', got {prep.target_size!r}"
            )
            raise ModelError(msg)
        tw, th = tensor_size(prep, (1, 1))
        if (fixed_w and w != tw) or (fixed_h and h != th):
            msg = (
                f"input {node.name!r}: wrong input size: the graph wants {w}x{h} "
                f"(WIDTHxHEIGHT, shape {shape}), target_size gives {tw}x{th}"
            )
            raise ModelError(msg)
    want = {"FLOAT32": "tensor(float)", "FLOAT16": "tensor(float16)", "UINT8": "tensor(uint8)"}
    if node.type != want[prep.data_type]:
        msg = f"input {node.name!r}: the graph wants {node.type}, data_type gives {prep.data_type}"
        raise ModelError(msg)


def check_network(
    model: bytes, network: NetworkConfig, options: SessionOptions | None = None
) -> ort.InferenceSession:
    """Load ``model`` and check that ``network``'s inputs fit its graph (names, channels,
    size, data type); raises :class:`ModelError` saying what was expected."""
    session = _session(model, options or SessionOptions())
    _check_inputs(session, network)
    return session


class NetworkRunner:
    """A network alone (no spec): its preprocessing and graph, giving raw outputs."""

    def __init__(
        self,
        model: bytes,
        network: NetworkConfig,
        *,
        mean: np.ndarray | None = None,
        options: SessionOptions | None = None,
    ) -> None:
        self.network = network
        self.mean = mean
        self.session = check_network(model, network, options)
        self.output_names = tuple(o.name for o in self.session.get_outputs())

    def _feed(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        feed = {}
        for item in self.network.inputs:
            if item.image is not None:
                feed[item.tensor_name] = tensor
            elif item.constant is not None:
                data = [
                    float(tensor.shape[int(v[5:])]) if isinstance(v, str) else v
                    for v in item.constant.data
                ]
                feed[item.tensor_name] = np.asarray(data, np.float32).reshape(item.constant.shape)
        return feed

    def run_tensor(self, tensor: np.ndarray, outputs: Sequence[str]) -> list[np.ndarray]:
        """``outputs`` for a prepared input tensor (batch axis dropped when batched)."""
        outs = self.session.run(list(outputs), self._feed(tensor))
        if self.network.batched_output:
            return [np.asarray(o)[0] for o in outs]
        return [np.asarray(o) for o in outs]

    def run(
        self, image: np.ndarray, *, outputs: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Raw output tensors for ``image`` (``(H, W)`` uint8 grey or ``(H, W, 3)`` BGR)."""
        names = list(outputs) if outputs else list(self.output_names)
        if unknown := [n for n in names if n not in self.output_names]:
            msg = f"output_tensors: expected names from {list(self.output_names)}, got {unknown}"
            raise InputError(msg)
        tensor, _ = preprocess(image, self.network.image, mean=self.mean)
        return dict(zip(names, self.run_tensor(tensor, names), strict=True))


class Recognizer:
    """One version: ``network`` preprocessing + ONNX graph + ``post`` for ``spec``."""

    def __init__(
        self,
        model: bytes,
        *,
        network: NetworkConfig,
        spec: SpecOutputs,
        post: PostProcessing,
        mean: np.ndarray | None = None,
        options: SessionOptions | None = None,
    ) -> None:
        self.network = network
        self.spec = spec
        self.post = post
        self.kind = spec.kind
        self._mean = mean
        labels = spec.labels.labels
        self.label_ids = tuple(label.id for label in labels)
        self.label_names = tuple(label.name for label in labels)
        self._check_kinds()
        cfg = post.detection or post.classification or post.tagging
        assert cfg is not None
        if cfg.thresholds is not None and len(cfg.thresholds) != len(labels):
            msg = (
                f"post_processing thresholds: expected {len(labels)} (one per label), "
                f"got {len(cfg.thresholds)}"
            )
            raise ModelError(msg)
        default = DEFAULT_THRESHOLDS[self.kind]
        self.thresholds = np.asarray(cfg.thresholds or [default] * len(labels), np.float64)
        fallback = 0.025 if self.kind == "detection" else 0.0
        discard = cfg.discard_threshold
        self.discard_threshold = fallback if discard is None else discard
        self.runner = NetworkRunner(model, network, mean=mean, options=options)
        self._outputs = self._output_names()
        self._self_test()

    # ------------------------------------------------------------------ checks

    def _check_kinds(self) -> None:
        post_kind = "detection" if self.post.detection is not None else "classification"
        spec_kind = "detection" if self.kind == "detection" else "classification"
        if post_kind != spec_kind:
            msg = (
                f"post_processing: expected {spec_kind!r} for a {self.kind} spec "
                f"(roi {self.spec.labels.roi}), got {self.post.kind!r}"
            )
            raise ModelError(msg)

    def _output_names(self) -> list[str]:
        post = self.post
        names: list[str]
        if post.detection is None:
            cfg = post.classification or post.tagging
            assert cfg is not None
            names = [cfg.output_tensor]
        elif (direct := post.detection.direct_output) is not None:
            names = [direct.boxes_tensor, direct.scores_tensor]
            if direct.classes_tensor:
                names.append(direct.classes_tensor)
        elif (yolo := post.detection.yolo_output) is not None:
            names = [yolo.output_tensor]
        else:
            gfl = post.detection.gfl_output
            assert gfl is not None
            names = [*gfl.scores_tensors, *gfl.distances_tensors]
        graph = list(self.runner.output_names)
        if missing := [n for n in names if n not in graph]:
            msg = f"post_processing: expected output tensors from {graph}, got {missing}"
            raise ModelError(msg)
        return names

    def _self_test(self) -> None:
        """One run on a grey image: the outputs must decode into the spec's labels."""
        tw, th = tensor_size(self.network.image, (64, 64))
        grey = np.full((max(th, 8), max(tw, 8)), 128, np.uint8)
        try:
            self.recognize(grey)
        except ModelError:
            raise
        except Exception as exc:
            msg = f"version: a test run does not fit the spec: {exc}"
            raise ModelError(msg) from exc

    # ------------------------------------------------------------------ running

    def run_tensor(self, tensor: np.ndarray) -> list[np.ndarray]:
        """The raw outputs this version reads, for a prepared input tensor."""
        return self.runner.run_tensor(tensor, self._outputs)

    def _detections(self, outs: list[np.ndarray], geometry: Geometry) -> Detections:
        det = self.post.detection
        assert det is not None
        n = len(self.label_ids)
        if det.direct_output is not None:
            classes = outs[2] if det.direct_output.classes_tensor else None
            return decode_direct(
                outs[0],
                outs[1],
                classes,
                det.direct_output,
                tensor_wh=geometry.tensor_wh,
                label_ids=self.label_ids,
                min_score=self.discard_threshold,
            )
        if det.yolo_output is not None:
            return decode_yolo(outs[0], n_labels=n, min_score=self.discard_threshold)
        gfl = det.gfl_output
        assert gfl is not None
        k = len(gfl.strides)
        return decode_gfl(
            outs[:k],
            outs[k:],
            gfl.strides,
            tensor_wh=geometry.tensor_wh,
            n_labels=n,
            min_score=self.discard_threshold,
        )

    def _prediction(self, pos: int, score: float, region_id: int, bbox: BBox) -> Prediction:
        return Prediction(
            label_id=self.label_ids[pos],
            label_name=self.label_names[pos],
            score=round(float(score), 6),
            threshold=float(self.thresholds[pos]),
            region_id=region_id,
            bbox=bbox,
        )

    def recognize(
        self,
        image: np.ndarray,
        *,
        bbox: BBox | None = None,
        max_predictions: int | None = None,
    ) -> Recognition:
        """Recognise ``image`` (``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR).

        ``bbox`` (normalised) crops the image first; boxes in the answer are still
        relative to the whole image. ``max_predictions`` caps each list.
        """
        region = FULL_IMAGE if bbox is None else bbox
        h, w = image.shape[:2]
        x, y, cw, ch = region.to_pixels(w, h)
        if cw < 1 or ch < 1:
            msg = f"bbox: expected a box at least 1 px wide and high, got {region.to_dict()}"
            raise InputError(msg)
        crop = image if bbox is None else image[y : y + ch, x : x + cw]
        tensor, geometry = preprocess(crop, self.network.image, mean=self._mean)
        outs = self.run_tensor(tensor)
        return self.postprocess(outs, geometry, region=region, max_predictions=max_predictions)

    def postprocess(
        self,
        outs: list[np.ndarray],
        geometry: Geometry,
        *,
        region: BBox = FULL_IMAGE,
        max_predictions: int | None = None,
    ) -> Recognition:
        """Raw outputs (from :meth:`run_tensor`) -> predicted and discarded labels.

        ``region`` is the part of the image the tensor was made from (normalised).
        """
        if self.post.detection is None:
            keep, drop = self._labels(outs[0], region, max_predictions)
        else:
            keep, drop = self._objects(outs, geometry, region)
        if max_predictions is not None:
            keep, drop = keep[:max_predictions], drop[:max_predictions]
        return Recognition(self.kind, tuple(keep), tuple(drop))

    def _labels(
        self, raw: np.ndarray, region: BBox, max_predictions: int | None
    ) -> tuple[list[Prediction], list[Prediction]]:
        cfg = self.post.classification or self.post.tagging
        assert cfg is not None
        scores = label_scores(
            raw,
            n_labels=len(self.label_ids),
            exclusive=self.kind == "classification",
            activation=cfg.activation,
        )
        keep: list[Prediction] = []
        drop: list[Prediction] = []
        cap = len(scores) if max_predictions is None else max_predictions
        for pos in np.argsort(-scores, kind="stable"):
            s = float(scores[pos])
            if s < self.discard_threshold:
                break  # sorted: the rest are lower
            target = keep if s >= self.thresholds[pos] else drop
            if len(target) < cap:
                target.append(self._prediction(int(pos), s, 1, region))
            elif len(keep) >= cap and len(drop) >= cap:
                break
        return keep, drop

    def _objects(
        self, outs: list[np.ndarray], geometry: Geometry, region: BBox
    ) -> tuple[list[Prediction], list[Prediction]]:
        det = self.post.detection
        assert det is not None
        dets = nms(self._detections(outs, geometry), iou_threshold=det.nms_threshold)
        boxes = geometry.to_image(dets.xyxy.astype(np.float64))
        rw, rh = region.xmax - region.xmin, region.ymax - region.ymin
        keep: list[Prediction] = []
        drop: list[Prediction] = []
        for i in range(len(dets)):
            pos = int(dets.class_id[i])
            s = float(dets.confidence[i])
            bx = boxes[i]
            full = BBox(
                round(float(region.xmin + bx[0] * rw), 6),
                round(float(region.ymin + bx[1] * rh), 6),
                round(float(region.xmin + bx[2] * rw), 6),
                round(float(region.ymin + bx[3] * rh), 6),
            )
            target = keep if s >= self.thresholds[pos] else drop
            target.append(self._prediction(pos, s, 0, full))
        keep = [_with_region(p, i + 1) for i, p in enumerate(keep)]
        drop = [_with_region(p, len(keep) + i + 1) for i, p in enumerate(drop)]
        return keep, drop


def _with_region(p: Prediction, region_id: int) -> Prediction:
    return Prediction(p.label_id, p.label_name, p.score, p.threshold, region_id, p.bbox)
