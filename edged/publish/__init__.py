"""Publishing: durable MQTT delivery of Results, live state, commands and ``edged watch``."""

from edged.publish.commands import CommandHandler, CommandRouter, RuntimeCommandHandler
from edged.publish.mqtt import Publisher, link_options
from edged.publish.outbox import DeadLetter, NewMessage, Outbox, OutboxError, OutboxMessage

__all__ = [
    "CommandHandler",
    "CommandRouter",
    "DeadLetter",
    "NewMessage",
    "Outbox",
    "OutboxError",
    "OutboxMessage",
    "Publisher",
    "RuntimeCommandHandler",
    "link_options",
]
