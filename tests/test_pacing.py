"""The fixed-rate schedule shared by the synthetic, file/folder and replay sources."""

from __future__ import annotations

import math

from edged.sources._pacing import Pacer


def test_on_time_frames_wait_for_their_slot() -> None:
    p = Pacer()
    assert p.wait_s(100.0, 10.0) == 0.0  # the first frame is due at once
    assert math.isclose(p.wait_s(100.02, 10.0), 0.08)  # next at 100.1
    assert math.isclose(p.wait_s(100.1, 10.0), 0.1)  # booked at 100.2


def test_a_late_frame_is_made_up_as_far_as_max_lag_allows() -> None:
    # Frame 2 (due at 10.1) is asked for at 10.5, 4 periods late.
    never, once, always = Pacer(-1), Pacer(1), Pacer(math.inf)
    for p in (never, once, always):
        assert p.wait_s(10.0, 10.0) == 0.0
        assert p.wait_s(10.5, 10.0) == 0.0  # late: due at once
    assert math.isclose(never.wait_s(10.5, 10.0), 0.1)  # a full period after the late one
    for _ in range(2):  # the slots of the last period (10.4, 10.5) come at once...
        assert once.wait_s(10.5, 10.0) == 0.0
    assert math.isclose(once.wait_s(10.5, 10.0), 0.1)  # ...10.2 and 10.3 are skipped
    for _ in range(3):  # every missed slot (10.2, 10.3, 10.4) is made up
        assert always.wait_s(10.5, 10.0) == 0.0
    assert math.isclose(always.wait_s(10.5, 10.0), 0.0)  # 10.5 itself
    assert math.isclose(always.wait_s(10.5, 10.0), 0.1)


def test_reset_makes_the_next_frame_due_at_once() -> None:
    p = Pacer()
    p.wait_s(0.0, 1.0)
    assert p.wait_s(0.0, 1.0) == 1.0
    p.reset()
    assert p.wait_s(0.0, 1.0) == 0.0
