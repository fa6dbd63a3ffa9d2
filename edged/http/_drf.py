"""Nested documents from flat multipart field names, as the Deepomatic client sends them.

The client flattens JSON for multipart bodies the Django REST framework way:
``{"preprocessing": {"inputs": [{"image": {"target_size": "224"}}]}}`` becomes the
field ``preprocessing.inputs[0]image.target_size``. :func:`unflatten` rebuilds the
nesting (values stay as sent: text, or bytes for file parts).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from edged.core.errors import InputError

_TOKEN = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def _keys(name: str) -> list[str | int]:
    out: list[str | int] = []
    pos = 0
    while pos < len(name):
        m = _TOKEN.match(name, pos)
        if m is None or m.end() == pos:
            msg = f"field {name!r}: expected names like 'a.b[0]c', got a malformed name"
            raise InputError(msg)
        out.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    return out


def _listify(node: Any, path: str) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(isinstance(k, int) for k in node):
        if sorted(node) != list(range(len(node))):
            msg = f"field {path}: expected list indexes 0..{len(node) - 1}, got {sorted(node)}"
            raise InputError(msg)
        return [_listify(node[i], f"{path}[{i}]") for i in range(len(node))]
    return {k: _listify(v, f"{path}.{k}") for k, v in node.items()}


def unflatten(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Rebuild nested dicts and lists from DRF-style flat names."""
    root: dict[Any, Any] = {}
    for name, value in fields.items():
        keys = _keys(name)
        node = root
        for i, key in enumerate(keys):
            last = i == len(keys) - 1
            if last:
                if key in node:
                    msg = f"field {name!r}: given twice"
                    raise InputError(msg)
                node[key] = value
            else:
                child = node.setdefault(key, {})
                if not isinstance(child, dict):
                    msg = f"field {name!r}: conflicts with a plain value given for a prefix"
                    raise InputError(msg)
                node = child
    result = _listify(root, "")
    assert isinstance(result, dict)
    return result
