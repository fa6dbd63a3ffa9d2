"""Hand-built images with known answers for the image-check tests."""

from __future__ import annotations

import cv2
import numpy as np


def disk_scene(
    size_wh: tuple[int, int] = (640, 480),
    center_xy: tuple[int, int] = (300, 250),
    radius_px: int = 120,
    *,
    background_bgr: tuple[int, int, int] = (40, 60, 80),
    disk_bgr: tuple[int, int, int] = (200, 180, 30),
    noise_sigma: float = 4.0,
    seed: int = 7,
) -> tuple[np.ndarray, np.ndarray]:
    """A BGR image with one filled disk, and the disk's true 0/1 mask."""
    w, h = size_wh
    img = np.empty((h, w, 3), np.float32)
    img[:] = background_bgr
    truth = np.zeros((h, w), np.uint8)
    cv2.circle(truth, center_xy, radius_px, 1, -1)
    img[truth == 1] = disk_bgr
    img += noise_sigma * np.random.default_rng(seed).standard_normal(img.shape, np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), truth


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two 0/1 masks."""
    a, b = a.astype(bool), b.astype(bool)
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 1.0


def shapes_scene() -> np.ndarray:
    """Grey 400×300: a 100×60 rectangle, a disk of radius 50 and a 20×20 square, white
    on black."""
    img = np.zeros((300, 400), np.uint8)
    cv2.rectangle(img, (50, 40), (149, 99), 255, -1)  # x 50..149, y 40..99
    cv2.circle(img, (300, 200), 50, 255, -1)
    cv2.rectangle(img, (10, 250), (29, 269), 255, -1)  # x 10..29, y 250..269
    return img


def decode_png_b64(text: str) -> np.ndarray:
    """A base64 PNG from a ``to_dict()`` back to an array (masks read as 0/255)."""
    import base64

    data = np.frombuffer(base64.b64decode(text), np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    assert image is not None
    return image
