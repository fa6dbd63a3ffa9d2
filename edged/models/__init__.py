"""Recognition models: ONNX networks with Deepomatic-style pre- and post-processing.

Vocabulary (Deepomatic API v0.7): a *network* is an ONNX graph plus its
preprocessing; a *recognition spec* names the outputs (classification, tagging or
detection labels); a *version* implements a spec with a network and its
post-processing. :class:`Recognizer` is one loaded version: ``recognize(image)``
returns a :class:`Recognition` (predicted and discarded labels, boxes normalised to
[0, 1], origin top-left). Imports only edged.core and edged.imaging.
"""

from typing import Protocol

from edged.models.detections import Detections, nms
from edged.models.engine import ModelError, Recognizer, SessionOptions
from edged.models.results import BBox, Prediction, Recognition
from edged.models.vocabulary import (
    ImagePreprocessing,
    NetworkConfig,
    PostProcessing,
    SpecOutputs,
)


class RecognizerSource(Protocol):
    """Where checks get loaded models (the repository implements it)."""

    def resolve(self, ref: int | str) -> Recognizer:
        """A version id or a public model name -> the loaded model."""


__all__ = [
    "BBox",
    "Detections",
    "ImagePreprocessing",
    "ModelError",
    "NetworkConfig",
    "PostProcessing",
    "Prediction",
    "Recognition",
    "Recognizer",
    "RecognizerSource",
    "SessionOptions",
    "SpecOutputs",
    "nms",
]
