"""The durable outbox: order, acks, restarts, kill -9, caps, dead letters, locking."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from edged.core.errors import ConfigError
from edged.publish import _outbox_store as outbox_store
from edged.publish import outbox as outbox_mod
from edged.publish.outbox import NewMessage, Outbox

ROOT = Path(__file__).resolve().parent.parent


def _msgs(n: int, start: int = 0) -> list[NewMessage]:
    return [
        NewMessage(f"t/{i % 3}", f"payload-{i}".encode(), 1, i % 2 == 0)
        for i in range(start, start + n)
    ]


async def test_put_fetch_keeps_order_and_content(tmp_path: Path) -> None:
    box = await Outbox.open(tmp_path / "o.sqlite3")
    try:
        ids = await box.put_many(_msgs(5))
        ids.append(await box.put("other", b"\x00\xffbinary", qos=0, retain=True))
        rows = await box.fetch()
    finally:
        await box.close()
    assert ids == sorted(ids)
    assert len(set(ids)) == 6
    assert [r.row_id for r in rows] == ids
    assert [(r.topic, r.payload, r.qos, r.retain) for r in rows] == [
        ("t/0", b"payload-0", 1, True),
        ("t/1", b"payload-1", 1, False),
        ("t/2", b"payload-2", 1, True),
        ("t/0", b"payload-3", 1, False),
        ("t/1", b"payload-4", 1, True),
        ("other", b"\x00\xffbinary", 0, True),
    ]
    assert box.depth == 6


async def test_fetch_after_cursor_and_limit(tmp_path: Path) -> None:
    box = await Outbox.open(tmp_path / "o.sqlite3")
    try:
        ids = await box.put_many(_msgs(10))
        page = await box.fetch(after_id=ids[3], limit=4)
    finally:
        await box.close()
    assert [r.row_id for r in page] == ids[4:8]


async def test_ack_deletes_and_depth_follows(tmp_path: Path) -> None:
    box = await Outbox.open(tmp_path / "o.sqlite3")
    try:
        ids = await box.put_many(_msgs(4))
        box.ack(ids[0])
        box.ack(ids[2])
        box.ack(12345)  # unknown ids are harmless
        rows = await box.fetch()
        await box.flush()
        depth = box.depth
    finally:
        await box.close()
    assert [r.row_id for r in rows] == [ids[1], ids[3]]
    assert depth == 2


async def test_memory_and_table_agree(tmp_path: Path) -> None:
    """A caught-up reader is served from memory; a restarted one from the table: the
    same rows either way."""
    path = tmp_path / "o.sqlite3"
    box = await Outbox.open(path)
    ids = await box.put_many(_msgs(10))
    for i in (0, 4, 9):
        box.ack(ids[i])
    box.reject(ids[5], 135, "Not authorized")
    from_memory = await box.fetch(after_id=ids[1], limit=4)
    everything = await box.fetch()
    await box.close()
    box = await Outbox.open(path)
    from_table = await box.fetch()
    await box.close()
    assert [r.row_id for r in from_memory] == [ids[2], ids[3], ids[6], ids[7]]
    assert everything == from_table
    assert [r.payload for r in from_table] == [f"payload-{i}".encode() for i in (1, 2, 3, 6, 7, 8)]


async def test_rows_survive_close_and_ids_never_repeat(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    box = await Outbox.open(path)
    ids = await box.put_many(_msgs(3))
    box.ack(ids[2])
    await box.close()

    box = await Outbox.open(path)
    rows = await box.fetch()
    assert [r.payload for r in rows] == [b"payload-0", b"payload-1"]
    assert box.depth == 2
    for r in rows:
        box.ack(r.row_id)
    await box.flush()
    assert box.depth == 0
    await box.close()

    box = await Outbox.open(path)
    new_id = await box.put("t", b"x")
    await box.close()
    assert new_id == ids[-1] + 1  # AUTOINCREMENT: a deleted id is never reused


_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from edged.publish.outbox import Outbox

    async def main():
        box = await Outbox.open(Path(sys.argv[1]))
        i = 0
        while True:
            row = await box.put("t", f"m{i}".encode() * 50)
            print(row, i, flush=True)
            i += 1

    asyncio.run(main())
    """
)


async def test_committed_rows_survive_kill_9(tmp_path: Path) -> None:
    """A writer process killed with SIGKILL mid-stream: every put that had returned
    (printed) is in the outbox afterwards, in order, with its payload."""
    path = tmp_path / "o.sqlite3"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, str(path), stdout=asyncio.subprocess.PIPE, cwd=ROOT
    )
    assert proc.stdout is not None
    lines: list[bytes] = []
    try:
        while len(lines) < 300:
            line = await proc.stdout.readline()
            assert line, f"child exited with {proc.returncode}"
            lines.append(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        lines += (await proc.stdout.read()).splitlines()
    printed = [(int(a), int(b)) for a, b in (ln.split() for ln in lines)]
    box = await Outbox.open(path)
    try:
        rows = await box.fetch(limit=100_000)
    finally:
        await box.close()
    by_id = {r.row_id: r.payload for r in rows}
    for row, i in printed:
        assert by_id[row] == f"m{i}".encode() * 50
    assert [r.row_id for r in rows][: len(printed)] == [row for row, _ in printed]


async def test_count_cap_drops_oldest_counts_and_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    drops: list[tuple[int, str]] = []
    box = await Outbox.open(
        tmp_path / "o.sqlite3", max_messages=5, on_drop=lambda n, why: drops.append((n, why))
    )
    try:
        with caplog.at_level(logging.WARNING, logger="edged.publish.outbox"):
            for m in _msgs(8):
                await box.put(m.topic, m.payload)
            rows = await box.fetch()
            await box.close()
    finally:
        await box.close()
    assert [r.payload for r in rows] == [f"payload-{i}".encode() for i in range(3, 8)]
    assert box.dropped == {"max_messages": 3, "max_bytes": 0, "max_age": 0}
    assert sum(n for n, _ in drops) == 3
    assert {why for _, why in drops} == {"max_messages"}
    warnings = [r.getMessage() for r in caplog.records if "outbox full" in r.getMessage()]
    # rate-limited: the first drop at once, the rest in one line (at the latest at
    # close) with the true count — issue 20: the count must add up
    assert len(warnings) == 2
    assert "dropped the 1 oldest" in warnings[0]
    assert "dropped the 2 oldest" in warnings[1]
    assert "3 dropped since start" in warnings[1]


async def test_age_cap_drops_expired_oldest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox_store, "AGE_CHECK_INTERVAL_S", 0.05)
    drops: list[tuple[int, str]] = []
    box = await Outbox.open(
        tmp_path / "o.sqlite3", max_age_s=0.3, on_drop=lambda n, why: drops.append((n, why))
    )
    try:
        await box.put_many(_msgs(3))
        await asyncio.sleep(0.4)
        await box.put("fresh", b"new")
        rows = await box.fetch()
    finally:
        await box.close()
    assert [r.topic for r in rows] == ["fresh"]
    assert drops == [(3, "max_age")]
    assert box.dropped["max_age"] == 3


async def test_reject_moves_row_to_dead_letter_with_reason(tmp_path: Path) -> None:
    box = await Outbox.open(tmp_path / "o.sqlite3", dead_letter_max=2)
    try:
        ids = await box.put_many(_msgs(4))
        box.reject(ids[1], 135, "Not authorized")
        box.reject(ids[2], 151, "Quota exceeded")
        box.reject(ids[3], 144, "Topic Name invalid")
        rows = await box.fetch()
        dead = await box.dead_letters()
    finally:
        await box.close()
    assert [r.row_id for r in rows] == [ids[0]]
    # capped at 2: the oldest dead letter is pruned
    assert [(d.row_id, d.reason_code, d.reason, d.payload) for d in dead] == [
        (ids[2], 151, "Quota exceeded", b"payload-2"),
        (ids[3], 144, "Topic Name invalid", b"payload-3"),
    ]
    assert dead[0].failed_s >= dead[0].created_s
    assert box.dead_lettered == 3
    assert box.dead_letter_depth == 2
    assert box.depth == 1


async def test_group_commit_batches_concurrent_puts(tmp_path: Path) -> None:
    commits = 0

    def counted() -> None:
        nonlocal commits
        commits += 1

    box = await Outbox.open(tmp_path / "o.sqlite3", on_change=counted)
    commits = 0
    try:
        ids = await asyncio.gather(*(box.put("t", str(i).encode()) for i in range(500)))
        rows = await box.fetch(limit=1000)
    finally:
        await box.close()
    assert ids == sorted(ids)  # call order is row order
    assert [r.payload for r in rows] == [str(i).encode() for i in range(500)]
    assert commits < 50  # hundreds of puts, a handful of transactions


async def test_second_process_on_same_outbox_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    box = await Outbox.open(path)
    try:
        with pytest.raises(ConfigError, match="locked by another process"):
            await Outbox.open(path)
    finally:
        await box.close()
    again = await Outbox.open(path)  # released on close
    await again.close()


async def test_unwritable_state_dir_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match="state_dir: expected a writable directory"):
        await Outbox.open(blocker / "sub" / "o.sqlite3")


async def test_wal_mode_and_use_after_close(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "o.sqlite3"
    box = await Outbox.open(path, synchronous="full")
    await box.put("t", b"x")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    await box.close()
    with pytest.raises(outbox_mod.OutboxError, match="expected an open outbox"):
        await box.put("t", b"y")
