"""One MQTT connection: paho-mqtt 2.x driven from the asyncio event loop.

Why the loop drives paho's socket (``_link_io``) instead of paho's own network
thread: every paho callback (CONNACK, PUBACK, incoming command) then runs on the
event loop, so the in-flight window (``_link_window``), the outbox acks and the
command dispatch need no locks and no thread hop per message; and reconnecting
is ours, with exponential backoff and jitter (paho's built-in reconnect has no
jitter, so a plant's edge PCs would all hammer a restarted broker in lockstep).
The only calls that can block — DNS, TCP connect and the TLS handshake inside
``client.connect()`` — run in a worker thread, while nothing else touches the
client.

Reconnects: :class:`~edged.core.backoff.Backoff` from ``mqtt.reconnect_min_s``
doubling to ``reconnect_max_s``, each delay uniform in ``[d/2, d]``; reset by a
CONNACK, so a lost connection is retried after ``reconnect_min_s`` (jittered).
This is the only retry layer of the link: the publisher above it never reconnects.

Flow control is exact: QoS > 0 messages in flight never exceed the broker's MQTT 5
Receive Maximum (from CONNACK); messages that would exceed it wait in a small
queue (paho's own in-flight queue is disabled). On a lost connection paho's
unacknowledged messages are dropped (``drop_out_messages``): the caller's durable
outbox, not paho's memory, decides what is sent again.

Options, TLS and CONNACK facts live in ``_link_options`` (re-exported here).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edged.core.backoff import Backoff
from edged.publish._link_io import SocketBridge
from edged.publish._link_options import (
    Connected,
    LinkOptions,
    LinkState,
    NotConnectedError,
    Will,
    describe_connect_error,
    make_client,
    new_properties,
    reason_text,
)
from edged.publish._link_window import NO_LIMIT, Deferred, InflightWindow

__all__ = [
    "Connected",
    "LinkOptions",
    "LinkState",
    "MqttLink",
    "NotConnectedError",
    "Will",
    "new_properties",
]

log = logging.getLogger("edged.publish.mqtt")

_MISC_INTERVAL_S = 1.0
RECONNECT_JITTER = 0.5  # each delay uniform in [d/2, d]


class MqttLink:
    """A supervised MQTT connection with callbacks on the event loop.

    Hooks (all called on the loop): ``on_connected(Connected)`` after each
    successful CONNACK, ``on_disconnected(reason)`` when a connection ends,
    ``on_ack(mid, reason_code, reason)`` for each PUBACK/PUBCOMP (and QoS 0
    sends), ``on_message(msg)`` for incoming PUBLISH, ``on_slots()`` when
    in-flight slots free up.
    """

    def __init__(
        self,
        opts: LinkOptions,
        *,
        on_connected: Callable[[Connected], None] | None = None,
        on_disconnected: Callable[[str], None] | None = None,
        on_ack: Callable[[int, int, str], None] | None = None,
        on_message: Callable[[mqtt.MQTTMessage], None] | None = None,
        on_slots: Callable[[], None] | None = None,
        name: str = "mqtt",
        down_note: str = "",
    ) -> None:
        self.opts = opts
        self.name = name
        self._down_note = down_note
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._on_ack = on_ack
        self._on_message = on_message
        self._on_slots = on_slots
        self.state = LinkState.NEW
        self.reconnects = 0
        self._window = InflightWindow()
        self._client = self._make_client()
        self._io = SocketBridge(self._client)
        self._executor: ThreadPoolExecutor | None = None
        self._task: asyncio.Task[None] | None = None
        self._misc_task: asyncio.Task[None] | None = None
        self._connect_future: asyncio.Future[None] | None = None
        self._connack: asyncio.Future[tuple[bool, str]] | None = None
        self._closed: asyncio.Event | None = None
        self._connected_event: asyncio.Event | None = None
        self._io_on_loop = False
        self._stopping = False
        self._last_note: str | None = None
        self._backoff = Backoff(opts.reconnect_min_s, opts.reconnect_max_s, jitter=RECONNECT_JITTER)

    # ------------------------------------------------------------------ setup

    def _make_client(self) -> mqtt.Client:
        client = make_client(self.opts)
        client.on_connect = self._paho_connect
        client.on_disconnect = self._paho_disconnect
        client.on_publish = self._paho_publish
        client.on_message = self._paho_message
        return client

    @property
    def connected(self) -> bool:
        return self.state is LinkState.CONNECTED

    @property
    def receive_maximum(self) -> int:
        return self._window.receive_maximum

    @property
    def inflight(self) -> int:
        return len(self._window)

    def free_slots(self) -> int:
        """QoS > 0 messages that may be sent now without exceeding Receive Maximum."""
        if not self.connected:
            return 0
        return self._window.free_slots()

    async def start(self) -> None:
        if self._task is not None:
            return
        self._io.bind()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"edged-{self.name}-connect")
        self._closed = asyncio.Event()
        self._connected_event = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=f"edged-{self.name}-connection")
        self._misc_task = asyncio.create_task(self._misc(), name=f"edged-{self.name}-keepalive")

    async def wait_connected(self) -> None:
        assert self._connected_event is not None
        await self._connected_event.wait()

    # ------------------------------------------------------------------ I/O

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        properties: Properties | None = None,
    ) -> int:
        """Send now; returns the message id. Raises NotConnectedError while down.

        Callers that need flow control check :meth:`free_slots` first; this
        method sends regardless (use :meth:`publish_soon` for best-effort messages).
        """
        if not self.connected:
            msg = f"{self.name}: not connected to {self.opts.host}:{self.opts.port}"
            raise NotConnectedError(msg)
        info = self._client.publish(topic, payload, qos, retain, properties)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            msg = f"{self.name}: publish failed: {mqtt.error_string(info.rc)}"
            raise NotConnectedError(msg)
        if qos > 0:
            self._window.sent(info.mid)
        return int(info.mid)

    def publish_soon(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        properties: Properties | None = None,
    ) -> bool:
        """Best effort: send now, or as soon as an in-flight slot frees on this connection.

        Returns False when not connected (nothing is kept for a later connection).
        """
        if not self.connected:
            return False
        if qos == 0 or self._window.has_room():
            self.publish(topic, payload, qos, retain, properties)
        else:
            self._window.defer(Deferred(topic, payload, qos, retain, properties))
        return True

    def subscribe(self, topics: list[tuple[str, Any]]) -> None:
        if topics and self.connected:
            self._client.subscribe(topics)

    async def stop(self, *, final: tuple[str, bytes] | None = None, timeout_s: float = 2.0) -> None:
        """Disconnect cleanly; ``final`` = (topic, payload) is published retained, QoS 1,
        and acknowledged first when connected (e.g. status ``stopped``)."""
        if self._stopping:
            return
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._connect_future is not None and not self._connect_future.done():
            # a connect() is running in the worker thread: let it finish, then close
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    asyncio.shield(self._connect_future), self.opts.connect_timeout_s + 1
                )
        was_connected = self.connected
        if was_connected:
            try:
                async with asyncio.timeout(timeout_s):
                    if final is not None:
                        mid = self.publish(final[0], final[1], 1, True)
                        while self._window.in_flight(mid) and self.connected:
                            await self._wait_io()
                    self._client.disconnect()
                    while self._client.socket() is not None:
                        await self._wait_io()
            except (TimeoutError, NotConnectedError):
                pass
        self._close_socket()
        if self._misc_task is not None:
            self._misc_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._misc_task
        if self._executor is not None:
            self._executor.shutdown(wait=False)
        self._note(
            LinkState.STOPPED,
            "disconnected (clean stop)" if was_connected else "stopped without a connection",
        )

    async def _wait_io(self) -> None:
        await asyncio.sleep(0.005)

    # ------------------------------------------------------------------ connection loop

    async def _run(self) -> None:
        """Connect, wait for the connection to end, back off, again, until stopped."""
        assert self._closed is not None
        assert self._connected_event is not None
        loop = asyncio.get_running_loop()
        while not self._stopping:
            self.state = LinkState.CONNECTING
            self._closed.clear()
            self._connack = loop.create_future()
            try:
                self._connect_future = loop.run_in_executor(self._executor, self._connect_blocking)
                await self._connect_future
            except (OSError, ValueError) as exc:
                self._note(LinkState.DOWN, f"cannot reach broker: {describe_connect_error(exc)}")
                await asyncio.sleep(self._backoff.next_delay_s())
                continue
            except Exception as exc:  # a paho surprise must not end reconnecting
                log.exception("MQTT %s: connect failed unexpectedly", self.name)
                self._note(LinkState.DOWN, f"connect failed: {type(exc).__name__}: {exc}")
                await asyncio.sleep(self._backoff.next_delay_s())
                continue
            self._io_on_loop = True
            try:
                async with asyncio.timeout(self.opts.connect_timeout_s):
                    ok, reason = await self._connack
            except TimeoutError:
                ok, reason = False, f"no CONNACK within {self.opts.connect_timeout_s:g} s"
                self._close_socket()
            if not ok:
                self._note(LinkState.DOWN, f"broker refused the connection: {reason}")
                await self._closed.wait()
                await asyncio.sleep(self._backoff.next_delay_s())
                continue
            self._backoff.reset()
            await self._closed.wait()
            if not self._stopping:
                self.reconnects += 1
                await asyncio.sleep(self._backoff.next_delay_s())

    def _connect_blocking(self) -> None:
        """Runs in the worker thread: DNS, TCP connect, TLS handshake, CONNECT queued."""
        o = self.opts
        if o.mqtt5:
            props = new_properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 0
            self._client.connect(o.host, o.port, o.keepalive_s, clean_start=True, properties=props)
        else:
            self._client.connect(o.host, o.port, o.keepalive_s)

    async def _misc(self) -> None:
        """paho's keepalive (PINGREQ, dead-connection detection)."""
        while True:
            await asyncio.sleep(_MISC_INTERVAL_S)
            if self._io_on_loop and self._client.socket() is not None:
                self._client.loop_misc()

    def _close_socket(self) -> None:
        """Drop the TCP connection; paho notices on the next read and reports it."""
        sock = self._client.socket()
        connecting = self._connect_future is not None and not self._connect_future.done()
        if sock is None or connecting:
            return
        with contextlib.suppress(OSError):
            cast(socket.socket, sock).shutdown(socket.SHUT_RDWR)
        self._io.readable()

    def _note(self, state: LinkState, text: str) -> None:
        """One log line per state change, not one per attempt while down."""
        self.state = state
        line = f"MQTT {self.opts.host}:{self.opts.port} {text}"
        if line == self._last_note:
            log.debug("%s", line)
            return
        self._last_note = line
        if state is LinkState.DOWN:
            log.warning(
                "%s; %sretrying with backoff up to %g s",
                line,
                self._down_note,
                self.opts.reconnect_max_s,
            )
        else:
            log.info("%s", line)

    # ------------------------------------------------------------------ paho protocol callbacks

    def _hook(self, fn: Callable[..., None], *args: Any) -> None:
        """Call a user hook; an error there is logged, never thrown into paho's state machine."""
        try:
            fn(*args)
        except Exception:
            log.exception("MQTT %s: error in %s", self.name, getattr(fn, "__name__", fn))

    def _paho_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            if self._connack is not None and not self._connack.done():
                self._connack.set_result((False, f"{reason_code} ({reason_code.value})"))
            return
        recv_max = getattr(properties, "ReceiveMaximum", None) if self.opts.mqtt5 else None
        self._window.open(int(recv_max) if recv_max else NO_LIMIT)
        proto = "MQTT 5" if self.opts.mqtt5 else "MQTT 3.1.1"
        self._note(
            LinkState.CONNECTED,
            f"connected ({proto}, client id {self.opts.client_id!r}, "
            f"receive maximum {self.receive_maximum})",
        )
        assert self._connected_event is not None
        self._connected_event.set()
        if self._connack is not None and not self._connack.done():
            self._connack.set_result((True, ""))
        if self._on_connected is not None:
            self._hook(
                self._on_connected,
                Connected(
                    session_present=bool(flags.session_present),
                    receive_maximum=self.receive_maximum,
                ),
            )

    def _paho_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was_connected = self.connected
        client.drop_out_messages()  # the outbox decides what is resent, not paho
        self._window.clear()
        self._io_on_loop = False
        assert self._connected_event is not None
        assert self._closed is not None
        self._connected_event.clear()
        self._closed.set()
        if flags.is_disconnect_packet_from_server:
            reason = f"broker sent DISCONNECT: {reason_code}"
        elif str(reason_code) == "Unspecified error":
            reason = "the connection closed"
        else:
            reason = str(reason_code)
        if self._stopping:
            self.state = LinkState.STOPPED
        elif was_connected:
            self._note(LinkState.DOWN, f"connection lost ({reason})")
        else:
            self.state = LinkState.DOWN
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(
                (
                    False,
                    "it closed the connection before CONNACK (check the TLS client "
                    "certificate, protocol version and client id)",
                )
            )
        if was_connected and self._on_disconnected is not None:
            self._hook(self._on_disconnected, reason)

    def _paho_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._window.acked(mid)
        if self._on_ack is not None:
            self._hook(
                self._on_ack, mid, int(reason_code.value), reason_text(reason_code, properties)
            )
        while self.connected and (waiting := self._window.next_ready()) is not None:
            self.publish(
                waiting.topic, waiting.payload, waiting.qos, waiting.retain, waiting.properties
            )
        if self._on_slots is not None:
            self._hook(self._on_slots)

    def _paho_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._on_message is not None:
            self._hook(self._on_message, msg)
