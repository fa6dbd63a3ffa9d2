"""Command tokens: an HMAC-SHA256 over the command, a timestamp window, no replays.

A signed command carries an ``auth`` object next to its fields::

    {"recipe": "r2", "id": 7,
     "auth": {"ts": 1764668874, "nonce": "3f2a9c0d5e6b7a81", "mac": "<64 hex digits>"}}

``mac`` = HMAC-SHA256(secret, message) in lower-case hex, where ``message`` is the
UTF-8 text ``"edged-cmd-v1\\n{topic}\\n{ts}\\n{nonce}\\n{body}"`` and ``body`` is
the command's other fields as canonical JSON: keys sorted, no spaces, ASCII only
(``json.dumps(fields, sort_keys=True, separators=(",", ":"))`` in Python). ``ts`` is
Unix time in whole seconds; ``nonce`` 8 to 64 characters of ``[A-Za-z0-9_-]``,
unique per command.

edged accepts a command when the MAC matches, ``ts`` is within ``window_s`` of its
clock, and the same (``ts``, ``nonce``) pair was not accepted before (remembered
for the window; at most ``max_remembered`` at once, beyond that commands are
refused until old entries expire). Produce one with ``edged command-token`` or
:func:`sign_command`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

TOKEN_VERSION = "edged-cmd-v1"
_NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_MAC_RE = re.compile(r"^[0-9a-f]{64}$")

# Refusal reasons: bounded label values of edged_mqtt_commands_refused_total.
NO_SECRET = "no_secret"
MISSING_TOKEN = "missing_token"
BAD_TOKEN = "bad_token"
STALE = "stale"
REPLAY = "replay"
REPLAY_CACHE_FULL = "replay_cache_full"


class CommandAuthError(Exception):
    """A command that is not authorised; ``reason`` is one of the refusal words above."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def canonical_body(fields: Mapping[str, Any]) -> str:
    """The command's fields (without ``auth``) as the canonical JSON the MAC covers."""
    return json.dumps(dict(fields), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def command_mac(secret: bytes, topic: str, ts: int, nonce: str, fields: Mapping[str, Any]) -> str:
    """HMAC-SHA256 in hex over topic, timestamp, nonce and the canonical fields."""
    message = f"{TOKEN_VERSION}\n{topic}\n{ts}\n{nonce}\n{canonical_body(fields)}"
    return hmac.new(secret, message.encode("utf-8"), hashlib.sha256).hexdigest()


def sign_command(
    secret: bytes,
    topic: str,
    fields: Mapping[str, Any],
    *,
    ts: int | None = None,
    nonce: str | None = None,
) -> dict[str, Any]:
    """``fields`` plus an ``auth`` object: the payload to publish on ``topic`` (as JSON)."""
    if "auth" in fields:
        msg = "command fields: expected no 'auth' key (sign_command adds it), got one"
        raise ValueError(msg)
    ts = int(time.time()) if ts is None else ts
    nonce = secrets.token_hex(8) if nonce is None else nonce
    mac = command_mac(secret, topic, ts, nonce, fields)
    return {**fields, "auth": {"ts": ts, "nonce": nonce, "mac": mac}}


@dataclass(frozen=True, slots=True)
class _Token:
    ts: int
    nonce: str
    mac: str


def _parse_token(auth: object) -> _Token:
    if not isinstance(auth, dict):
        msg = f"auth: expected an object {{ts, nonce, mac}}, got {type(auth).__name__}"
        raise CommandAuthError(BAD_TOKEN, msg)
    extra = sorted(set(auth) - {"ts", "nonce", "mac"})
    if extra:
        msg = f"auth: expected keys ts, nonce, mac, got unknown key(s) {extra}"
        raise CommandAuthError(BAD_TOKEN, msg)
    ts, nonce, mac = auth.get("ts"), auth.get("nonce"), auth.get("mac")
    if not isinstance(ts, int) or isinstance(ts, bool):
        msg = f"auth.ts: expected Unix time in whole seconds, got {ts!r}"
        raise CommandAuthError(BAD_TOKEN, msg)
    if not isinstance(nonce, str) or not _NONCE_RE.match(nonce):
        msg = "auth.nonce: expected 8..64 characters of [A-Za-z0-9_-]"
        raise CommandAuthError(BAD_TOKEN, msg)
    if not isinstance(mac, str) or not _MAC_RE.match(mac):
        msg = "auth.mac: expected 64 lower-case hex digits (HMAC-SHA256)"
        raise CommandAuthError(BAD_TOKEN, msg)
    return _Token(ts, nonce, mac)


class CommandVerifier:
    """Checks command tokens and remembers accepted ones for the window (no replays)."""

    def __init__(
        self,
        secret: bytes | None,
        *,
        window_s: float,
        max_remembered: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self._window_s = window_s
        self._max = max_remembered
        self._clock = clock
        self._seen: dict[tuple[int, str], float] = {}

    @property
    def remembered(self) -> int:
        return len(self._seen)

    def verify(self, topic: str, data: dict[str, Any]) -> dict[str, Any]:
        """The command's fields without ``auth`` when the token is valid; else raises
        CommandAuthError saying why."""
        if self._secret is None:
            msg = (
                "unauthorised: no command secret is configured on this node "
                "(mqtt.command_secret_file), and mqtt.trust_broker_acl is false"
            )
            raise CommandAuthError(NO_SECRET, msg)
        if "auth" not in data:
            msg = "unauthorised: expected an 'auth' token (see `edged command-token`), got none"
            raise CommandAuthError(MISSING_TOKEN, msg)
        fields = {k: v for k, v in data.items() if k != "auth"}
        token = _parse_token(data["auth"])
        now = self._clock()
        if abs(now - token.ts) > self._window_s:
            msg = (
                f"unauthorised: token timestamp {token.ts} is {now - token.ts:+.0f} s from "
                f"this node's clock; expected within ±{self._window_s:g} s"
            )
            raise CommandAuthError(STALE, msg)
        try:
            expected = command_mac(self._secret, topic, token.ts, token.nonce, fields)
        except (TypeError, ValueError) as exc:
            msg = f"unauthorised: the command fields cannot be canonicalised ({exc})"
            raise CommandAuthError(BAD_TOKEN, msg) from exc
        if not hmac.compare_digest(expected, token.mac):
            msg = "unauthorised: the token's MAC does not match (wrong secret, topic or fields)"
            raise CommandAuthError(BAD_TOKEN, msg)
        self._expire(now)
        key = (token.ts, token.nonce)
        if key in self._seen:
            msg = f"unauthorised: replay of an already accepted command (nonce {token.nonce})"
            raise CommandAuthError(REPLAY, msg)
        if len(self._seen) >= self._max:
            msg = (
                f"unauthorised: {self._max} commands accepted within the last "
                f"{self._window_s:g} s; refusing more until they expire"
            )
            raise CommandAuthError(REPLAY_CACHE_FULL, msg)
        self._seen[key] = token.ts + self._window_s  # stale (refused anyway) after that
        return fields

    def _expire(self, now: float) -> None:
        expired = [key for key, until in self._seen.items() if until < now]
        for key in expired:
            del self._seen[key]
