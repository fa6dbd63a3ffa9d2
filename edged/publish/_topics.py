"""The MQTT topic layout (see ARCHITECTURE.md), in one place.

Root ``{prefix}/{node_id}``:

- ``status`` — retained ``online`` / ``offline`` (last will) / ``stopped``
- ``{camera}/result`` — full Result JSON, ``{camera}/verdict`` — compact verdict
- ``{camera}/state`` — retained live camera state
- ``{camera}/image`` — retained annotated JPEG of a (failed) part, best effort
- ``{camera}/cmd/{trigger|recipe|teach}`` in, ``{camera}/cmd/reply`` out
"""

from __future__ import annotations

from dataclasses import dataclass

COMMANDS = ("trigger", "recipe", "teach")


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str
    node: str

    @property
    def root(self) -> str:
        return f"{self.prefix}/{self.node}"

    @property
    def status(self) -> str:
        return f"{self.root}/status"

    def result(self, camera: str) -> str:
        return f"{self.root}/{camera}/result"

    def verdict(self, camera: str) -> str:
        return f"{self.root}/{camera}/verdict"

    def state(self, camera: str) -> str:
        return f"{self.root}/{camera}/state"

    def image(self, camera: str) -> str:
        return f"{self.root}/{camera}/image"

    def command(self, camera: str, name: str) -> str:
        return f"{self.root}/{camera}/cmd/{name}"

    def reply(self, camera: str) -> str:
        return f"{self.root}/{camera}/cmd/reply"

    def parse_command(self, topic: str) -> tuple[str, str] | None:
        """``(camera, command)`` for a command topic of this node, else None."""
        head = self.root + "/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head) :].split("/")
        if len(parts) != 3 or parts[1] != "cmd" or not parts[0]:
            return None
        return parts[0], parts[2]


def valid_publish_topic(topic: str) -> bool:
    """A topic one may publish to: non-empty, no wildcards, no NUL, at most 65535 bytes."""
    return (
        bool(topic)
        and "+" not in topic
        and "#" not in topic
        and "\x00" not in topic
        and len(topic.encode()) <= 65535
    )
