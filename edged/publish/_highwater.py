"""The seq high-water marks, kept apart from the outbox database.

The outbox stores each camera's last result ``seq`` (a *mark*) in the same
transaction as the result. If that database is lost — quarantined after
corruption, truncated to zero bytes, its WAL damaged — the marks go with it and a
restarted daemon would number results from 0 again: two different results with
the same ``seq``. This file prevents that:

- While running, it holds a *reservation* per mark: a value no seq has reached
  yet. When a mark reaches its reservation, the reservation moves ``BLOCK`` ahead
  (one small write per ``BLOCK`` results).
- On a clean close it holds the exact marks and ``clean = true``.

On start, :func:`merge` takes, per mark, the exact value after a clean close, or
the reservation after anything else (a crash, a lost database): seq numbers may
skip ahead, never repeat.

The file is two fixed 4 KiB slots written in place, alternately, each with a
counter and a CRC; the newest valid slot wins. Overwriting blocks a file already
has needs no free space on the usual filesystems, so a full disk does not stop it.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

BLOCK = 1000
_SLOT = 4096
_MAGIC = b"EDGEDHW1"


class HighWater:
    """Reservations and clean-close marks in ``path`` (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reserved: dict[str, int] = {}
        self._counter = 0
        self._loaded: tuple[bool, dict[str, int], dict[str, int]] | None = None

    def load(self) -> tuple[bool, dict[str, int], dict[str, int]] | None:
        """``(clean, exact, reserved)`` from the newest valid slot, or None."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        best: tuple[int, dict[str, object]] | None = None
        for i in range(2):
            doc = _parse_slot(data[i * _SLOT : (i + 1) * _SLOT])
            if doc is not None and (best is None or int(str(doc["n"])) > best[0]):
                best = (int(str(doc["n"])), doc)
        if best is None:
            log.error("seq high-water file %s is unreadable; seq may skip, never repeat", self.path)
            return None
        self._counter = best[0]
        doc = best[1]
        exact = _int_map(doc.get("exact"))
        reserved = _int_map(doc.get("reserved"))
        self.reserved = dict(reserved)
        return bool(doc.get("clean")), exact, reserved

    def merge(self, db_marks: Mapping[str, int]) -> dict[str, int]:
        """The marks to continue from: the database's, raised to what the file proves."""
        loaded = self.load()
        marks = dict(db_marks)
        if loaded is None:
            return marks
        clean, exact, reserved = loaded
        floor = exact if clean else {k: v - 1 for k, v in reserved.items()}
        for key, value in floor.items():
            if value > marks.get(key, -1):
                if key in marks or not clean:
                    log.warning(
                        "seq mark %s: the outbox says %s, the high-water file %s; continuing "
                        "after %d so no seq is used twice",
                        key,
                        marks.get(key),
                        value,
                        value,
                    )
                marks[key] = value
        return marks

    def reserve(self, marks: Mapping[str, int]) -> None:
        """Move reservations ahead of ``marks`` where they reached them (writes the file)."""
        grown = False
        for key, value in marks.items():
            if value >= self.reserved.get(key, -1):
                self.reserved[key] = value + BLOCK
                grown = True
        if grown:
            self._write(clean=False, exact={})

    def close(self, marks: Mapping[str, int]) -> None:
        """A clean close: the exact marks."""
        for key, value in marks.items():
            self.reserved[key] = max(self.reserved.get(key, 0), value + 1)
        self._write(clean=True, exact=dict(marks))

    def _write(self, *, clean: bool, exact: Mapping[str, int]) -> None:
        self._counter += 1
        body = json.dumps(
            {"n": self._counter, "clean": clean, "exact": exact, "reserved": self.reserved},
            separators=(",", ":"),
        ).encode()
        if len(body) > _SLOT - 16:
            msg = f"seq high-water file: {len(self.reserved)} marks do not fit in {_SLOT} bytes"
            raise OSError(msg)
        record = _MAGIC + zlib.crc32(body).to_bytes(4, "big") + len(body).to_bytes(4, "big")
        slot = (record + body).ljust(_SLOT, b"\0")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if os.fstat(fd).st_size < 2 * _SLOT:
                os.pwrite(fd, b"\0" * (2 * _SLOT), 0)  # allocate both slots once
            os.pwrite(fd, slot, (self._counter % 2) * _SLOT)
            os.fsync(fd)
        finally:
            os.close(fd)


def _parse_slot(raw: bytes) -> dict[str, object] | None:
    if len(raw) < 16 or raw[:8] != _MAGIC:
        return None
    crc = int.from_bytes(raw[8:12], "big")
    size = int.from_bytes(raw[12:16], "big")
    body = raw[16 : 16 + size]
    if len(body) != size or zlib.crc32(body) != crc:
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("n"), int) else None


def _int_map(value: object) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {str(k): int(v) for k, v in value.items() if isinstance(v, int)}
