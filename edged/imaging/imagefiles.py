"""Image files on disk: reading one as a check-ready image, and expanding folders.

Used by ``edged analyze``, ``edged teach`` and the reference store, so every command
accepts the same files and says the same thing about a bad one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edged.core.errors import InputError

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
)


def read_image_file(path: Path, *, max_pixels: int | None = None) -> np.ndarray:
    """An image file as ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 BGR (alpha dropped,
    16-bit scaled to 8 bits); InputError naming the file when it is not an image or has
    more than ``max_pixels`` pixels."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        msg = f"{path}: expected a readable image file, got {exc.strerror or exc}"
        raise InputError(msg) from exc
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        msg = f"{path}: expected a PNG/JPEG/BMP/TIFF image, got {data.size} undecodable bytes"
        raise InputError(msg)
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        msg = f"{path}: expected 8- or 16-bit samples, got {image.dtype}"
        raise InputError(msg)
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if max_pixels is not None and image.shape[0] * image.shape[1] > max_pixels:
        msg = f"{path}: expected at most {max_pixels} pixels, got {image.shape[1]}x{image.shape[0]}"
        raise InputError(msg)
    return np.ascontiguousarray(image)


def expand_image_paths(paths: Sequence[Path]) -> list[Path]:
    """Files as given; folders replaced by their image files, sorted by name."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES))
        else:
            files.append(p)
    return files
