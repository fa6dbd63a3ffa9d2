"""Names edged accepts for nodes, cameras, recipes and stored files."""

from __future__ import annotations

import re

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""1-64 letters, digits, ``_``, ``.``, ``-``, not starting with a separator: safe as a
path component, an MQTT topic level and a Prometheus label value."""
