"""The durable outbox: every message is on disk before it is published, until PUBACK.

paho keeps unacknowledged QoS 1 messages in memory only, so a crash, a ``kill -9``
or a restart while the broker is down would lose them. The outbox is a SQLite
database (WAL mode) under ``state_dir``:

- :meth:`Outbox.put_many` appends messages (topic, payload, qos, retain) in one
  transaction and returns their row ids; ids only grow (``AUTOINCREMENT``), so
  row order is publish order, across restarts too.
- :meth:`Outbox.fetch` reads committed rows after a cursor, oldest first: the
  sender's single source of what to (re)send.
- :meth:`Outbox.ack` deletes a row once the broker acknowledged it (PUBACK);
  :meth:`Outbox.reject` moves it to the ``dead_letter`` table with the MQTT 5
  reason code (>= 0x80) and reason, so a broker that refuses a message does not
  make edged retry it forever, and the message is kept for an operator.
- Caps: more than ``max_messages`` rows, more than ``max_bytes`` of topics and
  payloads, or rows older than ``max_age_s``, are dropped oldest first — always
  whole Results (the verdict never without its result) — *counted* (``on_drop``
  hook, e.g. a Prometheus counter) and logged — never silently. The dead-letter
  table keeps the newest ``dead_letter_max`` rows; older ones deleted to make room
  are counted too (reason ``dead_letter_max``).
- A failed transaction (disk full, I/O error) reports SQLite's own error; its acks
  and rejections are committed with a later transaction, so the outbox drains
  once the disk has room again, and then shrinks (WAL checkpoint, TRUNCATE).
- A database that cannot be opened (damaged header, not a database) is moved
  aside as ``outbox.sqlite3.damaged-<time>`` (kept for forensics), what can still
  be read from it is copied into a fresh outbox, and the daemon starts. Each
  camera's ``seq`` mark is also kept in a separate high-water file
  (:mod:`edged.publish._highwater`), so a lost database never makes ``seq``
  numbers repeat.

All SQLite work runs on one dedicated thread, so a slow disk, an fsync or a WAL
checkpoint never stalls the event loop. Writes are group-committed: while one
transaction runs, new puts, acks and rejects accumulate and go into the next
one, so a backlog drains with a few large transactions rather than thousands of
small ones. ``synchronous="normal"`` (default) survives a crash or ``kill -9`` of
edged; ``"full"`` also survives a power cut, at the cost of one fsync per
transaction.

One process at a time: the outbox takes an exclusive lock file next to the
database, so a second daemon on the same ``state_dir`` fails with a clear error.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar

from edged.core.errors import ConfigError
from edged.publish import _outbox_store
from edged.publish._highwater import HighWater
from edged.publish._outbox_store import (
    DROP_DEAD_LETTER_MAX,
    DROP_MAX_AGE,
    DROP_MAX_BYTES,
    DROP_MAX_MESSAGES,
    DeadLetter,
    Done,
    NewMessage,
    OutboxError,
    OutboxMessage,
    Store,
    Writes,
)

__all__ = [
    "DROP_DEAD_LETTER_MAX",
    "DROP_MAX_AGE",
    "DROP_MAX_BYTES",
    "DROP_MAX_MESSAGES",
    "DeadLetter",
    "NewMessage",
    "Outbox",
    "OutboxError",
    "OutboxMessage",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

_CACHE_MAX = 4096
_DROP_LOG_INTERVAL_S = 60.0
_RETRY_S = 1.0
_DAMAGED = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


class Outbox:
    """A durable, ordered, capped message store (see the module docstring).

    Use from one event loop::

        outbox = await Outbox.open(state_dir / "outbox.sqlite3", max_messages=100_000)
        ids = await outbox.put_many([NewMessage("t", b"x")])  # on disk when this returns
        batch = await outbox.fetch(after_id=0)
        outbox.ack(batch[0].row_id)                          # deleted in the next commit
        await outbox.close()

    ``on_drop(count, reason)`` is called on the loop when the caps drop messages
    (``reason`` is ``"max_messages"`` or ``"max_age"``); ``on_change()`` after
    every transaction, e.g. to update depth gauges from :attr:`depth`.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_messages: int = 1_000_000,
        max_bytes: int | None = None,
        max_age_s: float = 7 * 24 * 3600.0,
        dead_letter_max: int = 10_000,
        synchronous: Literal["normal", "full"] = "normal",
        on_drop: Callable[[int, str], None] | None = None,
        on_change: Callable[[], None] | None = None,
        on_damaged: Callable[[str], None] | None = None,
    ) -> None:
        if max_messages < 1 or dead_letter_max < 0 or max_age_s <= 0:
            msg = (
                "outbox caps: expected max_messages >= 1, dead_letter_max >= 0, max_age_s > 0; "
                f"got {max_messages}, {dead_letter_max}, {max_age_s}"
            )
            raise ConfigError(msg)
        self.path = Path(path)
        self._highwater = HighWater(Path(f"{self.path}.highwater"))
        self._max_bytes = max_bytes
        self._on_damaged = on_damaged
        self._max_messages = max_messages
        self._max_age_s = max_age_s
        self._dead_letter_max = dead_letter_max
        self._synchronous = synchronous
        self._on_drop = on_drop
        self._on_change = on_change
        self._executor: ThreadPoolExecutor | None = None
        self._store: Store | None = None
        self._lock_fd: int | None = None
        self._pending = Writes()
        # Recently committed rows not yet acked: every row with id >= _cache_floor
        # that is still in the table is in _cache (in id order).
        self._cache: OrderedDict[int, OutboxMessage] = OrderedDict()
        self._cache_floor: int | None = None
        self._write_running = False
        self._idle: asyncio.Event | None = None
        self._new_rows: asyncio.Event | None = None
        self._age_task: asyncio.Task[None] | None = None
        # figures, updated after every transaction
        self.depth = 0
        self.dead_letter_depth = 0
        self.oldest_created_s: float | None = None
        self.last_id = 0
        self.dropped: dict[str, int] = {DROP_MAX_MESSAGES: 0, DROP_MAX_BYTES: 0, DROP_MAX_AGE: 0}
        self.dead_letters_expired = 0
        self.dead_lettered = 0
        self.write_error: str | None = None
        self.quarantined: Path | None = None
        self._shrink_when_empty = False
        self.marks: dict[str, int] = {}
        self._drops_unlogged = 0
        self._drop_reason = DROP_MAX_MESSAGES
        self._next_drop_log = 0.0

    @classmethod
    async def open(cls, path: Path, **options: Any) -> Outbox:
        outbox = cls(path, **options)
        await outbox.start()
        return outbox

    async def start(self) -> None:
        """Open (creating if needed) the database; rows left by a previous run stay."""
        if self._store is not None:
            return
        self._lock()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="edged-outbox")
        self._idle = asyncio.Event()
        self._idle.set()
        self._new_rows = asyncio.Event()
        try:
            self._store = await self._call(self._open_store)
            self._absorb(await self._call(self._store.apply, Writes()))
            db_marks = await self._call(self._store.marks)
            self.marks = await self._call(self._highwater.merge, db_marks)
        except BaseException:
            if self._store is not None:
                await self._call(self._store.close)
                self._store = None
            self._executor.shutdown(wait=False)
            self._executor = None
            self._unlock()
            raise
        if self.quarantined is not None and self._on_damaged is not None:
            self._on_damaged(str(self.quarantined))
        if self.depth:
            log.info(
                "outbox %s: %d message(s) from a previous run will be sent first",
                self.path,
                self.depth,
            )
        self._age_task = asyncio.create_task(self._age_loop(), name="edged-outbox-age")

    def _new_store(self) -> Store:
        return Store(
            self.path,
            self._synchronous,
            self._max_messages,
            self._max_age_s,
            self._dead_letter_max,
            self._max_bytes,
        )

    def _open_store(self) -> Store:
        """On the outbox thread: open the database; a damaged one is moved aside, what
        can be read from it is copied into a fresh one (see the module docstring)."""
        try:
            return self._new_store()  # reads every row id: finds most damage now
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorcode", None) not in _DAMAGED:
                raise  # locked, unreadable, disk I/O: not the file's content
            reason = f"{type(exc).__name__}: {exc}"
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        damaged = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{self.path}{suffix}")
            if part.exists():
                os.replace(part, Path(f"{damaged}{suffix}"))
        self.quarantined = damaged
        rows, marks = _salvage(damaged)
        store = self._new_store()
        if rows or marks:
            store.restore(rows, marks)
        log.error(
            "outbox %s is damaged (%s): moved aside as %s (kept for inspection); %d "
            "undelivered message(s) recovered from it into a fresh outbox",
            self.path,
            reason,
            damaged,
            len(rows),
        )
        return store

    async def close(self) -> None:
        """Commit pending acks, checkpoint and close. Undelivered rows stay on disk."""
        if self._store is None:
            return
        if self._age_task is not None:
            self._age_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._age_task
        await self.flush()
        self._log_drop(0, self._drop_reason, force=True)
        store, self._store = self._store, None
        try:
            await self._call(self._highwater.close, dict(self.marks))
        except OutboxError as exc:
            log.error("outbox: could not record the seq marks at close: %s", exc)
        await self._call(store.close)
        assert self._executor is not None
        self._executor.shutdown(wait=True)
        self._executor = None
        self._unlock()

    # ------------------------------------------------------------------ writes

    async def put(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> int:
        """Store one message; returns its row id once it is committed to disk."""
        return (await self.put_many([NewMessage(topic, payload, qos, retain)]))[0]

    async def put_many(
        self, messages: Sequence[NewMessage], *, marks: Mapping[str, int] | None = None
    ) -> list[int]:
        """Store messages in order, in one transaction; returns their row ids when committed.

        ``marks`` (name -> integer, e.g. a camera's last result seq) are saved in the
        same transaction and readable from :attr:`marks` after a restart.
        """
        self._check_open()
        if not messages and not marks:
            return []
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[list[int]] = loop.create_future()
        if marks:
            self._pending.marks.update(marks)
        self._pending.puts.extend(messages)
        self._pending.created.extend([time.time()] * len(messages))
        self._pending.waiters.append((fut, len(messages)))
        self._kick()
        return await fut

    def ack(self, row_id: int) -> None:
        """The broker acknowledged ``row_id``: delete it (in the next transaction)."""
        self._check_open()
        self._cache.pop(row_id, None)
        self._pending.acks.append(row_id)
        self._kick()

    def reject(self, row_id: int, reason_code: int, reason: str) -> None:
        """The broker refused ``row_id``: move it to the dead-letter table with the reason."""
        self._check_open()
        self._cache.pop(row_id, None)
        self._pending.rejects.append((row_id, reason_code, reason))
        self._kick()

    async def flush(self) -> None:
        """Wait until everything put, acked or rejected so far is committed — or, while
        the outbox cannot be written (:attr:`write_error`), until one more try failed."""
        assert self._idle is not None
        retried = False
        while self._pending or self._write_running:
            if not self._write_running:
                if self.write_error is not None:
                    if retried:
                        return
                    retried = True
                self._kick()
                if not self._write_running:
                    return  # closed meanwhile
            await self._idle.wait()

    # ------------------------------------------------------------------ reads

    async def fetch(self, *, after_id: int = 0, limit: int = 256) -> list[OutboxMessage]:
        """Committed rows with ``row_id > after_id``, oldest first (pending acks applied).

        A reader that keeps up is served from memory: the rows this process
        committed recently are kept (until acked) and returned without a query.
        """
        self._check_open()
        if self._cache_floor is not None and after_id + 1 >= self._cache_floor:
            out = []
            for row_id, msg in self._cache.items():
                if row_id > after_id:
                    out.append(msg)
                    if len(out) >= limit:
                        break
            return out
        await self.flush()
        assert self._store is not None
        return await self._call(self._store.fetch, after_id, limit)

    async def wait_for_rows(self, after_id: int) -> None:
        """Return once a row with ``row_id > after_id`` has been committed."""
        assert self._new_rows is not None
        while self.last_id <= after_id:
            self._new_rows.clear()
            await self._new_rows.wait()

    async def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        """The oldest dead letters (messages the broker refused)."""
        self._check_open()
        await self.flush()
        assert self._store is not None
        return await self._call(self._store.dead_letters, limit)

    @property
    def closed(self) -> bool:
        return self._store is None

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    # ------------------------------------------------------------------ internals

    def _check_open(self) -> None:
        if self._store is None:
            msg = f"outbox {str(self.path)!r}: expected an open outbox, got a closed one"
            raise OutboxError(msg)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except (sqlite3.Error, OSError) as exc:
            msg = f"outbox {str(self.path)!r}: {type(exc).__name__}: {exc}"
            raise OutboxError(msg) from exc

    def _kick(self) -> None:
        """Start a transaction with the pending work unless one is running (group commit)."""
        if self._write_running or not self._pending or self._store is None:
            return
        writes, self._pending = self._pending, Writes()
        self._write_running = True
        assert self._idle is not None
        self._idle.clear()
        task = asyncio.get_running_loop().create_task(
            self._write(writes), name="edged-outbox-commit"
        )
        task.add_done_callback(_consume)

    def _apply(self, writes: Writes) -> Done:
        """On the outbox thread: reserve seq high-water marks, then the transaction."""
        assert self._store is not None
        if writes.marks:
            self._highwater.reserve(writes.marks)
        return self._store.apply(writes)

    async def _write(self, writes: Writes) -> None:
        assert self._store is not None
        try:
            done = await self._call(self._apply, writes)
        except BaseException as exc:
            for fut, _ in writes.waiters:
                if not fut.done():
                    fut.set_exception(exc)
            if isinstance(exc, OutboxError):
                if self.write_error is None:
                    log.error("outbox: cannot write: %s", exc)
                self.write_error = str(exc)
            if (writes.acks or writes.rejects) and self._store is not None:
                # Committed with a later transaction, once the disk takes it again.
                self._pending.retry_later(writes)
                asyncio.get_running_loop().call_later(_RETRY_S, self._kick)
        else:
            if self.write_error is not None:
                log.warning("outbox: writable again (was: %s)", self.write_error)
                self.write_error = None
                self._shrink_when_empty = True
            self.marks.update(writes.marks)
            self._remember(writes, done)
            pos = 0
            for fut, n in writes.waiters:
                if not fut.done():
                    fut.set_result(done.ids[pos : pos + n])
                pos += n
            self._absorb(done)
        finally:
            self._write_running = False
            assert self._idle is not None
            if self._pending and self.write_error is None:
                self._kick()
            if not self._write_running:
                self._idle.set()
            if self._shrink_when_empty and self.depth == 0 and self._store is not None:
                self._shrink_when_empty = False
                task = asyncio.get_running_loop().create_task(
                    self._shrink(), name="edged-outbox-shrink"
                )
                task.add_done_callback(_consume)

    async def _shrink(self) -> None:
        """After a disk-full episode, once drained: give the WAL's space back."""
        if self._store is None:
            return
        try:
            await self._call(self._store.checkpoint)
        except OutboxError as exc:
            log.warning("outbox: WAL checkpoint after recovery failed: %s", exc)
        else:
            log.info("outbox: drained after the write failures; WAL truncated")

    def _remember(self, writes: Writes, done: Done) -> None:
        """Keep the rows just committed for :meth:`fetch` (see ``_cache``)."""
        if done.dropped:
            return  # the caps deleted rows, maybe some of these: _absorb clears the cache
        for row_id, m, created_s in zip(done.ids, writes.puts, writes.created, strict=True):
            if self._cache_floor is None:
                self._cache_floor = row_id
            self._cache[row_id] = OutboxMessage(
                row_id, m.topic, m.payload, m.qos, m.retain, created_s
            )
        while len(self._cache) > _CACHE_MAX:
            row_id, _ = self._cache.popitem(last=False)
            self._cache_floor = row_id + 1

    def _absorb(self, done: Done) -> None:
        if done.dropped:
            self._cache.clear()  # the caps deleted rows it may hold; the table decides
            self._cache_floor = None
        if done.last_id > self.last_id:
            self.last_id = done.last_id
            assert self._new_rows is not None
            self._new_rows.set()
        self.depth = done.depth
        self.dead_letter_depth = done.dead_depth
        self.oldest_created_s = done.oldest_created_s
        self.dead_lettered += done.rejected
        for reason, n in done.dropped.items():
            if reason == DROP_DEAD_LETTER_MAX:
                self.dead_letters_expired += n
            else:
                self.dropped[reason] += n
                self._log_drop(n, reason)
            if self._on_drop is not None:
                self._on_drop(n, reason)
        if self._on_change is not None:
            self._on_change()

    def _log_drop(self, n: int, reason: str, *, force: bool = False) -> None:
        """One warning per minute at most, with the count since the last one (what is
        left unlogged is logged by the age loop once the minute is over, and at close)."""
        self._drops_unlogged += n
        self._drop_reason = reason if n else self._drop_reason
        if not self._drops_unlogged:
            return
        now = time.monotonic()
        if now < self._next_drop_log and not force:
            return
        reason = self._drop_reason
        self._next_drop_log = now + _DROP_LOG_INTERVAL_S
        log.warning(
            "outbox full: dropped the %d oldest undelivered message(s) (%s; caps "
            "max_messages=%d, max_bytes=%s, max_age_s=%g; %d dropped since start)",
            self._drops_unlogged,
            reason,
            self._max_messages,
            self._max_bytes,
            self._max_age_s,
            self.dropped_total,
        )
        self._drops_unlogged = 0

    async def _age_loop(self) -> None:
        """Apply the age cap even when nothing is being written."""
        while True:
            await asyncio.sleep(_outbox_store.AGE_CHECK_INTERVAL_S * 5)
            self._log_drop(0, self._drop_reason)
            if not self._write_running and self._store is not None:
                try:
                    self._absorb(await self._call(self._store.apply, Writes()))
                except OutboxError as exc:
                    log.error("outbox: age check failed: %s", exc)

    def _lock(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            msg = (
                f"state_dir: expected a writable directory for the outbox, "
                f"got {str(self.path.parent)!r} ({exc.strerror})"
            )
            raise ConfigError(msg) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            msg = (
                f"outbox {str(self.path)!r}: expected to be its only user, got it locked "
                "by another process (is another edged running on this state_dir?)"
            )
            raise ConfigError(msg) from exc
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _salvage(path: Path) -> tuple[list[OutboxMessage], dict[str, int]]:
    """Whatever rows and marks can still be read from a damaged outbox, read-only."""
    rows: list[OutboxMessage] = []
    marks: dict[str, int] = {}
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return rows, marks
    try:
        with contextlib.suppress(sqlite3.Error):
            for key, value in conn.execute("SELECT key, value FROM marks"):
                marks[str(key)] = int(value)
        with contextlib.suppress(sqlite3.Error):
            cursor = conn.execute(
                "SELECT id, topic, payload, qos, retain, created_s FROM outbox ORDER BY id"
            )
            for r in cursor:
                rows.append(
                    OutboxMessage(int(r[0]), str(r[1]), bytes(r[2]), r[3], bool(r[4]), r[5])
                )
    finally:
        conn.close()
    return rows, marks


def _consume(task: asyncio.Task[Any]) -> None:
    """Retrieve a commit task's exception (already handed to the waiters and logged)."""
    if not task.cancelled():
        task.exception()
