"""edged — a streaming edge daemon for factory camera lines.

Acquire frames, inspect them against stored good references, and publish every
verdict with its evidence over MQTT and HTTP.
"""

from edged._version import __version__
from edged.core.errors import (
    AuthError,
    BusyError,
    ConfigError,
    EdgedError,
    InputError,
    NotFoundError,
    RegistrationError,
    SourceError,
    TooLargeError,
)

__all__ = [
    "AuthError",
    "BusyError",
    "ConfigError",
    "EdgedError",
    "InputError",
    "NotFoundError",
    "RegistrationError",
    "SourceError",
    "TooLargeError",
    "__version__",
]
