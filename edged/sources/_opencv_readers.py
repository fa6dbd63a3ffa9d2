"""Blocking frame readers behind :class:`edged.sources.opencv.OpenCVSource`.

Each runs only in the source's reader thread. ``open()`` connects (or lists the
folder), ``read()`` returns the next :class:`Grab` or None at the end of a finite
input, and raises :class:`ReadFailed` when a live input stops answering.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from edged.config import OpenCVConfig
from edged.sources._pacing import Pacer

log = logging.getLogger(__name__)

Kind = Literal["device", "file", "folder", "stream"]

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}
)
_STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")
_STREAM_TIMEOUT_MS = 5000


class ReadFailed(Exception):
    """A live input (device, stream) stopped delivering frames."""


class OpenFailed(Exception):
    """The input cannot be opened; the message says what was expected."""


@dataclass(frozen=True, slots=True)
class Grab:
    """One image as read: (H, W) grey or (H, W, C) BGR(A), uint8 or uint16."""

    image: np.ndarray
    pixel_format: str
    frame_id: int | None = None
    media_ts_ns: int | None = None


def kind_of(device: int | str) -> Kind:
    """What ``device`` names: a V4L2/UVC device, a stream URL, a folder or a file."""
    if isinstance(device, int) or device.startswith("/dev/"):
        return "device"
    if device.lower().startswith(_STREAM_SCHEMES):
        return "stream"
    if Path(device).is_dir():
        return "folder"
    return "file"


def pixel_format_of(image: np.ndarray) -> str:
    """The PFNC name of an image as OpenCV reads it."""
    channels = 1 if image.ndim == 2 else image.shape[2]
    if image.dtype == np.uint8:
        return {1: "Mono8", 3: "BGR8", 4: "BGRa8"}[channels]
    if image.dtype == np.uint16 and channels == 1:
        return "Mono16"
    msg = f"image: expected uint8 grey/BGR/BGRA or uint16 grey, got {image.dtype} x{channels}"
    raise ValueError(msg)


@dataclass
class CaptureReader:
    """A ``cv2.VideoCapture``: a V4L2/UVC device, a video file or a network stream."""

    cfg: OpenCVConfig
    fps: float
    kind: Kind
    applied: dict[str, Any] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    _cap: Any = None
    _index: int = 0

    def open(self) -> None:
        self.close()
        device = self.cfg.device
        if self.kind == "device":
            api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
            cap = cv2.VideoCapture(device, api)
        elif self.kind == "stream":
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                _STREAM_TIMEOUT_MS,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                _STREAM_TIMEOUT_MS,
            ]
            cap = cv2.VideoCapture(str(device), cv2.CAP_FFMPEG, params)
        else:
            if not Path(str(device)).is_file():
                msg = f"opencv.device: expected an existing video file, got {device!r}"
                raise OpenFailed(msg)
            cap = cv2.VideoCapture(str(device), cv2.CAP_ANY)
        if not cap.isOpened():
            cap.release()
            msg = f"opencv.device: expected an openable {self.kind}, got {device!r}"
            raise OpenFailed(msg)
        self._cap = cap
        self._index = 0
        if self.kind == "device":
            self._configure(cap)

    def _configure(self, cap: Any) -> None:
        """Request the configured mode; record what the backend actually runs."""
        cfg = self.cfg
        wanted: list[tuple[str, int, float]] = []
        if cfg.fourcc is not None:
            wanted.append(("fourcc", cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*cfg.fourcc)))
        if cfg.width is not None:
            wanted.append(("width", cv2.CAP_PROP_FRAME_WIDTH, cfg.width))
        if cfg.height is not None:
            wanted.append(("height", cv2.CAP_PROP_FRAME_HEIGHT, cfg.height))
        wanted.append(("fps", cv2.CAP_PROP_FPS, self.fps))
        if cfg.exposure is not None:
            cap.set(cv2.CAP_PROP_AUTO_EXPOSURE, 1)  # V4L2: 1 = manual exposure
            wanted.append(("exposure", cv2.CAP_PROP_EXPOSURE, cfg.exposure))
        for name, prop, value in wanted:
            accepted = cap.set(prop, value)
            got = cap.get(prop)
            shown_got: Any = _fourcc_text(got) if name == "fourcc" else got
            shown_want: Any = cfg.fourcc if name == "fourcc" else value
            self.applied[name] = shown_got
            if not accepted or (name != "exposure" and abs(got - value) > 0.5):
                self.refused.append(f"{name}: requested {shown_want!r}, device runs {shown_got!r}")

    def read(self) -> Grab | None:
        cap = self._cap
        if cap is None:
            msg = "capture is closed"
            raise ReadFailed(msg)
        if self.kind == "file":
            self._pace()
        ok, image = cap.read()
        if not ok or image is None:
            if self.kind == "file":
                return None
            msg = f"{self.kind} {self.cfg.device!r}: no frame (disconnected or timed out)"
            raise ReadFailed(msg)
        frame_id = self._index
        self._index += 1
        media_ts = None
        if self.kind == "file":
            media_ts = int(cap.get(cv2.CAP_PROP_POS_MSEC) * 1e6)
        return Grab(image, pixel_format_of(image), frame_id, media_ts)

    _pacer: Pacer = field(default_factory=Pacer)  # a late frame does not hurry the next

    def _pace(self) -> None:
        if wait_s := self._pacer.wait_s(time.monotonic(), self.fps):
            time.sleep(wait_s)

    def rewind(self) -> bool:
        """Back to the first frame of a file (for ``loop``)."""
        if self._cap is None:
            return False
        ok = bool(self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0))
        if not ok:
            self.open()
        return True

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


@dataclass
class FolderReader:
    """The images of a folder (or one image file), in name order."""

    cfg: OpenCVConfig
    fps: float
    kind: Kind = "folder"
    applied: dict[str, Any] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _files: list[Path] = field(default_factory=list)
    _pos: int = 0
    _pacer: Pacer = field(default_factory=Pacer)  # a late image does not hurry the next

    def open(self) -> None:
        root = Path(str(self.cfg.device))
        if root.is_file():
            files = [root]
        elif root.is_dir():
            files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            msg = f"opencv.device: expected an existing image folder, got {str(root)!r}"
            raise OpenFailed(msg)
        if not files:
            msg = f"opencv.device: expected image files in {str(root)!r}, got none"
            raise OpenFailed(msg)
        self._files = files
        self._pos = 0

    def read(self) -> Grab | None:
        while self._pos < len(self._files):
            path = self._files[self._pos]
            index = self._pos
            self._pos += 1
            if wait_s := self._pacer.wait_s(time.monotonic(), self.fps):
                time.sleep(wait_s)
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            try:
                if image is None:
                    msg = "not a readable image"
                    raise ValueError(msg)
                fmt = pixel_format_of(image)
            except ValueError as exc:
                self.errors.append(f"{path.name}: {exc}")
                log.warning("image folder: skipped %s: %s", path, exc)
                continue
            return Grab(image, fmt, index, None)
        return None

    def rewind(self) -> bool:
        self._pos = 0
        return True

    def close(self) -> None:
        self._files = []


Reader = CaptureReader | FolderReader


def make_reader(cfg: OpenCVConfig, fps: float) -> Reader:
    kind = kind_of(cfg.device)
    if kind == "file" and Path(str(cfg.device)).suffix.lower() in IMAGE_SUFFIXES:
        return FolderReader(cfg, fps)
    if kind == "folder":
        return FolderReader(cfg, fps)
    return CaptureReader(cfg, fps, kind)


def _fourcc_text(value: float) -> str:
    code = int(value)
    return "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
