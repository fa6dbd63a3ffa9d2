"""The outbox's SQLite side: schema, records and the store that runs on the
outbox's own thread (see :mod:`edged.publish.outbox` for the design)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from edged.core.errors import EdgedError

DROP_MAX_MESSAGES = "max_messages"
DROP_MAX_AGE = "max_age"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    topic     TEXT    NOT NULL,
    payload   BLOB    NOT NULL,
    qos       INTEGER NOT NULL,
    retain    INTEGER NOT NULL,
    created_s REAL    NOT NULL
);
CREATE TABLE IF NOT EXISTS marks (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letter (
    id          INTEGER PRIMARY KEY,
    topic       TEXT    NOT NULL,
    payload     BLOB    NOT NULL,
    qos         INTEGER NOT NULL,
    retain      INTEGER NOT NULL,
    created_s   REAL    NOT NULL,
    failed_s    REAL    NOT NULL,
    reason_code INTEGER NOT NULL,
    reason      TEXT    NOT NULL
);
"""
AGE_CHECK_INTERVAL_S = 1.0


class OutboxError(EdgedError):
    """The outbox database cannot be written or read (disk full, corrupt, locked)."""

    http_status = 503


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One stored message. ``row_id`` orders messages and identifies them for ack."""

    row_id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    created_s: float


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message the broker refused, with its MQTT 5 reason code and reason."""

    row_id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    created_s: float
    failed_s: float
    reason_code: int
    reason: str


@dataclass(frozen=True, slots=True)
class NewMessage:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


@dataclass
class Writes:
    """Work that accumulated on the loop thread for the next transaction."""

    puts: list[NewMessage] = field(default_factory=list)
    created: list[float] = field(default_factory=list)
    waiters: list[tuple[asyncio.Future[list[int]], int]] = field(default_factory=list)
    marks: dict[str, int] = field(default_factory=dict)
    acks: list[int] = field(default_factory=list)
    rejects: list[tuple[int, int, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.puts or self.acks or self.rejects or self.marks)


@dataclass(frozen=True, slots=True)
class Done:
    """What a transaction did, reported back to the loop thread."""

    ids: list[int]
    dropped: dict[str, int]
    rejected: int
    depth: int
    oldest_created_s: float | None
    dead_depth: int
    last_id: int


class Store:
    """The SQLite side. Only ever used from the outbox's own thread."""

    def __init__(
        self,
        path: Path,
        synchronous: str,
        max_messages: int,
        max_age_s: float,
        dead_letter_max: int,
    ) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        mode = self.conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            msg = f"outbox {str(path)!r}: expected WAL journal mode, got {mode!r}"
            raise OutboxError(msg)
        self.conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self.conn.execute("PRAGMA busy_timeout=5000")
        self.conn.execute("PRAGMA journal_size_limit=67108864")
        self.conn.executescript(_SCHEMA)
        self.max_messages = max_messages
        self.max_age_s = max_age_s
        self.dead_letter_max = dead_letter_max
        self.depth = int(self.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        self.dead_depth = int(self.conn.execute("SELECT COUNT(*) FROM dead_letter").fetchone()[0])
        self.last_id = int(self.conn.execute("SELECT MAX(id) FROM outbox").fetchone()[0] or 0)
        self._next_age_check = 0.0

    def apply(self, writes: Writes) -> Done:
        conn = self.conn
        ids: list[int] = []
        dropped: dict[str, int] = {}
        rejected = 0
        if writes or time.monotonic() >= self._next_age_check:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for m, created_s in zip(writes.puts, writes.created, strict=True):
                    cur = conn.execute(
                        "INSERT INTO outbox (topic, payload, qos, retain, created_s) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (m.topic, m.payload, m.qos, int(m.retain), created_s),
                    )
                    ids.append(int(cur.lastrowid or 0))
                self.depth += len(writes.puts)
                if writes.marks:
                    conn.executemany(
                        "INSERT INTO marks (key, value) VALUES (?, ?) "
                        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        list(writes.marks.items()),
                    )
                if writes.acks:
                    cur = conn.executemany(
                        "DELETE FROM outbox WHERE id = ?", [(i,) for i in writes.acks]
                    )
                    self.depth -= max(cur.rowcount, 0)
                for row_id, code, reason in writes.rejects:
                    rejected += self._reject(row_id, code, reason)
                dropped = self._enforce_caps()
                conn.execute("COMMIT")
                if ids:
                    self.last_id = ids[-1]
            except BaseException:
                conn.execute("ROLLBACK")
                self.depth = int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
                raise
        row = conn.execute("SELECT created_s FROM outbox ORDER BY id LIMIT 1").fetchone()
        return Done(
            ids=ids,
            dropped=dropped,
            rejected=rejected,
            depth=self.depth,
            oldest_created_s=None if row is None else float(row[0]),
            dead_depth=self.dead_depth,
            last_id=self.last_id,
        )

    def _reject(self, row_id: int, code: int, reason: str) -> int:
        cur = self.conn.execute(
            "INSERT OR REPLACE INTO dead_letter "
            "(id, topic, payload, qos, retain, created_s, failed_s, reason_code, reason) "
            "SELECT id, topic, payload, qos, retain, created_s, ?, ?, ? FROM outbox WHERE id = ?",
            (time.time(), code, reason, row_id),
        )
        if cur.rowcount <= 0:
            return 0  # already dropped by a cap
        self.conn.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
        self.depth -= 1
        self.dead_depth += 1
        if self.dead_depth > self.dead_letter_max:
            over = self.dead_depth - self.dead_letter_max
            self.conn.execute(
                "DELETE FROM dead_letter WHERE id IN "
                "(SELECT id FROM dead_letter ORDER BY id LIMIT ?)",
                (over,),
            )
            self.dead_depth -= over
        return 1

    def _enforce_caps(self) -> dict[str, int]:
        dropped: dict[str, int] = {}
        if self.depth > self.max_messages:
            over = self.depth - self.max_messages
            cur = self.conn.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)",
                (over,),
            )
            n = max(cur.rowcount, 0)
            self.depth -= n
            if n:
                dropped[DROP_MAX_MESSAGES] = n
        now = time.monotonic()
        if now >= self._next_age_check:
            self._next_age_check = now + AGE_CHECK_INTERVAL_S
            n = self._drop_expired(time.time() - self.max_age_s)
            if n:
                dropped[DROP_MAX_AGE] = n
        return dropped

    def _drop_expired(self, cutoff_s: float) -> int:
        """Delete the leading run of rows created before ``cutoff_s`` (oldest first).

        Rows are in creation order, so only the head of the table is scanned; a
        wall clock that stepped back cannot make us scan the whole table.
        """
        total = 0
        while True:
            rows = self.conn.execute(
                "SELECT id, created_s FROM outbox ORDER BY id LIMIT 1000"
            ).fetchall()
            last = None
            for row_id, created_s in rows:
                if created_s >= cutoff_s:
                    break
                last = row_id
            if last is None:
                return total
            cur = self.conn.execute("DELETE FROM outbox WHERE id <= ?", (last,))
            n = max(cur.rowcount, 0)
            self.depth -= n
            total += n
            if last != rows[-1][0]:
                return total

    def fetch(self, after_id: int, limit: int) -> list[OutboxMessage]:
        rows = self.conn.execute(
            "SELECT id, topic, payload, qos, retain, created_s FROM outbox "
            "WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        ).fetchall()
        return [OutboxMessage(r[0], r[1], bytes(r[2]), r[3], bool(r[4]), r[5]) for r in rows]

    def marks(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.conn.execute("SELECT key, value FROM marks")}

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        rows = self.conn.execute(
            "SELECT id, topic, payload, qos, retain, created_s, failed_s, reason_code, reason "
            "FROM dead_letter ORDER BY id LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            DeadLetter(r[0], r[1], bytes(r[2]), r[3], bool(r[4]), r[5], r[6], r[7], r[8])
            for r in rows
        ]

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.close()
