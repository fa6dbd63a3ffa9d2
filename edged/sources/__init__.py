"""Frame sources: synthetic, GenICam (harvesters) and OpenCV, behind one contract."""

from edged.sources.base import EndOfStream, FrameSource, SourceState

__all__ = ["EndOfStream", "FrameSource", "SourceState"]
