"""The Publisher: every Result to the broker, at least once, through outages and restarts.

The daemon uses it like this::

    publisher = Publisher(settings, metrics=metrics, command_handler=handler)
    await publisher.start()                       # opens the outbox, connects in the background
    await publisher.publish_result(result)        # on disk when this returns
    publisher.set_state("cam1", {"connected": True, "fps": 9.8, "recipe": "label"})
    ...
    await publisher.stop(grace_s=5)               # drain, status 'stopped', disconnect

How delivery works:

1. ``publish_result`` writes the ``verdict`` and ``result`` messages of a Result
   to the durable SQLite outbox (:mod:`edged.publish.outbox`) in one transaction
   and returns; it never waits for the broker.
2. One sender task publishes outbox rows in row order, only while connected,
   keeping at most ``mqtt.inflight`` messages unacknowledged (never more than the
   broker's Receive Maximum) and at most ``mqtt.drain_rate_per_s`` per second,
   so a backlog after an outage does not overrun the broker's per-client queues.
3. A PUBACK deletes the row. With MQTT 5, a PUBACK reason code >= 0x80 (e.g. 135
   not authorised) moves the row to the dead-letter table, counted and logged;
   the publisher carries on with the next message.
4. When the connection drops, paho's in-memory queue is discarded and the sender
   starts again from the oldest row still in the outbox once reconnected: the
   outbox is the single source of what is resent. Rows written before a crash or
   ``kill -9`` are sent after the next start.

Delivery is at least once: a message whose PUBACK was lost is sent again, so
consumers de-duplicate on the Result ``id``.

When the outbox cannot store a Result (disk full, I/O error) ``publish_result``
does not fail the line: the Result is published live if the broker is connected
(at most once, counted in ``edged_results_not_durable_total{outcome=published_live}``)
or counted as lost, the daemon reports not ready (``on_durable(False)``) and logs
SQLite's own error; the first Result stored again makes it ready. Free space of
``state_dir`` is checked every few seconds against ``mqtt.state_dir_min_free_bytes``
(``edged_state_dir_low_space``) so the alarm comes before the disk is full.

Topics (``{prefix}/{node_id}/...``): retained ``status`` — ``online`` on each
connect, ``offline`` as the last will, ``stopped`` on a clean stop;
``{camera}/verdict`` (compact ``{id, seq, camera, recipe, verdict, ts}``) and
``{camera}/result`` (full Result JSON) at ``mqtt.qos``; retained ``{camera}/state``
(republished from live state on every connect); commands, see
:mod:`edged.publish.commands`. Each connection starts a clean session; commands
sent while edged was disconnected are not replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paho.mqtt.client import MQTTMessage
from paho.mqtt.properties import Properties

from edged.config import Settings
from edged.core.result import Result
from edged.publish._link import Connected, LinkOptions, MqttLink, Will
from edged.publish._takeover import TakeoverDetector, clash_message
from edged.publish._topics import Topics
from edged.publish.commands import CommandHandler, CommandRouter
from edged.publish.outbox import NewMessage, Outbox, OutboxError
from edged.runtime.contracts import SinkStats

if TYPE_CHECKING:
    from edged.runtime.metrics import Metrics

log = logging.getLogger(__name__)

OUTBOX_FILE = "outbox.sqlite3"
_FETCH_LIMIT = 512
_LATENCY_TRACKED_MAX = 100_000
_REJECT_LOG_INTERVAL_S = 60.0
SPACE_CHECK_INTERVAL_S = 5.0
NOT_DURABLE_LIVE = "published_live"
NOT_DURABLE_LOST = "lost"


def link_options(
    settings: Settings, *, client_id: str | None = None, will: bool = True
) -> LinkOptions:
    """Connection options from ``settings.mqtt`` (password read from its file if set)."""
    m = settings.mqtt
    topics = Topics(m.prefix, settings.node_id)
    return LinkOptions(
        host=m.host,
        port=m.port,
        client_id=client_id or m.client_id or f"edged-{settings.node_id}",
        protocol=m.protocol,
        username=m.username,
        password=settings.mqtt_password(),
        keepalive_s=m.keepalive_s,
        tls=m.tls,
        ca_file=m.ca_file,
        cert_file=m.cert_file,
        key_file=m.key_file,
        tls_insecure=m.tls_insecure,
        reconnect_min_s=m.reconnect_min_s,
        reconnect_max_s=m.reconnect_max_s,
        will=Will(topics.status, b"offline", 1, True) if will else None,
    )


class _RateLimit:
    """Token bucket: ``rate_per_s`` sustained, bursts of up to 50 ms worth.

    Waits in steps of at least 5 ms (tokens accrue meanwhile), so a high rate is
    not throttled by the event loop's timer resolution.
    """

    def __init__(self, rate_per_s: float) -> None:
        self.rate = rate_per_s
        self.burst = max(1.0, rate_per_s * 0.05)
        self.tokens = self.burst
        self.t = time.monotonic()

    async def take(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
            self.t = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return
            await asyncio.sleep(max(0.005, (1.0 - self.tokens) / self.rate))


class Publisher:
    """Durable MQTT publishing of Results, live state and command replies (see module doc)."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics | None = None,
        *,
        command_handler: CommandHandler | None = None,
        outbox_path: Path | None = None,
        client_id: str | None = None,
        takeover: TakeoverDetector | None = None,
        on_durable: Callable[[bool], None] | None = None,
    ) -> None:
        self._settings = settings
        self._takeover = takeover or TakeoverDetector()
        self._cfg = settings.mqtt
        self._metrics = metrics
        self.topics = Topics(self._cfg.prefix, settings.node_id)
        self._link = MqttLink(
            link_options(settings, client_id=client_id),
            on_connected=self._connected,
            on_disconnected=self._disconnected,
            on_ack=self._acked,
            on_message=self._message,
            on_slots=self._poke,
            down_note="results wait in the outbox; ",
        )
        self._on_durable = on_durable
        self.durable = True
        self.not_durable: dict[str, int] = {NOT_DURABLE_LIVE: 0, NOT_DURABLE_LOST: 0}
        self._not_durable_log = 0.0
        self.low_space = False
        self.outbox = Outbox(
            outbox_path or settings.state_dir / OUTBOX_FILE,
            max_messages=self._cfg.outbox_max_messages,
            max_bytes=self._cfg.outbox_max_bytes,
            on_damaged=self._damaged,
            max_age_s=self._cfg.outbox_max_age_s,
            dead_letter_max=self._cfg.dead_letter_max_messages,
            synchronous=self._cfg.outbox_synchronous,
            on_drop=self._dropped,
            on_change=self._poke,
        )
        self._router: CommandRouter | None = None
        if command_handler is not None and self._cfg.commands:
            self._router = CommandRouter(
                settings,
                command_handler,
                self._reply,
                mqtt5=self._link.opts.mqtt5,
                metrics=metrics,
            )
        self._states: dict[str, bytes] = {}
        self._inflight: dict[int, int] = {}  # mid -> outbox row id
        self._latency: dict[int, tuple[str, float]] = {}  # row id -> (camera, frame time)
        self._epoch = 0
        self._high_water = 0
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._gauges: asyncio.Task[None] | None = None
        self._space: asyncio.Task[None] | None = None
        self._started = False
        self._closing = False
        self.published = 0
        self.retries = 0
        self._rejects_unlogged = 0
        self._next_reject_log = 0.0

    # ------------------------------------------------------------------ public API

    @property
    def connected(self) -> bool:
        return self._link.connected

    async def wait_connected(self) -> None:
        await self._link.wait_connected()

    async def start(self) -> None:
        """Open the outbox and start connecting (in the background; never blocks on the broker)."""
        if self._started:
            return
        await self.outbox.start()  # raises ConfigError/OutboxError: nothing started yet
        self._started = True
        await self._link.start()
        self._sender = asyncio.create_task(self._send_loop(), name="edged-mqtt-sender")
        self._sender.add_done_callback(self._sender_done)
        if self._metrics is not None:
            self._gauges = asyncio.create_task(self._gauge_loop(), name="edged-mqtt-gauges")
            self._metrics.outbox_writable.set(1)
        self._space = asyncio.create_task(self._space_loop(), name="edged-state-dir-space")
        for warning in self.startup_warnings():
            log.warning("%s", warning)
        log.info(
            "MQTT publisher for %s:%d started (outbox %s: %d message(s) waiting)",
            self._cfg.host,
            self._cfg.port,
            self.outbox.path,
            self.outbox.depth,
        )

    def startup_warnings(self) -> list[str]:
        """What the operator must know at start: invisible ACL denials, open commands."""
        out = []
        if not self._link.opts.mqtt5:
            out.append(
                "MQTT 3.1.1: the broker cannot tell edged that it refused a publish (an ACL "
                "denial is silently dropped and still counted as delivered); use "
                "mqtt.protocol: '5' with an MQTT 5 broker to see denials as dead letters"
            )
        if self._router is not None:
            out += self._router.startup_warnings()
        return out

    async def publish_result(self, result: Result) -> None:
        """Queue a Result's verdict and result messages durably; returns once on disk."""
        if self._closing or not self._started:
            msg = "publisher: expected a started publisher, got a stopped one"
            raise OutboxError(msg)
        qos = self._cfg.qos
        messages = []
        if self._cfg.topics.verdict:
            messages.append(
                NewMessage(self.topics.verdict(result.camera), _compact(result.compact()), qos)
            )
        if self._cfg.topics.result:
            messages.append(
                NewMessage(self.topics.result(result.camera), result.to_json().encode(), qos)
            )
        try:
            ids = await self.outbox.put_many(messages, marks={_seq_mark(result.camera): result.seq})
        except OutboxError as exc:
            if self._closing or self.outbox.closed:
                raise
            self._not_durable(messages, exc)
            return
        if not self.durable:
            self._set_durable(True, None)
        if self._metrics is not None and ids:
            frame_s = _epoch_s(result.frame.host_ts)
            if frame_s is not None:
                if len(self._latency) >= _LATENCY_TRACKED_MAX:
                    self._latency.pop(next(iter(self._latency)))
                self._latency[ids[0]] = (result.camera, frame_s)

    def _not_durable(self, messages: list[NewMessage], exc: OutboxError) -> None:
        """The outbox could not store a Result: publish it live if connected (at most
        once: not kept for a resend), else it is lost; counted either way."""
        sent = bool(messages) and all(
            self._link.publish_soon(m.topic, m.payload, m.qos, m.retain) for m in messages
        )
        outcome = NOT_DURABLE_LIVE if sent else NOT_DURABLE_LOST
        self.not_durable[outcome] += 1
        if self._metrics is not None:
            self._metrics.results_not_durable.labels(outcome).inc()
        self._set_durable(False, exc)

    def _set_durable(self, durable: bool, exc: OutboxError | None) -> None:
        now = time.monotonic()
        if durable:
            self.durable = True
            log.warning(
                "outbox writable again: results are stored before publishing (meanwhile "
                "%d published live without a durable copy, %d lost)",
                self.not_durable[NOT_DURABLE_LIVE],
                self.not_durable[NOT_DURABLE_LOST],
            )
        elif self.durable or now >= self._not_durable_log:
            self.durable = False
            self._not_durable_log = now + _REJECT_LOG_INTERVAL_S
            log.error(
                "outbox cannot store results (%s): not ready; results are published live "
                "while the broker is connected (not durable: %d so far), else lost (%d so "
                "far); free space in %s",
                exc,
                self.not_durable[NOT_DURABLE_LIVE],
                self.not_durable[NOT_DURABLE_LOST],
                self.outbox.path.parent,
            )
        else:
            return
        if self._metrics is not None:
            self._metrics.outbox_writable.set(1 if durable else 0)
        if self._on_durable is not None:
            self._on_durable(durable)

    def _damaged(self, moved_to: str) -> None:
        if self._metrics is not None:
            self._metrics.outbox_damaged.inc()

    async def _space_loop(self) -> None:
        """Alarm before the disk is full: free space of state_dir against the threshold."""
        threshold = self._cfg.state_dir_min_free_bytes
        while True:
            try:
                st = await asyncio.to_thread(os.statvfs, self.outbox.path.parent)
            except OSError as exc:
                log.warning("state_dir: cannot read free space (%s)", exc)
            else:
                free = st.f_bavail * st.f_frsize
                low = free < threshold
                if low and not self.low_space:
                    log.warning(
                        "state_dir %s: %d bytes free, below mqtt.state_dir_min_free_bytes "
                        "(%d): the outbox will stop storing results when the disk is full",
                        self.outbox.path.parent,
                        free,
                        threshold,
                    )
                elif not low and self.low_space:
                    log.info("state_dir %s: %d bytes free again", self.outbox.path.parent, free)
                self.low_space = low
                if self._metrics is not None:
                    self._metrics.state_dir_free_bytes.set(free)
                    self._metrics.state_dir_low_space.set(1 if low else 0)
            await asyncio.sleep(SPACE_CHECK_INTERVAL_S)

    def last_seq(self, camera: str) -> int | None:
        """The seq of the last Result queued for ``camera``, also from before a restart
        (the daemon continues from it, so ``seq`` keeps growing across restarts)."""
        return self.outbox.marks.get(_seq_mark(camera))

    def set_state(self, camera: str, state: Mapping[str, Any]) -> None:
        """Live camera state, published retained now and again on every reconnect."""
        payload = _compact(dict(state))
        if self._states.get(camera) == payload:
            return
        self._states[camera] = payload
        if self._cfg.topics.state and self.connected:
            self._link.publish_soon(self.topics.state(camera), payload, 1, True)

    async def stop(self, grace_s: float = 5.0) -> None:
        """Drain what can be sent within ``grace_s``, publish ``stopped``, disconnect.

        Whatever is not acknowledged by then stays in the outbox for the next start.
        """
        if not self._started or self._closing:
            return
        self._closing = True
        deadline = time.monotonic() + grace_s
        await self._drain(deadline)
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        if self._router is not None:
            await self._router.close()
        remaining = max(0.5, deadline - time.monotonic())
        await self._link.stop(final=(self.topics.status, b"stopped"), timeout_s=remaining)
        self._inflight.clear()
        for task in (self._gauges, self._space):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.outbox.close()
        if self.outbox.depth:
            log.warning(
                "MQTT publisher stopped with %d message(s) undelivered; they stay in %s "
                "and are sent after the next start",
                self.outbox.depth,
                self.outbox.path,
            )
        else:
            log.info("MQTT publisher stopped; outbox empty")
        self._update_gauges()

    def publish_image(self, camera: str, jpeg: bytes) -> bool:
        """The annotated JPEG of a part on ``.../{camera}/image``: QoS 0, retained per
        ``mqtt.image.retain``, sent now or not at all (never queued in the outbox)."""
        return self._link.publish_soon(self.topics.image(camera), jpeg, 0, self._cfg.image.retain)

    def stats(self) -> SinkStats:
        oldest = self.outbox.oldest_created_s
        return SinkStats(
            connected=self.connected,
            outbox_depth=self.outbox.depth,
            oldest_age_s=0.0 if oldest is None else max(0.0, time.time() - oldest),
            inflight=len(self._inflight),
            published=self.published,
            retries=self.retries,
            dropped=self.outbox.dropped_total,
            dead_lettered=self.outbox.dead_lettered,
            dead_letter_depth=self.outbox.dead_letter_depth,
            reconnects=self._link.reconnects,
        )

    # ------------------------------------------------------------------ sender

    def _poke(self) -> None:
        self._wake.set()

    async def _wait(self) -> None:
        self._wake.clear()
        await self._wake.wait()

    def _window(self) -> int:
        """How many more outbox messages may be sent now."""
        room = self._cfg.inflight - len(self._inflight)
        return min(room, self._link.free_slots())

    async def _send_loop(self) -> None:
        limiter = _RateLimit(self._cfg.drain_rate_per_s)
        while True:
            while not self.connected:
                await self._wait()
            epoch = self._epoch
            cursor = 0
            while self.connected and epoch == self._epoch:
                if self.outbox.last_id <= cursor:
                    await self._wait()
                    continue
                batch = await self.outbox.fetch(after_id=cursor, limit=_FETCH_LIMIT)
                if not batch:
                    cursor = max(cursor, self.outbox.last_id)  # rows dropped by a cap
                    continue
                for msg in batch:
                    while self._window() <= 0 and self.connected and epoch == self._epoch:
                        await self._wait()
                    await limiter.take()
                    if not self.connected or epoch != self._epoch:
                        break
                    mid = self._link.publish(msg.topic, msg.payload, msg.qos, msg.retain)
                    self._inflight[mid] = msg.row_id
                    if msg.row_id <= self._high_water:
                        self.retries += 1
                        if self._metrics is not None:
                            self._metrics.publish_retries.inc()
                    else:
                        self._high_water = msg.row_id
                    cursor = msg.row_id

    def _sender_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("MQTT sender stopped: %s; restarting it", exc, exc_info=exc)
            if not self._closing:
                self._sender = asyncio.get_running_loop().create_task(
                    self._restart_sender(), name="edged-mqtt-sender"
                )
                self._sender.add_done_callback(self._sender_done)

    async def _restart_sender(self) -> None:
        await asyncio.sleep(1.0)
        self._epoch += 1
        self._inflight.clear()
        await self._send_loop()

    async def _drain(self, deadline: float) -> None:
        """Wait until the outbox is empty, the link is down or the deadline passes."""
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                while self.connected and (self.outbox.depth > 0 or self._inflight):
                    await self._wait()
                await self.outbox.flush()
        except TimeoutError:
            pass

    # ------------------------------------------------------------------ link hooks

    def _connected(self, info: Connected) -> None:
        self._epoch += 1
        self._inflight.clear()
        if self._router is not None:  # first: "online" then means commands are heard
            self._link.subscribe(self._router.subscriptions())
        self._link.publish_soon(self.topics.status, b"online", 1, True)
        if self._cfg.topics.state:
            for camera, payload in self._states.items():
                self._link.publish_soon(self.topics.state(camera), payload, 1, True)
        self._takeover.connected()
        if self._metrics is not None:
            self._metrics.mqtt_connected.set(1)
            self._metrics.mqtt_changed_time.set(time.time())
            self._metrics.mqtt_connects.inc()
        if self.outbox.depth:
            log.info("MQTT: sending %d message(s) from the outbox", self.outbox.depth)
        self._poke()

    def _disconnected(self, reason: str) -> None:
        self._epoch += 1
        self._inflight.clear()  # resent from the outbox after reconnecting
        if self._metrics is not None:
            self._metrics.mqtt_connected.set(0)
            self._metrics.mqtt_changed_time.set(time.time())
            self._metrics.mqtt_disconnects.inc()
        if self._takeover.disconnected(reason):
            opts = self._link.opts
            log.error(
                "%s",
                clash_message(
                    opts.client_id,
                    f"{opts.host}:{opts.port}",
                    self._takeover.threshold,
                    self._takeover.window_s,
                ),
            )
        self._export_clash()
        self._poke()

    def _export_clash(self) -> None:
        if self._metrics is not None:
            self._metrics.mqtt_client_id_clash.set(1 if self._takeover.suspected else 0)

    def _acked(self, mid: int, reason_code: int, reason: str) -> None:
        row = self._inflight.pop(mid, None)
        if row is None:
            return  # status, state or a command reply
        if self.outbox.closed:
            return
        if reason_code >= 0x80:
            self.outbox.reject(row, reason_code, reason)
            self._latency.pop(row, None)
            self._log_reject(row, reason_code, reason)
            if self._metrics is not None:
                self._metrics.dead_lettered.inc()
        else:
            self.outbox.ack(row)
            self.published += 1
            if self._metrics is not None:
                self._metrics.published.inc()
                tracked = self._latency.pop(row, None)
                if tracked is not None:
                    camera, frame_s = tracked
                    self._metrics.end_to_end_seconds.labels(camera).observe(
                        max(0.0, time.time() - frame_s)
                    )
        self._poke()

    def _message(self, msg: MQTTMessage) -> None:
        if self._router is not None:
            self._router.handle(msg)

    def _reply(self, topic: str, payload: bytes, props: Properties | None) -> None:
        if not self._link.publish_soon(topic, payload, 1, False, props):
            log.info("MQTT command reply to %s lost: not connected", topic)

    def _dropped(self, count: int, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.outbox_dropped.labels(reason).inc(count)

    def _log_reject(self, row: int, code: int, reason: str) -> None:
        self._rejects_unlogged += 1
        now = time.monotonic()
        if now < self._next_reject_log:
            return
        self._next_reject_log = now + _REJECT_LOG_INTERVAL_S
        log.error(
            "MQTT broker refused %d message(s) (latest: outbox row %d, reason %d %s); "
            "moved to the dead-letter table in %s",
            self._rejects_unlogged,
            row,
            code,
            reason,
            self.outbox.path,
        )
        self._rejects_unlogged = 0

    # ------------------------------------------------------------------ metrics

    async def _gauge_loop(self) -> None:
        while True:
            self._update_gauges()
            await asyncio.sleep(1.0)

    def _update_gauges(self) -> None:
        self._takeover.check_stable()
        self._export_clash()
        if self._metrics is None:
            return
        s = self.stats()
        self._metrics.mqtt_connected.set(1 if s.connected else 0)
        self._metrics.outbox_depth.set(s.outbox_depth)
        self._metrics.outbox_oldest_age.set(s.oldest_age_s)


def _seq_mark(camera: str) -> str:
    return f"seq/{camera}"


def _compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


def _epoch_s(iso: str) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None
