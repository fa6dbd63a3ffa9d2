"""``edged watch``: subscribe to a node's results and print them as they arrive.

Table mode prints one aligned row per result (and a ``#`` line when the node's
status changes); ``json_lines`` prints each Result exactly as received, one JSON
object per line, for piping into ``jq`` or a file. Every message is printed as
received (QoS 1 is at least once: a repeated ``id`` is marked ``*`` in table mode).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import OrderedDict
from typing import Any, TextIO

from paho.mqtt.client import MQTTMessage

from edged.config import Settings
from edged.publish._link import MqttLink
from edged.publish._topics import Topics
from edged.publish.mqtt import link_options

log = logging.getLogger(__name__)

HEADER = (
    f"{'TIME (UTC)':<24} {'CAMERA':<12} {'SEQ':>8}  {'RECIPE':<14} {'VERDICT':<7} "
    f"{'MS':>8}  REASONS"
)
_SEEN_MAX = 10_000


def format_row(doc: dict[str, Any], *, repeated: bool = False) -> str:
    """One table row for a Result document (the JSON of ``edged.result.v1``)."""
    timings = doc.get("timings_ms") or {}
    total = timings.get("total", sum(v for v in timings.values() if isinstance(v, int | float)))
    reasons = "; ".join(doc.get("reasons") or [])
    if len(reasons) > 80:
        reasons = reasons[:77] + "..."
    seq = f"{doc.get('seq', '?')}{'*' if repeated else ''}"
    return (
        f"{doc.get('ts', '?')!s:<24} {doc.get('camera', '?')!s:<12} {seq:>8}  "
        f"{doc.get('recipe', '?')!s:<14} {str(doc.get('verdict', '?')).upper():<7} "
        f"{total:>8.1f}  {reasons}"
    ).rstrip()


async def watch(
    settings: Settings,
    *,
    camera: str | None = None,
    json_lines: bool,
    out: TextIO,
    node: str | None = None,
    count: int | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Print results of ``node`` (default: this config's node; ``+`` for every node)
    and ``camera`` (default: all) until ``count`` results were printed, ``stop``
    is set or the reader of ``out`` went away (a closed pipe ends the watch
    quietly). Returns how many results were printed."""
    topics = Topics(settings.mqtt.prefix, node or settings.node_id)
    result_topic = topics.result(camera or "+")
    status_topic = topics.status
    opts = link_options(settings, client_id=f"edged-watch-{uuid.uuid4().hex[:10]}", will=False)
    done = stop or asyncio.Event()
    seen: OrderedDict[str, None] = OrderedDict()
    printed = 0

    def write(text: str) -> bool:
        """Write and flush; False once the reader went away (``edged watch | head``)."""
        try:
            out.write(text)
            out.flush()
        except BrokenPipeError:
            done.set()
            return False
        return True

    def on_message(msg: MQTTMessage) -> None:
        nonlocal printed
        if done.is_set():
            return
        if msg.topic.endswith("/status"):
            if not json_lines:
                node_name = msg.topic.split("/")[-2]
                status = bytes(msg.payload).decode(errors="replace")
                write(f"# {node_name} status: {status}\n")
            return
        try:
            doc = json.loads(msg.payload)
            if not isinstance(doc, dict):
                raise TypeError(type(doc).__name__)
        except (ValueError, TypeError) as exc:
            log.warning("watch: %s: expected a Result JSON object, got %s", msg.topic, exc)
            return
        if count is not None and printed >= count:
            return
        if json_lines:
            line = json.dumps(doc, separators=(",", ":"))
        else:
            rid = str(doc.get("id"))
            repeated = rid in seen
            seen[rid] = None
            if len(seen) > _SEEN_MAX:
                seen.popitem(last=False)
            line = format_row(doc, repeated=repeated)
        if not write(line + "\n"):
            return
        printed += 1
        if count is not None and printed >= count:
            done.set()

    def on_connected(_: Any) -> None:
        subs: list[tuple[str, Any]] = [(result_topic, 1)]
        if not json_lines:
            subs.append((status_topic, 1))
        link.subscribe(subs)

    link = MqttLink(opts, on_connected=on_connected, on_message=on_message, name="watch")
    if not json_lines and not write(HEADER + "\n"):
        return printed
    await link.start()
    try:
        await done.wait()
    finally:
        await link.stop(timeout_s=1.0)
    return printed
