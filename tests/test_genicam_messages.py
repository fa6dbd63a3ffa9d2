"""The GenICam process protocol: frozen dataclasses that cross a real pipe."""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import threading

import pytest
from _acq_helpers import genicam_camera

from edged.sources._genicam_child import Acquisition, _commands, _Link
from edged.sources._genicam_messages import (
    Fatal,
    Opened,
    Release,
    Started,
    StateReport,
    Stop,
    Trigger,
    TriggerDone,
    UseRing,
)
from edged.sources._shm_ring import FrameMeta

MESSAGES = [
    Opened("viky (serial 0)", "0", 12_800, {"applied": {"Width": 128}, "refused": []}),
    Started(),
    FrameMeta(2, 12_800, "uint8", (100, 128), "Mono8", 128, 100, 5, 6, 7, {"Gain": 2.0}),
    StateReport(connected=True, frames=9, reconnects=1, last_error="x", device="viky"),
    TriggerDone(3, None),
    TriggerDone(4, "TriggerSoftware failed"),
    Fatal("resize", "too big", slot_bytes=40_000),
    UseRing("psm_1", 4, 12_800),
    Release(1),
    Trigger(5),
    Stop(),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_crosses_a_pipe_unchanged(msg: object) -> None:
    receive, send = mp.get_context("spawn").Pipe(duplex=False)
    with receive, send:
        send.send(msg)
        got = receive.recv()
    assert got == msg
    assert type(got) is type(msg)


def test_messages_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Release(1).slot = 2  # type: ignore[misc]


def test_the_command_thread_dispatches_commands_and_ignores_anything_else() -> None:
    ctx = mp.get_context("spawn")
    events_r, events_w = ctx.Pipe(duplex=False)
    commands_r, commands_w = ctx.Pipe(duplex=False)
    cam = genicam_camera()
    assert cam.genicam is not None
    acq = Acquisition("c", cam.genicam, _Link(events_w))
    thread = threading.Thread(target=_commands, args=(commands_r, acq), daemon=True)
    thread.start()
    try:
        commands_w.send(UseRing("psm_x", 4, 1024))
        assert acq.ring_event.wait(5)
        assert acq.ring_args == UseRing("psm_x", 4, 1024)

        commands_w.send(Trigger(7))  # no camera open: refused with a reason
        assert events_r.poll(5)
        assert events_r.recv() == TriggerDone(7, "camera is reconnecting")

        commands_w.send(("fault", "hang"))  # the old tuple protocol: not a command
        commands_w.send(Trigger(8))
        assert events_r.poll(5)
        assert events_r.recv() == TriggerDone(8, "camera is reconnecting")
        assert acq.last_error == "ignored an unknown command: tuple"
        assert thread.is_alive()

        commands_w.send(Stop())
        thread.join(5)
        assert not thread.is_alive()
        assert acq.stop_event.is_set()
    finally:
        for conn in (events_r, events_w, commands_r, commands_w):
            conn.close()
