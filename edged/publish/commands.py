"""MQTT commands: ``{prefix}/{node}/{camera}/cmd/{trigger|recipe|teach}`` in, a reply out.

Payloads are JSON objects, validated at this boundary (unknown keys are errors):

- ``trigger``: ``{}`` — fire a software trigger (or inspect the next frame).
- ``recipe``: ``{"recipe": "NAME"}`` — switch the camera's active recipe; NAME
  must be a recipe of the configuration.
- ``trigger`` and ``recipe`` may carry ``"data": "TEXT"``: the run-time value
  checks of the camera's following frames see (a ``text`` check with
  ``expect_input: data`` expects it, e.g. the lot code of the batch); it stays
  until a command sets another (``""`` clears it).
- ``teach``: ``{"recipe": "NAME", "frames": N}`` — store the next N frames
  (default 1, at most ``mqtt.teach_max_frames``) as a reference version for NAME
  (default: the camera's active recipe). With ``mqtt.teach_activate: confirm`` (the
  default) the new version is *pending*: it becomes active only after
  ``{"recipe": "NAME", "confirm": "v3"}`` on ``cmd/teach`` or the admin API
  (``POST /api/v1/references/NAME/CAMERA/rollback`` with ``{"version": "v3"}``).

Every command must be authorised: it carries an ``auth`` token (HMAC-SHA256 with
``mqtt.command_secret_file``, see :mod:`edged.publish.command_auth` and ``edged
command-token``), or ``mqtt.trust_broker_acl: true`` says the broker's ACLs decide
who may publish on command topics. Refused commands are answered, logged (at most
once a minute per reason) and counted in ``edged_mqtt_commands_refused_total{reason}``.

Every payload may carry ``"id"`` (string or integer), echoed in the reply.
The reply always goes to ``{prefix}/{node}/{camera}/cmd/reply`` (an MQTT 5
*response topic* in the request is ignored and logged: a command must not make
edged publish on a topic of the sender's choosing), with the request's
*correlation data*::

    {"ok": true,  "command": "recipe", "camera": "cam1", "id": 7, "result": {...}}
    {"ok": false, "command": "recipe", "camera": "cam1", "id": 7,
     "error": "recipe: expected one of ['a', 'b'], got 'c'"}

Retained messages on command topics are ignored (a stale retained command must
not flip a line after a reconnect); with MQTT 5 a command published live with the
retain flag set is answered with an error saying so. Commands can be disabled (``mqtt.commands:
false``: nothing is subscribed) or limited to ``mqtt.command_cameras``.
Commands for one camera run one at a time, in arrival order; at most
``MAX_WAITING`` wait, further ones are answered ``busy``.

The daemon implements :class:`CommandHandler` (see :class:`RuntimeCommandHandler`
for the adapter over ``Runtime.cameras``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from paho.mqtt.client import MQTTMessage
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edged.config import Settings
from edged.core.errors import EdgedError, InputError
from edged.publish._link import new_properties
from edged.publish._topics import COMMANDS, Topics
from edged.publish.command_auth import CommandAuthError, CommandVerifier

if TYPE_CHECKING:
    from edged.runtime.metrics import Metrics
    from edged.runtime.shared import Runtime

log = logging.getLogger(__name__)

MAX_WAITING = 8
COMMAND_TIMEOUT_S = 120.0
REFUSAL_LOG_INTERVAL_S = 60.0

# Refusal reasons besides the token ones of command_auth (bounded label values).
REFUSED_RETAINED = "retained"
REFUSED_CAMERA = "camera"
REFUSED_BUSY = "busy"
REFUSED_INVALID = "invalid"
REFUSED_FAILED = "failed"


class CommandHandler(Protocol):
    """What MQTT commands do; the daemon implements it. Raise EdgedError to refuse."""

    async def trigger(self, camera: str, data: str | None = None) -> Mapping[str, Any] | None: ...

    async def set_recipe(
        self, camera: str, recipe: str, data: str | None = None
    ) -> Mapping[str, Any] | None: ...

    async def teach(
        self, camera: str, recipe: str | None, frames: int, *, activate: bool
    ) -> Mapping[str, Any] | None: ...

    async def confirm_teach(
        self, camera: str, recipe: str | None, version: str
    ) -> Mapping[str, Any] | None: ...


# ---------------------------------------------------------------------- payloads


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | int | None = Field(default=None, description="echoed in the reply")


_DATA = Field(default=None, max_length=4096, description="run-time data for the next frames")


class TriggerCommand(_Command):
    data: str | None = _DATA


class RecipeCommand(_Command):
    recipe: str = Field(min_length=1)
    data: str | None = _DATA


class TeachCommand(_Command):
    recipe: str | None = Field(default=None, min_length=1)
    frames: int | None = Field(default=None, ge=1, le=1000)
    confirm: str | None = Field(
        default=None, pattern=r"^v?[0-9]{1,9}$", description="activate this pending version"
    )

    @model_validator(mode="after")
    def _one_action(self) -> TeachCommand:
        if self.confirm is not None and self.frames is not None:
            msg = "expected either 'frames' (teach) or 'confirm' (activate), got both"
            raise ValueError(msg)
        return self


_MODELS: dict[str, type[_Command]] = {
    "trigger": TriggerCommand,
    "recipe": RecipeCommand,
    "teach": TeachCommand,
}


def decode_payload(payload: bytes) -> dict[str, Any]:
    """A command payload as a JSON object; InputError says what was expected and what came."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"payload: expected UTF-8 JSON, got bytes that are not UTF-8 ({exc.reason})"
        raise InputError(msg) from exc
    if not text.strip():
        text = "{}"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"payload: expected a JSON object, got invalid JSON ({exc.msg} at column {exc.colno})"
        raise InputError(msg) from exc
    if not isinstance(data, dict):
        msg = f"payload: expected a JSON object, got {type(data).__name__} {_short(data)}"
        raise InputError(msg)
    return data


def validate_command(name: str, data: Mapping[str, Any]) -> _Command:
    """Validate a decoded command; InputError says what was expected and what came."""
    model = _MODELS.get(name)
    if model is None:
        msg = f"command: expected one of {list(COMMANDS)}, got {name!r}"
        raise InputError(msg)
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "payload"
            text_ = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            text_ = text_.removeprefix("Value error, ")
            quiet = err["type"] in ("missing", "value_error")
            got = "" if quiet else f" (got {_short(err.get('input'))})"
            parts.append(f"{loc}: {text_}{got}")
        raise InputError("; ".join(parts)) from exc


def parse_command(name: str, payload: bytes) -> _Command:
    """Decode and validate a command payload (no authorisation: see CommandRouter)."""
    if name not in _MODELS:
        return validate_command(name, {})
    return validate_command(name, decode_payload(payload))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _RefusalLog:
    """Logs at most once per interval per reason, with the count since."""

    def __init__(
        self, what: str = "MQTT command refused", interval_s: float = REFUSAL_LOG_INTERVAL_S
    ) -> None:
        self._what = what
        self._interval_s = interval_s
        self._next: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}

    def note(self, reason: str, text: str) -> None:
        self._unlogged[reason] = self._unlogged.get(reason, 0) + 1
        now = time.monotonic()
        if now < self._next.get(reason, 0.0):
            return
        self._next[reason] = now + self._interval_s
        count = self._unlogged.pop(reason)
        log.warning(
            "%s (%s): %s [%d for this reason since the last such line; at most one line per %g s]",
            self._what,
            reason,
            text,
            count,
            self._interval_s,
        )


# ---------------------------------------------------------------------- router

Reply = Callable[[str, bytes, Properties | None], None]


class CommandRouter:
    """Authorises and validates incoming command messages, runs them, replies.

    ``reply(topic, payload, properties)`` sends a reply (the publisher's
    best-effort QoS 1 publish). Call :meth:`subscriptions` on every (re)connect
    and :meth:`handle` for every message on those topics.
    """

    def __init__(
        self,
        settings: Settings,
        handler: CommandHandler,
        reply: Reply,
        *,
        mqtt5: bool,
        metrics: Metrics | None = None,
    ) -> None:
        self._settings = settings
        m = settings.mqtt
        self._topics = Topics(m.prefix, settings.node_id)
        self._handler = handler
        self._reply = reply
        self._mqtt5 = mqtt5
        self._metrics = metrics
        self._verifier: CommandVerifier | None = None
        if not m.trust_broker_acl:
            self._verifier = CommandVerifier(
                settings.command_secret(), window_s=m.command_token_window_s
            )
        allowed = m.command_cameras
        self.cameras: tuple[str, ...] = tuple(
            allowed if allowed is not None else settings.cameras.keys()
        )
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._refusals = _RefusalLog()
        self._response_topic_log = _RefusalLog("MQTT command's response topic ignored")
        self.handled = 0
        self.rejected = 0
        self.ignored_retained = 0
        self.refused: dict[str, int] = {}

    def subscriptions(self) -> list[tuple[str, Any]]:
        """(topic, options) for every command topic of the allowed cameras.

        MQTT 5: retained messages are not sent on subscribe (retain handling 2) and
        the retain flag is kept as published, so a live publish with retain set is
        recognised (and refused) too. MQTT 3.1.1: the retain flag marks exactly the
        stale retained messages a (re)subscription brings; they are ignored.
        """
        if self._mqtt5:
            opts: Any = SubscribeOptions(
                qos=1, noLocal=True, retainAsPublished=True, retainHandling=2
            )
        else:
            opts = 1
        return [
            (self._topics.command(cam, name), opts) for cam in self.cameras for name in COMMANDS
        ]

    def startup_warnings(self) -> list[str]:
        """What an operator must know about command authorisation at start."""
        m = self._settings.mqtt
        out = []
        if m.trust_broker_acl:
            out.append(
                "MQTT commands are accepted without a token (mqtt.trust_broker_acl: true): "
                "the broker's ACLs must allow only trusted clients to publish to "
                f"{self._topics.root}/+/cmd/#"
            )
        elif self._verifier is not None and self._settings.command_secret() is None:
            out.append(
                "MQTT commands are enabled but every one will be refused: set "
                "mqtt.command_secret_file (tokens) or mqtt.trust_broker_acl: true"
            )
        return out

    def handle(self, msg: MQTTMessage) -> bool:
        """Route one message; returns False when it is not a command for us."""
        parsed = self._topics.parse_command(msg.topic)
        if parsed is None or parsed[1] not in COMMANDS:
            return False
        camera, name = parsed
        props = self._reply_props(camera, msg)
        reply_topic = self._topics.reply(camera)
        if msg.retain:
            self.ignored_retained += 1
            self._count(REFUSED_RETAINED)
            log.warning(
                "MQTT command ignored: retained message on %s (retained commands never act; "
                "clear it by publishing an empty retained message to that topic)",
                msg.topic,
            )
            if self._mqtt5:  # a live publish with retain set: tell the sender why
                error = "retained: commands must be published with retain=false; ignored"
                self._send(reply_topic, props, name, camera, None, error=error)
            return True
        reason, refusal, fields = self._admit(camera, msg.topic, bytes(msg.payload))
        if refusal is not None or fields is None:
            self.rejected += 1
            self._refuse(reason, f"{name} for {camera}: {refusal}")
            request_id = _request_id(fields)
            self._send(reply_topic, props, name, camera, request_id, error=refusal)
            return True
        self._waiting[camera] = self._waiting.get(camera, 0) + 1
        task = asyncio.get_running_loop().create_task(
            self._run(camera, name, fields, reply_topic, props),
            name=f"edged-mqtt-cmd-{camera}-{name}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    def _admit(
        self, camera: str, topic: str, payload: bytes
    ) -> tuple[str, str | None, dict[str, Any] | None]:
        """(reason, refusal, fields): the authorised fields, or why not. Authorisation
        comes first: an unauthorised sender learns nothing about this node."""
        try:
            data = decode_payload(payload)
        except InputError as exc:
            return REFUSED_INVALID, str(exc), None
        if self._verifier is not None:
            try:
                data = self._verifier.verify(topic, data)
            except CommandAuthError as exc:
                return exc.reason, str(exc), None
        if camera not in self.cameras:
            allowed = list(self.cameras)
            return (
                REFUSED_CAMERA,
                f"camera: expected one of {allowed} (mqtt.command_cameras), got {camera!r}",
                data,
            )
        if self._waiting.get(camera, 0) >= MAX_WAITING:
            refusal = f"busy: {MAX_WAITING} commands already waiting for camera {camera!r}"
            return REFUSED_BUSY, refusal, data
        return "", None, data

    def _refuse(self, reason: str, text: str) -> None:
        self._count(reason)
        self._refusals.note(reason, text)

    def _count(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1
        if self._metrics is not None:
            self._metrics.commands_refused.labels(reason).inc()

    async def close(self) -> None:
        """Cancel commands still running (shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _reply_props(self, camera: str, msg: MQTTMessage) -> Properties | None:
        if not self._mqtt5:
            return None
        props = new_properties(PacketTypes.PUBLISH)
        req = msg.properties
        response_topic = getattr(req, "ResponseTopic", None)
        if response_topic and response_topic != self._topics.reply(camera):
            self._response_topic_log.note(
                "response_topic",
                f"response topic {str(response_topic)[:200]!r} ignored; replies go to "
                f"{self._topics.reply(camera)} only",
            )
        correlation = getattr(req, "CorrelationData", None)
        if correlation is not None:
            props.CorrelationData = bytes(correlation)
        props.ContentType = "application/json"
        return props

    async def _run(
        self,
        camera: str,
        name: str,
        fields: dict[str, Any],
        topic: str,
        props: Properties | None,
    ) -> None:
        request_id = _request_id(fields)
        try:
            lock = self._locks.setdefault(camera, asyncio.Lock())
            async with lock:
                try:
                    cmd = validate_command(name, fields)
                    self._check(cmd)
                except InputError as exc:
                    self.rejected += 1
                    self._refuse(REFUSED_INVALID, f"{name} for {camera}: {exc}")
                    self._send(topic, props, name, camera, request_id, error=str(exc))
                    return
                try:
                    async with asyncio.timeout(COMMAND_TIMEOUT_S):
                        result = await self._dispatch(camera, cmd)
                except EdgedError as exc:
                    self.rejected += 1
                    self._count(REFUSED_FAILED)
                    log.info("MQTT command %s for %s refused: %s", name, camera, exc)
                    self._send(topic, props, name, camera, request_id, error=str(exc))
                except TimeoutError:
                    self.rejected += 1
                    self._count(REFUSED_FAILED)
                    error = f"timeout: the command did not finish within {COMMAND_TIMEOUT_S:g} s"
                    self._send(topic, props, name, camera, request_id, error=error)
                except Exception as exc:
                    self.rejected += 1
                    self._count(REFUSED_FAILED)
                    log.exception("MQTT command %s for camera %s failed", name, camera)
                    error = f"internal error: {type(exc).__name__}: {exc}"
                    self._send(topic, props, name, camera, request_id, error=error)
                else:
                    self.handled += 1
                    self._send(topic, props, name, camera, request_id, result=result or {})
        finally:
            self._waiting[camera] -= 1

    def _check(self, cmd: _Command) -> None:
        recipe = getattr(cmd, "recipe", None)
        if recipe is not None and recipe not in self._settings.recipes:
            msg = f"recipe: expected one of {sorted(self._settings.recipes)}, got {recipe!r}"
            raise InputError(msg)
        limit = self._settings.mqtt.teach_max_frames
        if isinstance(cmd, TeachCommand) and (cmd.frames or 1) > limit:
            msg = f"frames: expected 1..{limit} (mqtt.teach_max_frames), got {cmd.frames}"
            raise InputError(msg)

    async def _dispatch(self, camera: str, cmd: _Command) -> Mapping[str, Any] | None:
        if isinstance(cmd, TriggerCommand):
            return await self._handler.trigger(camera, cmd.data)
        if isinstance(cmd, RecipeCommand):
            return await self._handler.set_recipe(camera, cmd.recipe, cmd.data)
        if isinstance(cmd, TeachCommand):
            if cmd.confirm is not None:
                return await self._handler.confirm_teach(camera, cmd.recipe, cmd.confirm)
            activate = self._settings.mqtt.teach_activate == "immediate"
            return await self._handler.teach(camera, cmd.recipe, cmd.frames or 1, activate=activate)
        msg = f"command: expected one of {list(COMMANDS)}, got {type(cmd).__name__}"
        raise InputError(msg)

    def _send(
        self,
        topic: str,
        props: Properties | None,
        name: str,
        camera: str,
        request_id: str | int | None,
        *,
        result: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        body: dict[str, Any] = {"ok": error is None, "command": name, "camera": camera}
        body["id"] = request_id
        if error is None:
            body["result"] = dict(result or {})
        else:
            body["error"] = error
        try:
            payload = json.dumps(body, separators=(",", ":"), default=str).encode()
        except (TypeError, ValueError) as exc:
            body = {"ok": False, "command": name, "camera": camera, "id": request_id}
            body["error"] = f"internal error: the reply is not JSON-serialisable ({exc})"
            payload = json.dumps(body).encode()
        self._reply(topic, payload, props)


def _request_id(fields: Mapping[str, Any] | None) -> str | int | None:
    """The request's ``id`` when it is a usable one (echoed even in refusals)."""
    value = None if fields is None else fields.get("id")
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return value if not isinstance(value, str) or len(value) <= 200 else None


# ---------------------------------------------------------------------- daemon adapter


class RuntimeCommandHandler:
    """CommandHandler over the daemon's live cameras (``Runtime.cameras``)."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def trigger(self, camera: str, data: str | None = None) -> Mapping[str, Any] | None:
        cam = self._runtime.camera(camera)
        if data is None:
            await cam.trigger()
            return {}
        previous = cam.data
        cam.set_data(data)  # before the frame the trigger produces is inspected
        try:
            await cam.trigger()
        except BaseException:
            cam.set_data(previous)
            raise
        return {"data": cam.data}

    async def set_recipe(
        self, camera: str, recipe: str, data: str | None = None
    ) -> Mapping[str, Any] | None:
        cam = self._runtime.camera(camera)
        previous = cam.recipe
        await cam.set_recipe(recipe)
        if data is None:
            return {"recipe": recipe, "previous": previous}
        cam.set_data(data)
        return {"recipe": recipe, "previous": previous, "data": cam.data}

    async def teach(
        self, camera: str, recipe: str | None, frames: int, *, activate: bool
    ) -> Mapping[str, Any] | None:
        cam = self._runtime.camera(camera)
        name = recipe or cam.recipe
        refs = await cam.teach(name, frames, activate=activate)
        out: dict[str, Any] = {"recipe": name, "frames": frames, "references": list(refs)}
        if not activate:
            out["pending"] = True
            out["confirm"] = {"recipe": name, "confirm": refs[-1] if refs else None}
        return out

    async def confirm_teach(
        self, camera: str, recipe: str | None, version: str
    ) -> Mapping[str, Any] | None:
        cam = self._runtime.camera(camera)
        name = recipe or cam.recipe
        active = await cam.activate_reference(name, version)
        return {"recipe": name, "active": active}
