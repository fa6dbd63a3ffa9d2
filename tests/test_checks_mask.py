"""objectMaskDetection: every algorithm × colour space × channel on a drawn disk."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from _checks_helpers import decode_png_b64, disk_scene, iou

from edged.checks._channels import COLOR_SPACES, channel_names
from edged.checks.mask import ALGORITHMS, object_mask
from edged.core.errors import InputError

COMBOS = [
    (algorithm, space, channel)
    for algorithm in ALGORITHMS
    for space in COLOR_SPACES
    for channel in [*range(len(channel_names(space))), "auto"]
]


@pytest.fixture(scope="module")
def disk() -> tuple[np.ndarray, np.ndarray]:
    # The disk differs from the background in every channel of every colour space.
    return disk_scene()


@pytest.mark.parametrize(("algorithm", "space", "channel"), COMBOS)
def test_every_combination_finds_the_disk(
    disk: tuple[np.ndarray, np.ndarray], algorithm: str, space: str, channel: int | str
) -> None:
    img, truth = disk
    m = object_mask(img, algorithm=algorithm, color_space=space, channel=channel)  # type: ignore[arg-type]
    assert m.mask.shape == truth.shape
    assert m.mask.dtype == np.uint8
    assert set(np.unique(m.mask)) <= {0, 1}
    assert iou(m.mask, truth) >= 0.95
    assert m.components == 1
    assert m.area_px == int(m.mask.sum())
    box = m.bounding_box
    assert box is not None
    # drawn disk: x 180..420, y 130..370
    assert abs(box.x - 180) <= 2
    assert abs(box.y - 130) <= 2
    assert abs(box.width - 241) <= 3
    assert abs(box.height - 241) <= 3
    if channel != "auto":
        assert m.channel_index == channel
        assert m.channel == channel_names(space)[channel]  # type: ignore[index]


@pytest.mark.parametrize(
    ("space", "channel", "shown"),
    [
        ("G", 1, "expected one of 0, G or 'auto', got 1"),
        ("G", "S", "expected one of 0, G or 'auto', got 'S'"),
        ("HSV", 3, "expected one of 0, 1, 2, H, S, V or 'auto', got 3"),
        ("LAB", "Q", "got 'Q'"),
        ("RGB", -1, "got -1"),
    ],
)
def test_a_channel_the_space_lacks_is_a_clear_error(
    disk: tuple[np.ndarray, np.ndarray], space: str, channel: int | str, shown: str
) -> None:
    with pytest.raises(ValueError, match=f"channel for color_space {space}") as err:
        object_mask(disk[0], color_space=space, channel=channel)
    assert shown in str(err.value)


def test_unknown_algorithm_and_colour_space_are_clear_errors(
    disk: tuple[np.ndarray, np.ndarray],
) -> None:
    with pytest.raises(ValueError, match="algorithm: expected one of"):
        object_mask(disk[0], algorithm="WATERSHED")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="color_space: expected one of"):
        object_mask(disk[0], color_space="CMYK")


def test_channel_names_are_case_insensitive_and_aliases_work(
    disk: tuple[np.ndarray, np.ndarray],
) -> None:
    assert object_mask(disk[0], color_space="HSV", channel="s").channel == "S"
    assert object_mask(disk[0], color_space="YRB", channel="b").channel == "CB"
    assert object_mask(disk[0], color_space="G", channel="gray").channel == "G"
    assert object_mask(disk[0], color_space="RGB", channel="2").channel == "B"


def test_dark_object_on_bright_background_and_explicit_polarity() -> None:
    img, truth = disk_scene(background_bgr=(220, 220, 220), disk_bgr=(30, 30, 30))
    auto = object_mask(img, color_space="G")
    assert iou(auto.mask, truth) >= 0.95
    dark = object_mask(img, color_space="G", polarity="dark")
    assert iou(dark.mask, truth) >= 0.95
    bright = object_mask(img, color_space="G", polarity="bright", only_biggest=False)
    assert iou(bright.mask, 1 - truth) >= 0.95  # the background is the bright side


def test_only_biggest_keeps_the_largest_region() -> None:
    img = np.full((300, 400), 30, np.uint8)
    cv2.circle(img, (100, 150), 60, 220, -1)
    cv2.circle(img, (300, 150), 30, 220, -1)
    both = object_mask(img, color_space="G", only_biggest=False)
    one = object_mask(img, color_space="G", only_biggest=True)
    assert both.components == 2
    assert one.components == 1
    big = np.zeros_like(img)
    cv2.circle(big, (100, 150), 60, 1, -1)
    assert iou(one.mask, big) >= 0.95
    assert both.area_px > one.area_px


def test_binning_finds_objects_darker_and_brighter_than_the_background() -> None:
    img = np.full((300, 400), 128, np.uint8)
    cv2.circle(img, (100, 150), 50, 20, -1)
    cv2.circle(img, (300, 150), 50, 240, -1)
    truth = (img != 128).astype(np.uint8)
    m = object_mask(img, algorithm="BINNING", color_space="G", only_biggest=False)
    assert m.components == 2
    assert iou(m.mask, truth) >= 0.95
    bright = object_mask(
        img, algorithm="BINNING", color_space="G", only_biggest=False, polarity="bright"
    )
    assert bright.components == 1
    assert bright.bounding_box is not None
    assert bright.bounding_box.x >= 240


def test_hue_binning_wraps_around() -> None:
    # Background hue 178 (red) and an object at hue 2 (also red): the same bin
    # family; a green disk is the only object.
    img = np.zeros((200, 300, 3), np.uint8)
    img[:, :150] = cv2.cvtColor(np.uint8([[[178, 200, 200]]]), cv2.COLOR_HSV2BGR)[0, 0]
    img[:, 150:] = cv2.cvtColor(np.uint8([[[2, 200, 200]]]), cv2.COLOR_HSV2BGR)[0, 0]
    truth = np.zeros((200, 300), np.uint8)
    cv2.circle(truth, (150, 100), 40, 1, -1)
    img[truth == 1] = cv2.cvtColor(np.uint8([[[60, 200, 200]]]), cv2.COLOR_HSV2BGR)[0, 0]
    m = object_mask(img, algorithm="BINNING", color_space="HSV", channel="H", bins=18)
    assert iou(m.mask, truth) >= 0.95


def test_full_frame_runs_reduced_and_maps_back() -> None:
    img, truth = disk_scene((2448, 2048), (1200, 1000), 500)
    m = object_mask(img)
    assert m.work_factor == 2
    assert m.mask.shape == (2048, 2448)
    assert iou(m.mask, truth) >= 0.97
    full = object_mask(img, max_side_px=0)
    assert full.work_factor == 1
    assert iou(full.mask, truth) >= 0.99


def test_odd_sizes_are_covered_to_the_last_pixel() -> None:
    img, truth = disk_scene((1283, 1001), (1100, 500), 170)  # disk near the right edge
    m = object_mask(img, max_side_px=640)
    assert m.work_factor == 3
    assert m.mask.shape == truth.shape
    assert iou(m.mask, truth) >= 0.95


def test_uniform_image_has_an_empty_mask() -> None:
    m = object_mask(np.full((50, 60, 3), 90, np.uint8))
    assert m.area_px == 0
    assert m.bounding_box is None
    assert m.components == 0
    d = m.to_dict()
    assert d["boundingBox"] is None
    assert d["area_px"] == 0


def test_to_dict_mask_is_a_one_bit_png_of_the_mask(disk: tuple[np.ndarray, np.ndarray]) -> None:
    import base64

    m = object_mask(disk[0])
    d = m.to_dict()
    png = base64.b64decode(d["mask"])
    assert png[24] == 1
    assert png[25] == 0
    assert np.array_equal(decode_png_b64(d["mask"]) > 0, m.mask == 1)
    assert d["area_px"] == m.area_px
    assert d["boundingBox"] == m.bounding_box.to_dict()  # type: ignore[union-attr]
    assert d["area_per"] == pytest.approx(100.0 * m.area_px / m.mask.size, abs=1e-4)
    assert m.to_dict(images=False)["mask"] is None


def test_bins_out_of_range_and_bad_images_are_refused(
    disk: tuple[np.ndarray, np.ndarray],
) -> None:
    with pytest.raises(ValueError, match=r"bins: expected 2\.\.64"):
        object_mask(disk[0], algorithm="BINNING", bins=1)
    with pytest.raises(InputError, match="dtype float64"):
        object_mask(disk[0].astype(np.float64))
