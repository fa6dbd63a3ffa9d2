"""What an MQTT link is built from: broker options, TLS, will, states, CONNACK facts.

Plain values, the TLS context and the unconnected paho client; nothing here
touches a socket (see ``_link``).
"""

from __future__ import annotations

import enum
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edged.core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, slots=True)
class LinkOptions:
    """How to reach the broker (built from ``MqttConfig`` by the publisher)."""

    host: str
    port: int
    client_id: str
    protocol: str = "5"  # "5" or "3.1.1"
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 30
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    tls_insecure: bool = False
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    connect_timeout_s: float = 10.0
    will: Will | None = None

    @property
    def mqtt5(self) -> bool:
        return self.protocol == "5"


class LinkState(enum.Enum):
    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DOWN = "down"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class Connected:
    """What CONNACK told us."""

    session_present: bool
    receive_maximum: int


class NotConnectedError(RuntimeError):
    """publish() while the link is down."""


def build_tls_context(opts: LinkOptions) -> ssl.SSLContext:
    """A client TLS context from the options, with errors that name the config key."""
    try:
        ctx = ssl.create_default_context(
            cafile=str(opts.ca_file) if opts.ca_file is not None else None
        )
    except (OSError, ssl.SSLError) as exc:
        msg = f"mqtt.ca_file: expected a readable PEM CA file, got {str(opts.ca_file)!r} ({exc})"
        raise ConfigError(msg) from exc
    if opts.cert_file is not None:
        try:
            ctx.load_cert_chain(
                str(opts.cert_file), str(opts.key_file) if opts.key_file is not None else None
            )
        except (OSError, ssl.SSLError) as exc:
            msg = (
                "mqtt.cert_file/mqtt.key_file: expected a readable PEM certificate and key, "
                f"got {str(opts.cert_file)!r}, {str(opts.key_file)!r} ({exc})"
            )
            raise ConfigError(msg) from exc
    elif opts.key_file is not None:
        msg = f"mqtt.key_file: set without mqtt.cert_file, got only {str(opts.key_file)!r}"
        raise ConfigError(msg)
    if opts.tls_insecure:
        ctx.check_hostname = False  # the chain is still verified against ca_file
    return ctx


def make_client(opts: LinkOptions) -> mqtt.Client:
    """A paho client for these options, not connected and without callbacks."""
    if opts.mqtt5:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=opts.client_id, protocol=mqtt.MQTTv5
        )
    else:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=opts.client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
    client.max_inflight_messages = 0  # flow control is the link's (exact Receive Maximum)
    client.connect_timeout = opts.connect_timeout_s
    if opts.username is not None:
        client.username_pw_set(opts.username, opts.password)
    if opts.tls:
        client.tls_set_context(build_tls_context(opts))
    if opts.will is not None:
        client.will_set(opts.will.topic, opts.will.payload, opts.will.qos, opts.will.retain)
    return client


def new_properties(packet_type: int) -> Properties:
    """MQTT 5 properties for a packet type (paho's constructor is untyped)."""
    return Properties(packet_type)  # type: ignore[no-untyped-call]


def reason_text(code: ReasonCode, properties: Properties | None) -> str:
    """A PUBACK's reason code with the broker's ReasonString, when it sent one."""
    text = str(code)
    extra = getattr(properties, "ReasonString", None)
    return f"{text}: {extra}" if extra else text


def describe_connect_error(exc: BaseException) -> str:
    """Why ``connect()`` failed, in the words an operator needs."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host ({exc.strerror})"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "connect timed out"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    return f"{type(exc).__name__}: {exc}"
