"""The outbox's SQLite side: schema, records and the store that runs on the
outbox's own thread (see :mod:`edged.publish.outbox` for the design)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from edged.core.errors import EdgedError

DROP_MAX_MESSAGES = "max_messages"
DROP_MAX_BYTES = "max_bytes"
DROP_MAX_AGE = "max_age"
DROP_DEAD_LETTER_MAX = "dead_letter_max"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    topic     TEXT    NOT NULL,
    payload   BLOB    NOT NULL,
    qos       INTEGER NOT NULL,
    retain    INTEGER NOT NULL,
    created_s REAL    NOT NULL,
    grp       INTEGER
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
# What one row counts against outbox_max_bytes: payload and topic bytes.
_ROW_BYTES = "length(payload) + length(CAST(topic AS BLOB))"


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

    def retry_later(self, failed: Writes) -> None:
        """Take back the acks and rejections of a transaction that failed (they are
        committed with the next one: the outbox drains once the disk has room again)."""
        self.acks[:0] = failed.acks
        self.rejects[:0] = failed.rejects


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
        max_bytes: int | None = None,
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
        columns = {row[1] for row in self.conn.execute("PRAGMA table_info(outbox)")}
        if "grp" not in columns:  # an outbox written by an older edged
            self.conn.execute("ALTER TABLE outbox ADD COLUMN grp INTEGER")
        self.max_bytes = max_bytes
        self.bytes = int(
            self.conn.execute(f"SELECT COALESCE(SUM({_ROW_BYTES}), 0) FROM outbox").fetchone()[0]
        )
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
                puts = iter(zip(writes.puts, writes.created, strict=True))
                sizes = [n for _, n in writes.waiters] or [len(writes.puts)]
                for size in sizes:
                    grp = None
                    for m, created_s in itertools.islice(puts, size):
                        cur = conn.execute(
                            "INSERT INTO outbox (topic, payload, qos, retain, created_s, grp) "
                            "VALUES (?, ?, ?, ?, ?, ?)",
                            (m.topic, m.payload, m.qos, int(m.retain), created_s, grp),
                        )
                        row_id = int(cur.lastrowid or 0)
                        if grp is None:
                            grp = row_id
                            conn.execute("UPDATE outbox SET grp = ? WHERE id = ?", (grp, row_id))
                        ids.append(row_id)
                        self.bytes += len(m.payload) + len(m.topic.encode())
                self.depth += len(ids)
                if writes.marks:
                    conn.executemany(
                        "INSERT INTO marks (key, value) VALUES (?, ?) "
                        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        list(writes.marks.items()),
                    )
                for row_id in writes.acks:
                    gone = conn.execute(
                        f"DELETE FROM outbox WHERE id = ? RETURNING {_ROW_BYTES}",
                        (row_id,),
                    ).fetchall()
                    self.depth -= len(gone)
                    self.bytes -= sum(int(r[0]) for r in gone)
                for row_id, code, reason in writes.rejects:
                    n, expired = self._reject(row_id, code, reason)
                    rejected += n
                    if expired:
                        dropped[DROP_DEAD_LETTER_MAX] = (
                            dropped.get(DROP_DEAD_LETTER_MAX, 0) + expired
                        )
                dropped.update(self._enforce_caps())
                conn.execute("COMMIT")
                if ids:
                    self.last_id = ids[-1]
            except BaseException:
                # SQLite may have rolled back already (e.g. SQLITE_FULL): never let a
                # "cannot rollback" mask the real error.
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                with contextlib.suppress(sqlite3.Error):
                    self._recount()
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

    def _recount(self) -> None:
        self.depth = int(self.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        self.dead_depth = int(self.conn.execute("SELECT COUNT(*) FROM dead_letter").fetchone()[0])
        self.bytes = int(
            self.conn.execute(f"SELECT COALESCE(SUM({_ROW_BYTES}), 0) FROM outbox").fetchone()[0]
        )

    def restore(self, rows: list[OutboxMessage], marks: dict[str, int]) -> None:
        """Put rows salvaged from a damaged outbox (with their ids) into this one."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT OR IGNORE INTO outbox (id, topic, payload, qos, retain, created_s, grp) "
                "VALUES (?, ?, ?, ?, ?, ?, NULL)",
                [(m.row_id, m.topic, m.payload, m.qos, int(m.retain), m.created_s) for m in rows],
            )
            conn.executemany(
                "INSERT INTO marks (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)",
                list(marks.items()),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._recount()
        self.last_id = int(conn.execute("SELECT MAX(id) FROM outbox").fetchone()[0] or 0)

    def checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it to zero bytes (shrink)."""
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _reject(self, row_id: int, code: int, reason: str) -> tuple[int, int]:
        """(moved, expired): 1 when ``row_id`` moved to the dead letters, and how many
        old dead letters the cap deleted to make room."""
        cur = self.conn.execute(
            "INSERT OR REPLACE INTO dead_letter "
            "(id, topic, payload, qos, retain, created_s, failed_s, reason_code, reason) "
            "SELECT id, topic, payload, qos, retain, created_s, ?, ?, ? FROM outbox WHERE id = ?",
            (time.time(), code, reason, row_id),
        )
        if cur.rowcount <= 0:
            return 0, 0  # already dropped by a cap
        gone = self.conn.execute(
            f"DELETE FROM outbox WHERE id = ? RETURNING {_ROW_BYTES}",
            (row_id,),
        ).fetchall()
        self.depth -= len(gone)
        self.bytes -= sum(int(r[0]) for r in gone)
        self.dead_depth += 1
        expired = 0
        if self.dead_depth > self.dead_letter_max:
            over = self.dead_depth - self.dead_letter_max
            cur = self.conn.execute(
                "DELETE FROM dead_letter WHERE id IN "
                "(SELECT id FROM dead_letter ORDER BY id LIMIT ?)",
                (over,),
            )
            expired = max(cur.rowcount, 0)
            self.dead_depth -= expired
        return 1, expired

    def _enforce_caps(self) -> dict[str, int]:
        dropped: dict[str, int] = {}
        if self.depth > self.max_messages:
            n = self._drop_oldest(self.depth - self.max_messages)
            if n:
                dropped[DROP_MAX_MESSAGES] = n
        if self.max_bytes is not None and self.bytes > self.max_bytes:
            n = self._drop_bytes(self.bytes - self.max_bytes)
            if n:
                dropped[DROP_MAX_BYTES] = n
        now = time.monotonic()
        if now >= self._next_age_check:
            self._next_age_check = now + AGE_CHECK_INTERVAL_S
            n = self._drop_expired(time.time() - self.max_age_s)
            if n:
                dropped[DROP_MAX_AGE] = n
        return dropped

    def _drop_oldest(self, count: int) -> int:
        """Delete the ``count`` oldest rows and the rest of the last one's group (the
        verdict and result of one Result go together, never one without the other)."""
        row = self.conn.execute(
            "SELECT id, grp FROM outbox ORDER BY id LIMIT 1 OFFSET ?", (count - 1,)
        ).fetchone()
        if row is None:
            return 0
        return self._delete_through(int(row[0]), row[1])

    def _drop_bytes(self, excess: int) -> int:
        """Delete the oldest rows (whole groups) until ``excess`` bytes are freed."""
        freed, last, grp = 0, None, None
        for row_id, size, group in self.conn.execute(
            f"SELECT id, {_ROW_BYTES}, grp FROM outbox ORDER BY id"
        ):
            freed += int(size)
            last, grp = int(row_id), group
            if freed >= excess:
                break
        return 0 if last is None else self._delete_through(last, grp)

    def _delete_through(self, last: int, grp: int | None) -> int:
        if grp is not None:
            top = self.conn.execute("SELECT MAX(id) FROM outbox WHERE grp = ?", (grp,)).fetchone()
            last = max(last, int(top[0] or last))
        gone = self.conn.execute(
            f"DELETE FROM outbox WHERE id <= ? RETURNING {_ROW_BYTES}",
            (last,),
        ).fetchall()
        self.depth -= len(gone)
        self.bytes -= sum(int(r[0]) for r in gone)
        return len(gone)

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
            total += self._delete_through(last, None)
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
