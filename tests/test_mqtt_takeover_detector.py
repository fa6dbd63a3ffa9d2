"""The client-id clash detector on its own (the broker test is in test_mqtt_takeover.py)."""

from __future__ import annotations

from edged.publish._takeover import TakeoverDetector, clash_message


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _flap(
    det: TakeoverDetector, clock: Clock, up_s: float, reason: str = "the connection closed"
) -> bool:
    det.connected()
    clock.now += up_s
    fired = det.disconnected(reason)
    clock.now += 0.1  # reconnect backoff
    return fired


def test_quick_disconnects_after_connects_are_a_clash_reported_once() -> None:
    clock = Clock()
    det = TakeoverDetector(quick_s=5, window_s=60, threshold=3, clock=clock)
    fired = [_flap(det, clock, 0.4) for _ in range(10)]  # ~2.5 evictions a second
    assert fired == [False, False, True] + [False] * 7
    assert det.suspected
    assert det.episodes == 1


def test_a_stable_connection_ends_the_episode_and_a_new_one_is_reported() -> None:
    clock = Clock()
    det = TakeoverDetector(quick_s=5, window_s=60, threshold=3, clock=clock)
    assert [_flap(det, clock, 0.4) for _ in range(3)][-1]
    det.connected()
    clock.now += 61
    det.check_stable()
    assert not det.suspected
    assert not det.disconnected("the connection closed")  # a long connection ended
    assert [_flap(det, clock, 0.4) for _ in range(3)] == [False, False, True]
    assert det.episodes == 2


def test_ordinary_outages_are_not_a_clash() -> None:
    clock = Clock()
    det = TakeoverDetector(quick_s=5, window_s=60, threshold=3, clock=clock)
    # Broker restarts: connections last minutes.
    assert not any(_flap(det, clock, 120) for _ in range(5))
    # Quick ones, but spread out: never 3 within a minute.
    for _ in range(5):
        assert not _flap(det, clock, 1)
        clock.now += 40
    assert not det.suspected


def test_mqtt5_says_session_taken_over_at_once() -> None:
    clock = Clock()
    det = TakeoverDetector(clock=clock)
    assert _flap(det, clock, 30, "broker sent DISCONNECT: Session taken over")
    assert det.suspected


def test_the_message_says_what_to_do() -> None:
    text = clash_message("edged-demo", "127.0.0.1:1883", 5, 60)
    assert "same client id 'edged-demo'" in text
    assert "node_id" in text
    assert "at least 5 times within 60 s" in text
