"""The recognition engine on tiny ONNX models built in code: exact answers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _models_helpers import (
    COLOURS,
    DET_BOXES,
    DET_CLASSES,
    DET_SCORES,
    DIRECT_POST,
    classifier_preprocessing,
    colour_classifier,
    constant_detector,
    constant_yolo,
    detector_preprocessing,
    labels,
)
from pydantic import ValidationError

from edged.models import (
    BBox,
    Detections,
    ModelError,
    NetworkConfig,
    PostProcessing,
    Recognizer,
    SpecOutputs,
    nms,
)
from edged.models.decode import softmax
from edged.models.preprocess import preprocess
from edged.models.vocabulary import ImagePreprocessing


def _recognizer(
    model: bytes, pre: dict[str, Any], spec: dict[str, Any], post: dict[str, Any]
) -> Recognizer:
    return Recognizer(
        model,
        network=NetworkConfig.model_validate(pre),
        spec=SpecOutputs.model_validate(spec),
        post=PostProcessing.model_validate(post),
    )


def _classifier(**post: Any) -> Recognizer:
    return _recognizer(
        colour_classifier(),
        classifier_preprocessing(),
        labels(COLOURS),
        {"classification": {"output_tensor": "logits", **post}},
    )


def _image(bgr: tuple[int, int, int], h: int = 16, w: int = 16) -> np.ndarray:
    return np.full((h, w, 3), bgr, np.uint8)


def test_classifier_softmax_of_logits_with_default_threshold() -> None:
    rec = _classifier().recognize(_image((0, 0, 255)))  # BGR red
    expected = softmax(np.array([10.0, 0.0, 0.0]))
    assert [p.label_name for p in rec.predicted] == ["red"]
    top = rec.predicted[0]
    assert top.label_id == 0
    assert top.score == round(float(expected[0]), 6)
    assert top.threshold == 0.025  # the document's classification default
    assert top.bbox == BBox(0.0, 0.0, 1.0, 1.0)
    assert [(p.label_name, p.score) for p in rec.discarded] == [
        ("green", round(float(expected[1]), 6)),
        ("blue", round(float(expected[2]), 6)),
    ]
    d = rec.to_dict()["outputs"][0]["labels"]
    assert d["predicted"][0] == {
        "label_id": 0,
        "label_name": "red",
        "score": round(float(expected[0]), 6),
        "threshold": 0.025,
        "roi": {"region_id": 1, "bbox": {"xmin": 0.0, "ymin": 0.0, "xmax": 1.0, "ymax": 1.0}},
    }
    assert rec.to_dict(show_discarded=False)["outputs"][0]["labels"]["discarded"] == []


def test_classifier_per_label_thresholds_discard_threshold_and_cap() -> None:
    # grey: equal logits -> 1/3 each; thresholds decide, discard_threshold hides.
    rec = _classifier(thresholds=[0.3, 0.4, 0.3]).recognize(_image((128, 128, 128)))
    assert [p.label_name for p in rec.predicted] == ["red", "blue"]
    assert [p.threshold for p in rec.predicted] == [0.3, 0.3]
    assert [p.label_name for p in rec.discarded] == ["green"]
    assert rec.predicted[0].score == round(1 / 3, 6)
    rec = _classifier(discard_threshold=0.5).recognize(_image((128, 128, 128)))
    assert rec.predicted == ()
    assert rec.discarded == ()
    rec = _classifier(thresholds=[0.3, 0.3, 0.3]).recognize(
        _image((128, 128, 128)), max_predictions=1
    )
    assert len(rec.predicted) == 1


def test_classifier_probabilities_pass_through_and_tagging_sigmoid() -> None:
    # bias makes the output already a distribution for black: [0.7, 0.2, 0.1]
    model = colour_classifier(gain=0.0, bias=(0.7, 0.2, 0.1))
    rec = _recognizer(
        model,
        classifier_preprocessing(),
        labels(COLOURS),
        {"classification": {"output_tensor": "logits"}},
    ).recognize(_image((0, 0, 0)))
    assert [(p.label_name, p.score) for p in rec.predicted] == [
        ("red", 0.7),
        ("green", 0.2),
        ("blue", 0.1),
    ]
    tag = _recognizer(
        colour_classifier(gain=10.0, bias=(-5.0, -5.0, -5.0)),
        classifier_preprocessing(),
        labels(COLOURS, exclusive=False),
        {"classification": {"output_tensor": "logits"}},
    ).recognize(_image((255, 0, 255)))  # magenta: red and blue
    assert tag.kind == "tagging"
    s = round(float(1 / (1 + np.exp(-5.0))), 6)
    assert [(p.label_name, p.score, p.threshold) for p in tag.predicted] == [
        ("red", s, 0.5),
        ("blue", s, 0.5),
    ]
    assert [p.label_name for p in tag.discarded] == ["green"]


def test_input_bbox_crops_before_classifying() -> None:
    image = _image((0, 0, 255), w=32)
    image[:, 16:] = (255, 0, 0)  # right half blue
    rec = _classifier().recognize(image, bbox=BBox(0.5, 0.0, 1.0, 1.0))
    assert rec.predicted[0].label_name == "blue"
    assert rec.predicted[0].bbox == BBox(0.5, 0.0, 1.0, 1.0)


def _detector(
    size_wh: tuple[int, int] = (100, 50), resize: str = "SQUASH", **post: Any
) -> Recognizer:
    det = {"detection": {**DIRECT_POST["detection"], **post}}
    return _recognizer(
        constant_detector(DET_BOXES, DET_SCORES, DET_CLASSES, size_wh=size_wh),
        detector_preprocessing(size_wh, resize),
        labels(("screw", "nut"), roi="BBOX", first_id=1),
        det,
    )


def test_detector_nms_thresholds_and_normalised_boxes() -> None:
    rec = _detector().recognize(_image((0, 0, 0), h=100, w=200))
    assert rec.kind == "detection"
    got = [
        (p.label_name, p.label_id, p.score, p.threshold, p.region_id, p.bbox) for p in rec.predicted
    ]
    assert got == [
        ("screw", 1, 0.95, 0.8, 1, BBox(0.1, 0.1, 0.5, 0.5)),  # B (IoU 0.86 with A) suppressed
        ("nut", 2, 0.85, 0.8, 2, BBox(0.1, 0.1, 0.5, 0.5)),  # other class: NMS keeps it
    ]
    # D is below its threshold (0.8), E below discard_threshold (0.025): gone.
    assert [(p.label_name, p.score, p.region_id, p.bbox) for p in rec.discarded] == [
        ("screw", 0.5, 3, BBox(0.6, 0.6, 0.8, 0.9))
    ]


def test_detector_nms_threshold_one_keeps_overlaps_and_per_label_thresholds() -> None:
    rec = _detector(nms_threshold=1.0, thresholds=[0.4, 0.9]).recognize(_image((0, 0, 0)))
    assert [(p.label_name, p.score) for p in rec.predicted] == [
        ("screw", 0.95),
        ("screw", 0.9),
        ("screw", 0.5),
    ]
    assert [(p.label_name, p.score, p.threshold) for p in rec.discarded] == [("nut", 0.85, 0.9)]


def test_detector_letterbox_and_crop_map_back_to_the_image() -> None:
    # 200 x 100 image into a 100 x 100 NETWORK input: scale 0.5, the image fills the top half
    rec = _detector((100, 100), "NETWORK").recognize(_image((0, 0, 0), h=100, w=200))
    assert rec.predicted[0].bbox == BBox(0.1, 0.2, 0.5, 1.0)
    # an input bbox: boxes stay relative to the whole image
    rec = _detector().recognize(_image((0, 0, 0), h=100, w=200), bbox=BBox(0.5, 0.0, 1.0, 1.0))
    assert rec.predicted[0].bbox == BBox(0.55, 0.1, 0.75, 0.5)


def test_yolo_anchor_free_single_tensor() -> None:
    # (4 + C, N): cx, cy, w, h in input pixels, then one score per label
    table = np.array(
        [
            [20, 22, 48],
            [20, 20, 48],
            [20, 20, 10],
            [20, 20, 10],
            [0.9, 0.85, 0.0],
            [0.1, 0.0, 0.95],
        ],
        np.float32,
    )
    rec = _recognizer(
        constant_yolo(table),
        {
            "inputs": [
                {"tensor_name": "images", "image": {"target_size": "64x64", "pixel_scaling": 1.0}}
            ]
        },
        labels(("a", "b"), roi="BBOX"),
        {"detection": {"yolo_output": {"output_tensor": "output0"}, "nms_threshold": 0.45}},
    ).recognize(_image((0, 0, 0), h=64, w=64))
    assert [(p.label_name, p.score, p.bbox) for p in rec.predicted] == [
        ("b", 0.95, BBox(43 / 64, 43 / 64, 53 / 64, 53 / 64)),
        ("a", 0.9, BBox(10 / 64, 10 / 64, 30 / 64, 30 / 64)),
    ]
    assert [(p.label_name, p.score) for p in rec.discarded] == [("b", 0.1)]


def test_nms_on_the_container() -> None:
    dets = Detections.of(
        [[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]],
        [0.5, 0.9, 0.7, 0.6],
        [0, 0, 0, 1],
    )
    kept = nms(dets, iou_threshold=0.5)
    assert kept.confidence.tolist() == pytest.approx([0.9, 0.7, 0.6])
    assert kept.class_id.tolist() == [0, 0, 1]
    assert len(nms(Detections.empty(), iou_threshold=0.5)) == 0


def test_preprocess_layouts_scaling_and_mean() -> None:
    image = np.zeros((2, 4, 3), np.uint8)
    image[:, :, 2] = 255  # BGR red
    prep = ImagePreprocessing(
        target_size="4x2",
        dimension_order="NHWC",
        color_channels="RGB",
        pixel_scaling=2.0,
        mean=(1.0,),
    )
    tensor, _geom = preprocess(image, prep)
    assert tensor.shape == (1, 2, 4, 3)
    assert tensor.dtype == np.float32
    assert tensor[0, 0, 0].tolist() == [1.0, -1.0, -1.0]
    grey = preprocess(
        image, ImagePreprocessing(target_size="2", color_channels="L", data_type="UINT8")
    )[0]
    assert grey.shape == (1, 1, 2, 2)
    assert grey.dtype == np.uint8
    assert grey[0, 0, 0, 0] == 76  # BT.601 luma of pure red
    crop_t, crop_g = preprocess(
        np.arange(4 * 8, dtype=np.uint8).reshape(4, 8),
        ImagePreprocessing(target_size="4x4", resize_type="CROP", color_channels="L"),
    )
    assert crop_t.shape == (1, 1, 4, 4)
    assert (crop_g.offset_x, crop_g.scale_x) == (-2, 1.0)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"model": b"not a model"}, "expected an ONNX model"),
        ({"tensor": "data"}, "expected tensor names from ['input'], got ['data']"),
        ({"size": "16x16"}, "wrong input size: the graph wants 8x8"),
        ({"output": "prob"}, "expected output tensors from ['logits'], got ['prob']"),
        ({"labels": ("a", "b")}, "expected 2 scores (one per label), got 3"),
        ({"thresholds": [0.1]}, "expected 3 (one per label), got 1"),
        ({"post": "detection"}, "expected 'classification' for a classification spec"),
        ({"channels": "L"}, "the graph wants 3 channels"),
    ],
)
def test_bad_models_are_refused_when_loaded(change: dict[str, Any], expected: str) -> None:
    pre = classifier_preprocessing()
    pre["inputs"][0]["tensor_name"] = change.get("tensor", "input")
    pre["inputs"][0]["image"]["target_size"] = change.get("size", "8x8")
    pre["inputs"][0]["image"]["color_channels"] = change.get("channels", "RGB")
    post: dict[str, Any] = {"classification": {"output_tensor": change.get("output", "logits")}}
    if "thresholds" in change:
        post["classification"]["thresholds"] = change["thresholds"]
    if change.get("post") == "detection":
        post = DIRECT_POST
    with pytest.raises(ModelError) as err:
        _recognizer(
            change.get("model", colour_classifier()),
            pre,
            labels(change.get("labels", COLOURS)),
            post,
        )
    assert expected in str(err.value)


def test_unknown_detector_class_is_refused_when_loaded() -> None:
    with pytest.raises(ModelError, match=r"expected label ids from \[1, 2\], got \[7\]"):
        _recognizer(
            constant_detector(DET_BOXES, DET_SCORES, np.array([1, 7, 2, 1, 1], np.float32)),
            detector_preprocessing(),
            labels(("screw", "nut"), roi="BBOX", first_id=1),
            DIRECT_POST,
        )


@pytest.mark.parametrize(
    ("model", "doc", "expected"),
    [
        (ImagePreprocessing, {"target_size": "big"}, "expected 'WIDTHxHEIGHT'"),
        (ImagePreprocessing, {"resize_type": "STRETCH"}, "SQUASH"),
        (ImagePreprocessing, {"mean": [1, 2]}, "expected 1 or 3 values"),
        (PostProcessing, {}, "expected exactly one of classification"),
        (
            PostProcessing,
            {"detection": {"anchored_output": {"anchors_tensor": "rois"}}},
            "anchored_output is not supported",
        ),
        (
            SpecOutputs,
            {"outputs": [{"labels": {"labels": [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]}}]},
            "unique ids",
        ),
    ],
)
def test_vocabulary_refuses_bad_documents(model: Any, doc: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError, match=expected):
        model.model_validate(doc)
