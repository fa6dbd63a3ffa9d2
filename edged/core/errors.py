"""The one exception hierarchy of edged.

Every error a user can cause or meet derives from :class:`EdgedError`. Each class
carries the HTTP status it maps to, so the HTTP layer turns any of them into a
4xx answer in one place (never a 500).
"""

from __future__ import annotations


class EdgedError(Exception):
    """Base of every edged error. ``http_status`` is what an HTTP handler answers."""

    http_status: int = 400


class ConfigError(EdgedError):
    """The configuration is invalid; the message names each key path and bad value."""

    http_status = 400


class InputError(EdgedError):
    """Input from outside (HTTP body, query, MQTT command, image bytes) is malformed."""

    http_status = 400


class AuthError(EdgedError):
    """A missing or wrong API key."""

    http_status = 401


class NotFoundError(EdgedError):
    """A camera, recipe or reference that does not exist."""

    http_status = 404


class TooLargeError(EdgedError):
    """A request body or a decoded image exceeds the configured limits."""

    http_status = 413


class BusyError(EdgedError):
    """Too many concurrent analyses; the caller should retry after ``retry_after_s``."""

    http_status = 429

    def __init__(self, msg: str, *, retry_after_s: float = 1.0) -> None:
        super().__init__(msg)
        self.retry_after_s = retry_after_s


class SourceError(EdgedError):
    """A camera or frame source failed (lost device, timeout, bad buffer)."""

    http_status = 503


class RegistrationError(EdgedError):
    """A query image could not be registered onto its reference."""

    http_status = 422
