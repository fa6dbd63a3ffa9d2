"""A test-only fault hook for the GenICam acquisition process.

``FaultSwitch`` is passed to ``GenicamSource(..., faults=switch)``; it is pickled
into every acquisition process of that source. ``switch.fire(kind)`` in the test
queues a fault that the process's acquisition loop acts on once, on its next pass:

* ``destroy_acquirer`` — the ImageAcquirer is destroyed under the loop (kept as an
  object), so the next fetch fails like a lost device;
* ``hang`` — the acquisition loop blocks forever, like a driver stuck in a native
  call: no more frames, no more heartbeats.

A killed process needs no hook: ``os.kill(source.pid, signal.SIGKILL)``.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import time
from typing import Literal

from edged.sources._genicam_child import Acquisition

Fault = Literal["destroy_acquirer", "hang"]


class FaultSwitch:
    def __init__(self) -> None:
        self._queue = mp.get_context("spawn").SimpleQueue()

    def fire(self, kind: Fault) -> None:
        self._queue.put(kind)

    def poll(self, acquisition: Acquisition) -> None:
        if self._queue.empty():
            return
        kind = self._queue.get()
        if kind == "destroy_acquirer":
            ia = acquisition.acquirer
            if ia is not None:
                with contextlib.suppress(Exception):
                    ia.destroy()
        elif kind == "hang":
            while True:
                time.sleep(3600)
