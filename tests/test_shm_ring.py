"""The shared-memory ring: leases (zero-copy views) and copies out of slots."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator

import numpy as np
import pytest

from edged.core.frames import Frame
from edged.imaging import pixfmt
from edged.sources._shm_ring import FrameMeta, Ring, RingWriter


def meta(slot: int, data: np.ndarray, fmt: str = "Mono8") -> FrameMeta:
    h, w = data.shape[:2]
    return FrameMeta(slot, data.nbytes, str(data.dtype), data.shape, fmt, w, h, 0)


@pytest.fixture
def rings() -> Iterator[tuple[Ring, RingWriter]]:
    ring = Ring(3, 64 * 48 * 2)
    writer = RingWriter(ring.name, ring.slots, ring.slot_bytes)
    yield ring, writer
    writer.close()
    ring.close()


def test_lease_is_a_read_only_view_released_after_its_last_derived_array(
    rings: tuple[Ring, RingWriter],
) -> None:
    ring, writer = rings
    img = np.arange(64 * 48, dtype=np.uint16).reshape(48, 64)
    writer.write(2, img)
    released: list[int] = []
    view = ring.lease(meta(2, img, "Mono16"), released.append)
    np.testing.assert_array_equal(view, img)
    assert not view.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        view[0, 0] = 1
    frame = Frame(view, "Mono16", 64, 48, "c", 0, 0)
    deep = pixfmt.decode_high(frame).image  # the very same memory, no copy
    assert np.shares_memory(deep, view)
    crop = deep[10:20, 5:9]
    del view, frame, deep
    gc.collect()
    assert released == []  # `crop` still looks into slot 2
    writer.write(2, np.zeros_like(img))  # what a misbehaving child would do...
    assert crop[0, 0] == 0  # ...shows through: the slot really is shared
    del crop
    assert released == [2]


def test_copy_out_is_independent_of_the_slot(rings: tuple[Ring, RingWriter]) -> None:
    ring, writer = rings
    img = np.full((48, 64), 7, dtype=np.uint8)
    writer.write(0, img)
    out = ring.copy_out(meta(0, img))
    writer.write(0, np.zeros_like(img))
    np.testing.assert_array_equal(out, img)
    assert out.flags.owndata


def test_a_lease_outlives_the_closed_ring() -> None:
    ring = Ring(2, 4096)
    writer = RingWriter(ring.name, ring.slots, ring.slot_bytes)
    img = np.arange(4096, dtype=np.uint8).reshape(64, 64)
    writer.write(1, img)
    writer.close()
    released: list[int] = []
    view = ring.lease(meta(1, img), released.append)
    ring.close()
    assert not os.path.exists(f"/dev/shm/{ring.name.lstrip('/')}")  # unlinked
    np.testing.assert_array_equal(view, img)  # still mapped while viewed
    with pytest.raises(RuntimeError, match="closed"):
        ring.lease(meta(0, img), released.append)
    del view
    assert released == [1]


def test_slot_and_size_are_checked(rings: tuple[Ring, RingWriter]) -> None:
    ring, _ = rings
    img = np.zeros((48, 64), np.uint8)
    with pytest.raises(ValueError, match=r"expected slot < 3 .* got slot 3"):
        ring.copy_out(meta(3, img))
    too_big = FrameMeta(0, ring.slot_bytes + 1, "uint8", (ring.slot_bytes + 1,), "Mono8", 1, 1, 0)
    with pytest.raises(ValueError, match=r"at most \d+ bytes, got slot 0 with \d+ bytes"):
        ring.lease(too_big, lambda slot: None)
