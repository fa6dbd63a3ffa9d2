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
  (default 1) as references for NAME (default: the camera's active recipe).

Every payload may carry ``"id"`` (string or integer), echoed in the reply.
The reply goes to the MQTT 5 *response topic* when the request has one (with its
*correlation data*), else to ``{prefix}/{node}/{camera}/cmd/reply``::

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
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from paho.mqtt.client import MQTTMessage
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edged.config import Settings
from edged.core.errors import EdgedError, InputError
from edged.publish._link import new_properties
from edged.publish._topics import COMMANDS, Topics, valid_publish_topic

if TYPE_CHECKING:
    from edged.runtime.shared import Runtime

log = logging.getLogger(__name__)

MAX_WAITING = 8
COMMAND_TIMEOUT_S = 120.0


class CommandHandler(Protocol):
    """What MQTT commands do; the daemon implements it. Raise EdgedError to refuse."""

    async def trigger(self, camera: str, data: str | None = None) -> Mapping[str, Any] | None: ...

    async def set_recipe(
        self, camera: str, recipe: str, data: str | None = None
    ) -> Mapping[str, Any] | None: ...

    async def teach(
        self, camera: str, recipe: str | None, frames: int
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
    frames: int = Field(default=1, ge=1, le=1000)


_MODELS: dict[str, type[_Command]] = {
    "trigger": TriggerCommand,
    "recipe": RecipeCommand,
    "teach": TeachCommand,
}


def parse_command(name: str, payload: bytes) -> _Command:
    """Validate a command payload; InputError says what was expected and what came."""
    model = _MODELS.get(name)
    if model is None:
        msg = f"command: expected one of {list(COMMANDS)}, got {name!r}"
        raise InputError(msg)
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
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "payload"
            text_ = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            got = "" if err["type"] == "missing" else f" (got {_short(err.get('input'))})"
            parts.append(f"{loc}: {text_}{got}")
        raise InputError("; ".join(parts)) from exc


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------------- router

Reply = Callable[[str, bytes, Properties | None], None]


class CommandRouter:
    """Validates incoming command messages, runs them through the handler, replies.

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
    ) -> None:
        self._settings = settings
        self._topics = Topics(settings.mqtt.prefix, settings.node_id)
        self._handler = handler
        self._reply = reply
        self._mqtt5 = mqtt5
        allowed = settings.mqtt.command_cameras
        self.cameras: tuple[str, ...] = tuple(
            allowed if allowed is not None else settings.cameras.keys()
        )
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.handled = 0
        self.rejected = 0
        self.ignored_retained = 0

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

    def handle(self, msg: MQTTMessage) -> bool:
        """Route one message; returns False when it is not a command for us."""
        parsed = self._topics.parse_command(msg.topic)
        if parsed is None or parsed[1] not in COMMANDS:
            return False
        camera, name = parsed
        if msg.retain:
            self.ignored_retained += 1
            log.warning(
                "MQTT command ignored: retained message on %s (retained commands never act; "
                "clear it by publishing an empty retained message to that topic)",
                msg.topic,
            )
            if self._mqtt5:  # a live publish with retain set: tell the sender why
                reply_topic, props = self._reply_route(camera, msg)
                error = "retained: commands must be published with retain=false; ignored"
                self._send(reply_topic, props, name, camera, None, error=error)
            return True
        reply_topic, props = self._reply_route(camera, msg)
        refusal = None
        if camera not in self.cameras:
            allowed = list(self.cameras)
            refusal = f"camera: expected one of {allowed} (mqtt.command_cameras), got {camera!r}"
        elif self._waiting.get(camera, 0) >= MAX_WAITING:
            refusal = f"busy: {MAX_WAITING} commands already waiting for camera {camera!r}"
        if refusal is not None:
            self.rejected += 1
            self._send(reply_topic, props, name, camera, None, error=refusal)
            return True
        self._waiting[camera] = self._waiting.get(camera, 0) + 1
        task = asyncio.get_running_loop().create_task(
            self._run(camera, name, bytes(msg.payload), reply_topic, props),
            name=f"edged-mqtt-cmd-{camera}-{name}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def close(self) -> None:
        """Cancel commands still running (shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _reply_route(self, camera: str, msg: MQTTMessage) -> tuple[str, Properties | None]:
        topic = self._topics.reply(camera)
        if not self._mqtt5:
            return topic, None
        props = new_properties(PacketTypes.PUBLISH)
        req = msg.properties
        response_topic = getattr(req, "ResponseTopic", None)
        if isinstance(response_topic, str) and valid_publish_topic(response_topic):
            topic = response_topic
        correlation = getattr(req, "CorrelationData", None)
        if correlation is not None:
            props.CorrelationData = bytes(correlation)
        props.ContentType = "application/json"
        return topic, props

    async def _run(
        self, camera: str, name: str, payload: bytes, topic: str, props: Properties | None
    ) -> None:
        request_id: str | int | None = None
        try:
            lock = self._locks.setdefault(camera, asyncio.Lock())
            async with lock:
                try:
                    cmd = parse_command(name, payload)
                    request_id = cmd.id
                    self._check_recipe(cmd)
                    async with asyncio.timeout(COMMAND_TIMEOUT_S):
                        result = await self._dispatch(camera, cmd)
                except EdgedError as exc:
                    self.rejected += 1
                    log.info("MQTT command %s for %s refused: %s", name, camera, exc)
                    self._send(topic, props, name, camera, request_id, error=str(exc))
                except TimeoutError:
                    self.rejected += 1
                    error = f"timeout: the command did not finish within {COMMAND_TIMEOUT_S:g} s"
                    self._send(topic, props, name, camera, request_id, error=error)
                except Exception as exc:
                    self.rejected += 1
                    log.exception("MQTT command %s for camera %s failed", name, camera)
                    error = f"internal error: {type(exc).__name__}: {exc}"
                    self._send(topic, props, name, camera, request_id, error=error)
                else:
                    self.handled += 1
                    self._send(topic, props, name, camera, request_id, result=result or {})
        finally:
            self._waiting[camera] -= 1

    def _check_recipe(self, cmd: _Command) -> None:
        recipe = getattr(cmd, "recipe", None)
        if recipe is not None and recipe not in self._settings.recipes:
            msg = f"recipe: expected one of {sorted(self._settings.recipes)}, got {recipe!r}"
            raise InputError(msg)

    async def _dispatch(self, camera: str, cmd: _Command) -> Mapping[str, Any] | None:
        if isinstance(cmd, TriggerCommand):
            return await self._handler.trigger(camera, cmd.data)
        if isinstance(cmd, RecipeCommand):
            return await self._handler.set_recipe(camera, cmd.recipe, cmd.data)
        if isinstance(cmd, TeachCommand):
            return await self._handler.teach(camera, cmd.recipe, cmd.frames)
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

    async def teach(self, camera: str, recipe: str | None, frames: int) -> Mapping[str, Any] | None:
        cam = self._runtime.camera(camera)
        name = recipe or cam.recipe
        refs = await cam.teach(name, frames)
        return {"recipe": name, "frames": frames, "references": list(refs)}
