"""Issue 20, item 4: a full disk that heals, a damaged outbox that does not stop the
line, seq numbers that never repeat, and caps that count what they drop.

The disk-full tests mount a real 4 MiB tmpfs as ``state_dir`` (root only; skipped
where mount is not allowed) and fill it with a file: SQLite meets a real ENOSPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _broker import Broker, broker_fixture  # noqa: F401
from _mqtt_helpers import Collector, make_result, make_settings

from edged.publish import Publisher
from edged.publish.outbox import NewMessage, Outbox
from edged.runtime.metrics import Metrics


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(disk: Path) -> Path:
    """Take every free byte of ``disk`` with one file; returns it (delete to heal)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for size in (65536, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


async def _until(condition: Callable[[], bool], timeout_s: float) -> None:
    """Poll ``condition`` (file sizes, counters: nothing to await) until true."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 -- polling state that has no event
            await asyncio.sleep(0.05)


def _metric(metrics: Metrics, name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.registry.get_sample_value(name, labels or {}) or 0.0


async def test_full_disk_publishes_live_goes_not_ready_and_heals(
    small_disk: Path, tmp_path: Path, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, broker)
    settings = settings.model_copy(update={"state_dir": small_disk})
    metrics = Metrics()
    readiness: list[bool] = []
    pub = Publisher(settings, metrics, on_durable=readiness.append)
    col = Collector(broker, [pub.topics.result("cam1")]).start()
    await pub.start()
    await pub.wait_connected()
    seq = 0
    try:
        for _ in range(5):
            await pub.publish_result(make_result(seq))
            seq += 1
        filler = _fill(small_disk)
        with caplog.at_level(logging.WARNING):
            for _ in range(400):  # until SQLite needs a page the disk does not have
                await pub.publish_result(make_result(seq, verdict="fail"))
                seq += 1
                if not pub.durable:
                    break
            assert not pub.durable
            for _ in range(5):  # the line goes on: live, counted as not durable
                await pub.publish_result(make_result(seq, verdict="fail"))
                seq += 1
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert readiness == [False]
        assert _metric(metrics, "edged_outbox_writable") == 0
        live = _metric(metrics, "edged_results_not_durable_total", {"outcome": "published_live"})
        assert live >= 6
        await asyncio.to_thread(
            col.wait_for, lambda ms: {m.json()["seq"] for m in ms} >= set(range(seq)), 10
        )
        filler.unlink()  # space returns
        await pub.publish_result(make_result(seq))
        seq += 1
        assert pub.durable
        assert readiness == [False, True]
        await _until(lambda: pub.outbox.depth == 0, 10)
        wal = Path(f"{pub.outbox.path}-wal")
        await _until(lambda: not wal.exists() or wal.stat().st_size == 0, 5)
    finally:
        await pub.stop(grace_s=2)
        col.stop()
    assert any("database or disk is full" in e for e in errors), errors
    assert not any("cannot rollback" in e for e in errors), errors
    assert {m.json()["seq"] for m in col.messages} == set(range(seq))


async def test_acks_that_could_not_be_committed_drain_once_space_returns(
    small_disk: Path,
) -> None:
    """The broker acknowledged rows while the disk was full: the deletes are kept and
    committed later, so the outbox empties without a reconnect or a restart."""
    box = await Outbox.open(small_disk / "o.sqlite3")
    try:
        ids = await box.put_many([NewMessage("t", os.urandom(2000)) for _ in range(200)])
        filler = _fill(small_disk)
        for i in ids:
            box.ack(i)
        await box.flush()
        blocked = box.write_error is not None
        depth_full = box.depth
        filler.unlink()
        await _until(lambda: box.depth == 0, 10)
    finally:
        await box.close()
    assert blocked  # the deletes met the full disk
    assert depth_full == 200
    async with asyncio.timeout(1):
        reopened = await Outbox.open(small_disk / "o.sqlite3")
    assert reopened.depth == 0
    await reopened.close()


async def test_damaged_outbox_is_moved_aside_and_start_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    box = await Outbox.open(path)
    await box.put_many([NewMessage("t", b"x")], marks={"seq/cam1": 41})
    await box.close()
    data = path.read_bytes()  # a damaged header: not a database any more
    path.write_bytes(b"garbage!" * 8 + data[64:])
    damaged: list[str] = []
    box = await Outbox.open(path, on_damaged=damaged.append)
    try:
        assert box.depth == 0
        assert box.marks == {"seq/cam1": 41}  # from the high-water file: seq never repeats
        await box.put_many([NewMessage("t", b"after")], marks={"seq/cam1": 42})
    finally:
        await box.close()
    [moved] = damaged
    kept = box.quarantined
    assert kept is not None
    assert str(kept) == moved
    assert kept.name.startswith("o.sqlite3.damaged-")
    assert kept.read_bytes()[:8] == b"garbage!"  # kept as it was, for forensics


async def test_readable_rows_of_a_damaged_outbox_are_recovered(tmp_path: Path) -> None:
    """A damaged page in the middle of the table: the rows before it are recovered
    into a fresh outbox, in order; the damaged file is kept."""
    path = tmp_path / "o.sqlite3"
    box = await Outbox.open(path)
    await box.put_many([NewMessage(f"t/{i}", bytes([i % 251]) * 1500) for i in range(300)])
    await box.close()
    data = bytearray(path.read_bytes())
    page = 4096
    victim = (len(data) // page) * 3 // 4  # a leaf page three quarters in
    data[victim * page : (victim + 1) * page] = b"\xa5" * page
    path.write_bytes(bytes(data))
    box = await Outbox.open(path)
    try:
        rows = await box.fetch(limit=1000)
    finally:
        await box.close()
    assert box.quarantined is not None
    assert box.quarantined.read_bytes() == bytes(data)
    assert 100 < len(rows) < 300
    assert [r.topic for r in rows] == [f"t/{i}" for i in range(len(rows))]
    assert all(r.payload == bytes([i % 251]) * 1500 for i, r in enumerate(rows))


async def test_zero_length_outbox_does_not_reset_seq(tmp_path: Path) -> None:
    """The issue's case: the outbox truncated to 0 bytes after a crash opens as an
    empty database; without the high-water file seq restarted at 0."""
    path = tmp_path / "o.sqlite3"
    box = await Outbox.open(path)
    await box.put_many([NewMessage("t", b"x")], marks={"seq/cam1": 195})
    # a crash: no close (the high-water file is not marked clean)
    assert box._store is not None
    box._store.conn.close()
    box._unlock()
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        part.unlink(missing_ok=True)
    path.write_bytes(b"")
    box2 = await Outbox.open(path)
    try:
        assert box2.marks["seq/cam1"] >= 195
    finally:
        await box2.close()


async def test_clean_restart_continues_seq_exactly(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    box = await Outbox.open(path)
    await box.put_many([NewMessage("t", b"x")], marks={"seq/cam1": 7})
    await box.close()
    box = await Outbox.open(path)
    try:
        assert box.marks == {"seq/cam1": 7}
    finally:
        await box.close()


async def test_byte_cap_drops_whole_results_and_counts(tmp_path: Path) -> None:
    drops: list[tuple[int, str]] = []
    box = await Outbox.open(
        tmp_path / "o.sqlite3",
        max_bytes=10_000,
        on_drop=lambda n, why: drops.append((n, why)),
    )
    try:
        for i in range(20):  # a Result = verdict (100 B) + result (900 B) + topics
            await box.put_many([NewMessage(f"v/{i}", b"v" * 100), NewMessage(f"r/{i}", b"r" * 900)])
        rows = await box.fetch(limit=100)
    finally:
        await box.close()
    topics = [r.topic for r in rows]
    assert sum(len(r.payload) + len(r.topic) for r in rows) <= 10_000
    assert topics[0].startswith("v/")  # never a result without its verdict
    assert topics == [f"{k}/{i}" for i in range(20 - len(topics) // 2, 20) for k in ("v", "r")]
    assert box.dropped["max_bytes"] == 40 - len(topics)
    assert sum(n for n, _ in drops) == 40 - len(topics)


async def test_odd_count_cap_never_separates_a_verdict_from_its_result(tmp_path: Path) -> None:
    box = await Outbox.open(tmp_path / "o.sqlite3", max_messages=5)
    try:
        for i in range(6):
            await box.put_many([NewMessage(f"v/{i}", b"v"), NewMessage(f"r/{i}", b"r")])
        rows = await box.fetch(limit=100)
    finally:
        await box.close()
    assert [r.topic for r in rows] == ["v/4", "r/4", "v/5", "r/5"]


async def test_dead_letters_beyond_their_cap_are_counted(tmp_path: Path) -> None:
    drops: list[tuple[int, str]] = []
    box = await Outbox.open(
        tmp_path / "o.sqlite3", dead_letter_max=2, on_drop=lambda n, why: drops.append((n, why))
    )
    try:
        ids = await box.put_many([NewMessage("t", b"x") for _ in range(5)])
        for i in ids:
            box.reject(i, 135, "Not authorized")
        await box.flush()
        letters = await box.dead_letters()
    finally:
        await box.close()
    assert [d.row_id for d in letters] == ids[-2:]
    assert box.dead_letters_expired == 3
    assert sum(n for n, why in drops if why == "dead_letter_max") == 3


async def test_low_space_alarm_before_the_disk_is_full(
    tmp_path: Path, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    free = shutil.disk_usage(tmp_path).free
    settings = make_settings(tmp_path, broker, state_dir_min_free_bytes=free * 2)
    metrics = Metrics()
    pub = Publisher(settings, metrics)
    with caplog.at_level(logging.WARNING):
        await pub.start()
        await asyncio.sleep(0.2)
        await pub.stop(grace_s=1)
    assert pub.low_space
    assert _metric(metrics, "edged_state_dir_low_space") == 1
    assert 0 < _metric(metrics, "edged_state_dir_free_bytes") <= free * 1.5
    assert any("below mqtt.state_dir_min_free_bytes" in r.getMessage() for r in caplog.records)
