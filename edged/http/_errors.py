"""HTTP-specific errors: EdgedError subclasses with the status they answer."""

from __future__ import annotations

from edged.core.errors import EdgedError, InputError


class UnsupportedMediaError(InputError):
    """The body is not in a format the endpoint accepts (e.g. a GIF for analyze_image)."""

    http_status = 415


class ForbiddenError(EdgedError):
    """The request is understood but not allowed (e.g. shared memory from a remote host)."""

    http_status = 403


class BodyTimeoutError(InputError):
    """The client did not send its body within the request timeout."""

    http_status = 408


class AnalysisTimeoutError(EdgedError):
    """The analysis did not finish within ``http.request_timeout_s``."""

    http_status = 503


class UnavailableError(EdgedError):
    """A component the endpoint needs is not configured (e.g. no reference store)."""

    http_status = 503
