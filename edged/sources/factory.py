"""Build the FrameSource a camera's config asks for."""

from __future__ import annotations

from edged.config import CameraConfig
from edged.core.errors import ConfigError
from edged.sources.base import FrameSource


def build_source(camera_id: str, cfg: CameraConfig) -> FrameSource:
    """A new, unstarted source for ``camera_id`` (``synthetic``, ``genicam`` or ``opencv``)."""
    if cfg.source == "genicam":
        from edged.sources.genicam import GenicamSource

        return GenicamSource(camera_id, cfg)
    if cfg.source == "opencv":
        from edged.sources.opencv import OpenCVSource

        return OpenCVSource(camera_id, cfg)
    if cfg.source == "synthetic":
        from edged.sources.synthetic import SyntheticSource

        return SyntheticSource(camera_id, cfg)
    msg = (
        f"cameras.{camera_id}.source: expected one of synthetic, genicam, opencv, "
        f"got {cfg.source!r}"
    )
    raise ConfigError(msg)
