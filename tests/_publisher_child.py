"""A publisher in a child process, for tests that ``kill -9`` it.

    python tests/_publisher_child.py '<settings as JSON>' stream|connect

``stream``: publish a Result for cam1 every 50 ms (like a 20 fps line) and print
``seq <n>`` once each one is committed to the outbox. ``connect``: print
``connected`` once connected, then idle. Runs until killed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from _mqtt_helpers import make_result  # noqa: E402

from edged.config import Settings  # noqa: E402
from edged.publish import Publisher  # noqa: E402


async def main(settings: Settings, mode: str) -> None:
    pub = Publisher(settings)
    await pub.start()
    if mode == "connect":
        await pub.wait_connected()
        print("connected", flush=True)
        await asyncio.Event().wait()
    seq = 0
    while True:
        await pub.publish_result(make_result(seq))
        print(f"seq {seq}", flush=True)
        seq += 1
        await asyncio.sleep(0.05)


if __name__ == "__main__":
    asyncio.run(main(Settings(**json.loads(sys.argv[1])), sys.argv[2]))
