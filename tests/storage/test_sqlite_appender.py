"""The plain-sqlite3 appender behind `Store.append_many` on a SQLite file: same rows,
same stored representation, same errors as the SQLAlchemy path, and a write lock held
by another connection is waited out in a thread, never on the event loop."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pycrdt
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from syncd.bus import LocalBus
from syncd.storage import NoteNotFound, StorageError, StorageUnavailable, Store, open_store
from syncd.storage._sqlite_appender import (
    _COPIED,
    _COPYING,
    _IDLE,
    CHECKPOINT_PAGES,
    COPY_ROUNDS,
    FINISH_PAGES,
    MULTI_ROW_MAX,
    OTHERS_AUTOCHECKPOINT,
    _now_text,
    created_at,
    sqlite_file,
)
from syncd.storage.schema import doc_updates


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "syncd.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{db_path}", connect_timeout=5.0) as opened:
        for note_id in ("a", "b"):
            await opened.create_note(note_id=note_id, title="t", created_by="u")
        yield opened


def _raw(path: Path, query: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def _text_update(text: str) -> bytes:
    doc = pycrdt.Doc()
    doc["t"] = ytext = pycrdt.Text()
    ytext += text
    return doc.get_update()


async def test_only_a_sqlite_file_gets_the_appender(store: Store) -> None:
    assert store._appender is not None
    for url in ("sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:"):
        engine = create_async_engine(url)
        try:
            assert sqlite_file(engine) is None
            assert Store(engine)._appender is None
        finally:
            await engine.dispose()


async def test_postgres_keeps_the_sqlalchemy_path(postgres_url: str) -> None:
    async with open_store(postgres_url) as opened:
        assert opened._appender is None


async def test_appended_rows_read_back_in_order_and_compact(store: Store) -> None:
    a1, a2, a3, b1 = (_text_update(text) for text in ("one", "two", "three", "bee"))
    await store.append_many([("a", [a1, a2]), ("b", [b1])])
    await store.append_many([("a", [a3])])
    rows = await store.read_updates("a")
    assert [data for _, data in rows] == [a1, a2, a3]
    assert [seq for seq, _ in rows] == sorted(seq for seq, _ in rows)
    assert [data for _, data in await store.read_updates("b")] == [b1]

    assert await store.compact_doc("a") == 3
    assert await store.read_updates("a") == []
    snapshot = await store.load_snapshot("a")
    assert snapshot is not None
    assert pycrdt.get_state(snapshot.state) == pycrdt.get_state(pycrdt.merge_updates(a1, a2, a3))
    # seq keeps growing after compaction emptied the log (AUTOINCREMENT)
    await store.append_many([("a", [a1])])
    assert (await store.read_updates("a"))[0][0] > rows[-1][0]
    assert [data for _, data in await store.read_updates("b")] == [b1]


@pytest.mark.parametrize(
    "value",
    [
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),  # no microseconds: isoformat drops them
        datetime(2024, 6, 30, 23, 59, 59, 123456, tzinfo=timezone(timedelta(hours=2))),
    ],
)
async def test_created_at_is_stored_as_sqlalchemy_stores_it(
    store: Store, db_path: Path, value: datetime
) -> None:
    async with store._write() as conn:
        await conn.execute(
            sa.insert(doc_updates), {"doc_id": "a", "data": b"sa", "created_at": value}
        )
    [(text, kind)] = _raw(db_path, "SELECT created_at, typeof(created_at) FROM doc_updates")
    assert (created_at(value), "text") == (text, kind)


async def test_created_at_round_trips_like_a_sqlalchemy_row(store: Store, db_path: Path) -> None:
    before = datetime.now(UTC)
    await store.append_many([("a", [b"fast"])])
    async with store._read() as conn:
        written = await conn.scalar(sa.select(doc_updates.c.created_at))
    assert written is not None and written.tzinfo is UTC
    assert before - timedelta(seconds=1) <= written <= datetime.now(UTC)
    async with store._write() as conn:  # the same value, written by SQLAlchemy
        await conn.execute(
            sa.insert(doc_updates), {"doc_id": "b", "data": b"sa", "created_at": written}
        )
    rows = _raw(db_path, "SELECT created_at, typeof(created_at) FROM doc_updates ORDER BY seq")
    assert rows[0] == rows[1]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", str(rows[0][0]))


async def test_an_unknown_note_raises_note_not_found_and_writes_nothing(
    store: Store, db_path: Path
) -> None:
    with pytest.raises(NoteNotFound):
        await store.append_many([("a", [b"a1"]), ("gone", [b"x"]), ("b", [b"b1"])])
    assert _raw(db_path, "SELECT count(*) FROM doc_updates") == [(0,)]
    await store.append_many([("a", [b"a2"])])  # the connection is usable afterwards
    assert [data for _, data in await store.read_updates("a")] == [b"a2"]


async def test_a_held_write_lock_is_waited_out_off_the_loop(store: Store, db_path: Path) -> None:
    await store.append_many([("a", [b"a0"])])  # the inline connection exists
    holder = _hold_write_lock(db_path)
    try:
        async with asyncio.timeout(10):
            append = asyncio.create_task(store.append_many([("a", [b"a1"]), ("b", [b"b1"])]))
            later = asyncio.create_task(store.append_many([("a", [b"a2"])]))
            started = time.monotonic()
            for _ in range(20):  # the loop keeps running while both wait for the lock
                await asyncio.sleep(0.01)
            # busy_timeout is 5 s: had the loop waited in SQLite, this took that long
            assert time.monotonic() - started < 2
            assert not append.done() and not later.done()
            threading.Timer(0.05, holder.commit).start()
            await asyncio.gather(append, later)
    finally:
        holder.close()
    assert [data for _, data in await store.read_updates("a")] == [b"a0", b"a1", b"a2"]
    assert [data for _, data in await store.read_updates("b")] == [b"b1"]
    await store.append_many([("b", [b"b2"])])  # back on the inline path
    assert store._appender is not None and store._appender._queued == 0


async def test_a_lock_held_past_the_timeout_is_storage_unavailable(db_path: Path) -> None:
    async with open_store(f"sqlite:///{db_path}", connect_timeout=0.3) as store:
        await store.create_note(note_id="a", title="t", created_by="u")
        holder = _hold_write_lock(db_path)
        try:
            ticks = 0
            async with asyncio.timeout(10):
                append = asyncio.create_task(store.append_many([("a", [b"a1"])]))
                while not append.done():
                    await asyncio.sleep(0.01)
                    ticks += 1
                with pytest.raises(StorageUnavailable, match="locked"):
                    await append
        finally:
            holder.close()
        assert ticks >= 5  # ~0.3 s of busy waiting happened off the loop
        await store.append_many([("a", [b"a2"])])
        assert [data for _, data in await store.read_updates("a")] == [b"a2"]


async def test_inline_commits_get_the_wal_checkpointed_and_restarted(
    store: Store, db_path: Path
) -> None:
    appender = store._appender
    assert appender is not None
    appended = 0
    while appender._checkpoint_stage == _IDLE:  # inline commits until the worker copies
        await store.append_many([("a", [b"x" * 200]), ("b", [b"y" * 200])])
        appended += 1
        assert appended <= CHECKPOINT_PAGES
    assert appender._queued == 0  # the checkpoint holds no append back
    await store.append_many([("a", [b"during"])])  # inline while the worker copies
    appended += 1
    assert appender._worker is not None
    async with asyncio.timeout(10):  # one worker thread, FIFO: this runs after the copy
        await asyncio.wrap_future(appender._worker.submit(lambda: None))
        for _ in range(1000):  # the done callback reaches the loop via call_soon_threadsafe
            if appender._checkpoint_stage == _COPIED:
                break
            await asyncio.sleep(0.001)
    assert appender._checkpoint_stage == _COPIED
    await store.append_many([("a", [b"finish"])])  # copies the frames written meanwhile
    await store.append_many([("a", [b"z"])])  # finds the WAL copied: starts it over
    # SQLite's own autocheckpoint is off on the inline connection: without ours the WAL
    # would still hold every frame of the loop above (thousands).
    [(busy, log_frames, _)] = _raw(db_path, "PRAGMA wal_checkpoint(PASSIVE)")
    assert (busy, log_frames < 10) == (0, True)
    assert len(await store.read_updates("a")) == appended + 2


async def _until_copied(appender: Any) -> None:
    assert appender._worker is not None
    async with asyncio.timeout(10):  # one worker thread, FIFO: this runs after the copy
        await asyncio.wrap_future(appender._worker.submit(lambda: None))
        for _ in range(1000):  # the done callback reaches the loop via call_soon_threadsafe
            if appender._checkpoint_stage == _COPIED:
                return
            await asyncio.sleep(0.001)
    raise AssertionError("the worker's checkpoint did not finish")


async def test_many_frames_written_during_the_copy_are_copied_by_the_worker_not_inline(
    store: Store, db_path: Path
) -> None:
    """The inline finish copies only a few pages in a loop turn: when the worker's copy was
    slow (a loaded machine) and the loop wrote many pages meanwhile, the worker copies
    them first, and the finish after that round restarts the WAL."""
    appender = store._appender
    assert appender is not None
    release = threading.Event()
    appender._executor().submit(release.wait, 10)  # the worker's copy waits behind this
    appended = 0
    while appender._checkpoint_stage == _IDLE:
        await store.append_many([("a", [b"x" * 200]), ("b", [b"y" * 200])])
        appended += 1
        assert appended <= CHECKPOINT_PAGES
    for _ in range(FINISH_PAGES):  # inline, while the copy has not even started
        await store.append_many([("a", [b"during" * 100]), ("b", [b"too"])])
        appended += 1
    release.set()
    await _until_copied(appender)
    await store.append_many([("a", [b"next"])])
    appended += 1
    assert appender._checkpoint_stage == _COPYING  # back to the worker, not inline
    await _until_copied(appender)
    await store.append_many([("a", [b"finish"])])  # a few pages: finished inline
    assert appender._checkpoint_stage == _IDLE
    await store.append_many([("a", [b"z"])])  # finds the WAL copied: starts it over
    [(busy, log_frames, _)] = _raw(db_path, "PRAGMA wal_checkpoint(PASSIVE)")
    assert (busy, log_frames < 10) == (0, True)
    assert len(await store.read_updates("a")) == appended + 2


async def test_the_finish_comes_after_a_few_rounds_however_many_pages_each_round_saw(
    store: Store, db_path: Path
) -> None:
    """With many busy rooms each commit writes ~a page per room, so the frames written
    during a round never fell under FINISH_PAGES: the worker copied round after round and
    the WAL never restarted. After COPY_ROUNDS rounds the finish is queued regardless."""
    appender = store._appender
    assert appender is not None
    appended = 0
    while appender._checkpoint_stage == _IDLE:
        assert appender.append_now([("a", [b"x" * 200]), ("b", [b"y" * 200])])
        appended += 1
        assert appended <= CHECKPOINT_PAGES
    big = [("a", [b"p" * 4096 * (FINISH_PAGES + 1)])]  # more pages than FINISH_PAGES
    for _ in range(COPY_ROUNDS - 1):
        await _until_copied(appender)
        assert appender.append_now(big)
        appended += 1
        assert appender._checkpoint_stage == _COPYING  # another round
    await _until_copied(appender)
    assert appender.append_now(big)
    appended += 1
    assert appender._checkpoint_stage == _IDLE and appender._queued == 1  # the finish
    async with asyncio.timeout(10):
        await store.append_many([("a", [b"behind"])])  # behind the finish, in the worker
    appended += 1
    assert appender._queued == 0
    assert appender.append_now([("a", [b"z"])])  # finds the WAL copied: starts it over
    appended += 1
    [(busy, log_frames, _)] = _raw(db_path, "PRAGMA wal_checkpoint(PASSIVE)")
    assert (busy, log_frames < 10) == (0, True)
    assert len(await store.read_updates("a")) == appended


async def test_the_loop_never_checkpoints_and_the_commit_that_finds_the_copy_done_returns_first(
    store: Store, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint fsyncs (5-25 ms of wall time): run on the loop, right after the commit
    that found the copy done, it held that pass's sends and every other room's. The finish
    runs in the worker instead, the appends after it queue behind it there, and the WAL
    still restarts."""
    from syncd.storage import _sqlite_appender

    threads: list[int] = []
    original = _sqlite_appender._checkpoint

    def recorded(conn: sqlite3.Connection, path: Path) -> None:
        threads.append(threading.get_ident())
        original(conn, path)

    monkeypatch.setattr(_sqlite_appender, "_checkpoint", recorded)
    appender = store._appender
    assert appender is not None
    appended = 0
    while appender._checkpoint_stage == _IDLE:
        assert appender.append_now([("a", [b"x" * 200]), ("b", [b"y" * 200])])
        appended += 1
        assert appended <= CHECKPOINT_PAGES
    await _until_copied(appender)
    release = threading.Event()
    appender._executor().submit(release.wait, 10)  # holds the worker: the finish waits
    try:
        # the commit that finds the copy done is made and returns: its pass sends now
        assert appender.append_now([("a", [b"finish"])])
        appended += 1
        assert appender._checkpoint_stage == _IDLE
        # the finish is queued in the worker: later appends wait behind it, in order
        assert not appender.append_now([("a", [b"behind"])])
        behind = asyncio.ensure_future(store.append_many([("a", [b"behind"])]))
        appended += 1
        await asyncio.sleep(0)
        assert not behind.done()
    finally:
        release.set()
    async with asyncio.timeout(10):
        await behind
    assert appender._queued == 0
    assert appender.append_now([("a", [b"inline again"])])
    appended += 1
    assert threads and threading.get_ident() not in threads  # never on the loop
    [(busy, log_frames, _)] = _raw(db_path, "PRAGMA wal_checkpoint(PASSIVE)")
    assert (busy, log_frames < 10) == (0, True)  # restarted by the append behind it
    rows = [data for _, data in await store.read_updates("a")]
    assert len(rows) == appended
    assert rows[-3:] == [b"finish", b"behind", b"inline again"]


async def test_the_other_connections_leave_the_checkpoints_to_the_appenders_cycle(
    store: Store, db_path: Path
) -> None:
    """SQLite's default autocheckpoint (1,000 frames) made nearly every write of the
    SQLAlchemy pool (a presence refresh, a note touched) checkpoint thousands of frames
    with two fsyncs inside its COMMIT, holding the write lock the inline appends need:
    the pool's connections and the worker's checkpoint only past several of the
    appender's cycles, which restart the WAL well before that."""
    assert OTHERS_AUTOCHECKPOINT >= 2 * CHECKPOINT_PAGES
    async with store._engine.connect() as conn:
        [(pages,)] = (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).all()
    assert pages == OTHERS_AUTOCHECKPOINT
    appender = store._appender
    assert appender is not None
    assert appender.append_now([("a", [b"x"])])
    assert appender._inline is not None
    assert appender._inline.execute("PRAGMA wal_autocheckpoint").fetchall() == [(0,)]

    def worker_setting() -> list[Any]:
        return appender._threaded_conn().execute("PRAGMA wal_autocheckpoint").fetchall()

    worker = await asyncio.wrap_future(appender._executor().submit(worker_setting))
    assert worker == [(OTHERS_AUTOCHECKPOINT,)]
    # a write through the pool with the WAL past SQLite's default leaves it unchecked
    for _ in range(300):
        assert appender.append_now([("a", [b"x" * 3000]), ("b", [b"y" * 3000])])
    await store.create_note(note_id="c", title="t", created_by="u")
    backfilled = int.from_bytes(
        (db_path.parent / f"{db_path.name}-shm").read_bytes()[96:100], "little"
    )
    assert backfilled == 0  # WalCkptInfo.nBackfill: no frame copied by that COMMIT


async def test_close_closes_the_appenders_connections(db_path: Path) -> None:
    async with open_store(f"sqlite:///{db_path}") as store:
        await store.create_note(note_id="a", title="t", created_by="u")
        holder = _hold_write_lock(db_path)
        async with asyncio.timeout(10):
            append = asyncio.create_task(store.append_many([("a", [b"a1"])]))
            await asyncio.sleep(0.05)
            holder.commit()
            holder.close()
            await append
        await store.append_many([("a", [b"a2"])])
        appender = store._appender
        assert appender is not None
    assert appender._inline is None and appender._threaded is None
    assert appender._worker is None


def _write_locked(path: Path) -> bool:
    """Whether some connection holds the database's write lock right now."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()


async def test_appends_queue_behind_this_process_writers_instead_of_sqlite_busy_waits(
    store: Store, db_path: Path
) -> None:
    """Writers of one process line up on the store's write lock: an append issued during
    a burst of other write transactions waits its turn and commits inline, rather than
    finding SQLite's lock taken and retrying in the busy handler (which starved it)."""
    appender = store._appender
    assert appender is not None
    async with asyncio.timeout(20):
        writes = [
            asyncio.create_task(
                store.record_doc_change("a", updated_by="u", content_text=f"text {i}")
            )
            for i in range(30)
        ]
        for _ in range(5000):  # until one of them holds SQLite's lock (bounded)
            if _write_locked(db_path):
                break
            await asyncio.sleep(0.001)
        else:
            pytest.fail("no write transaction took the lock")
        await store.append_many([("a", [b"during"]), ("b", [b"burst"])])
        await asyncio.gather(*writes)
    assert appender._worker is None  # never handed to the thread: no busy wait happened
    assert [data for _, data in await store.read_updates("a")] == [b"during"]
    note = await store.get_note("a")
    assert note is not None and note.version >= 30


async def test_append_now_commits_at_once_or_writes_nothing(store: Store, db_path: Path) -> None:
    """`append_now` commits without awaiting while the write lock is free, and declines
    (False, nothing written) while a writer of this process or another holds it."""
    appender = store._appender
    assert appender is not None
    assert store.append_many_now([("a", [b"now"])]) is True
    assert [data for _, data in await store.read_updates("a")] == [b"now"]

    async with store._write_lock:  # a writer of this process mid-transaction
        assert store.append_many_now([("a", [b"declined"])]) is False
    holder = _hold_write_lock(db_path)  # another process's transaction
    try:
        assert store.append_many_now([("a", [b"busy"])]) is False
    finally:
        holder.rollback()
        holder.close()
    assert [data for _, data in await store.read_updates("a")] == [b"now"]

    with pytest.raises(NoteNotFound):
        store.append_many_now([("a", [b"a1"]), ("gone", [b"x"])])
    assert [data for _, data in await store.read_updates("a")] == [b"now"]


def _group(rows: int) -> list[tuple[str, list[bytes]]]:
    """`rows` updates over docs a and b, several per doc, in runs: a a b a a b ..."""
    batches: list[tuple[str, list[bytes]]] = []
    for i in range(rows):
        doc = "b" if i % 3 == 2 else "a"
        if batches and batches[-1][0] == doc:
            batches[-1][1].append(f"{doc}{i}".encode())
        else:
            batches.append((doc, [f"{doc}{i}".encode()]))
    return batches


@pytest.mark.parametrize("rows", [1, 2, 7, 100, MULTI_ROW_MAX, MULTI_ROW_MAX + 1])
async def test_a_group_commit_is_one_autocommit_insert_up_to_the_multi_row_max(
    store: Store, db_path: Path, rows: int
) -> None:
    """A group of up to `MULTI_ROW_MAX` rows is committed as ONE INSERT statement (SQLite
    makes it its own transaction; a turn of 100 busy rooms is one), a larger one in BEGIN
    IMMEDIATE ... COMMIT; either way every row is stored, in the group's order."""
    appender = store._appender
    assert appender is not None
    assert store.append_many_now([("a", [b"first"])]) is True  # opens the inline connection
    inline = appender._inline
    assert inline is not None
    statements: list[str] = []
    inline.set_trace_callback(statements.append)
    try:
        assert store.append_many_now(_group(rows)) is True
    finally:
        inline.set_trace_callback(None)
    if rows <= MULTI_ROW_MAX:
        assert len(statements) == 1 and statements[0].startswith("INSERT INTO doc_updates")
        assert statements[0].count("(") == rows + 1  # the column list and a tuple per row
    else:
        assert statements[0] == "BEGIN IMMEDIATE" and statements[-1] == "COMMIT"
    assert not inline.in_transaction
    written = _raw(db_path, "SELECT doc_id, data FROM doc_updates ORDER BY seq")
    expected = [(doc, data) for doc, updates in _group(rows) for data in updates]
    assert written == [("a", b"first"), *expected]


@pytest.mark.parametrize("rows", [1, MULTI_ROW_MAX, MULTI_ROW_MAX + 1])
async def test_a_group_with_a_deleted_note_writes_none_of_its_rows(
    store: Store, db_path: Path, rows: int
) -> None:
    """The foreign key refusing the last row undoes the whole group, however it is run;
    the connection stays usable."""
    group = [*_group(rows - 1), ("gone", [b"x"])]
    with pytest.raises(NoteNotFound):
        store.append_many_now(group)
    with pytest.raises(NoteNotFound):
        await store.append_many(group)
    assert _raw(db_path, "SELECT count(*) FROM doc_updates") == [(0,)]
    assert store.append_many_now(_group(rows)) is True
    assert _raw(db_path, "SELECT count(*) FROM doc_updates") == [(rows,)]


def test_created_at_text_is_the_current_utc_time_as_sqlalchemy_formats_it() -> None:
    before = datetime.now(UTC).replace(tzinfo=None)
    text = _now_text()
    after = datetime.now(UTC).replace(tzinfo=None)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", text)
    parsed = datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f")
    assert before - timedelta(milliseconds=1) <= parsed <= after + timedelta(milliseconds=1)
    assert created_at(parsed.replace(tzinfo=UTC)) == text


async def test_the_local_bus_returns_only_once_committed_when_the_lock_is_taken(
    store: Store,
) -> None:
    """While a writer of this process holds the write lock, the turn's group cannot be
    committed inline: the bus awaits the store instead, and no append returns before its
    rows are stored, in the order they were made."""
    bus = LocalBus(store)
    await bus.append("a", [b"a0"])  # inline
    async with asyncio.timeout(10):
        async with store._write_lock:
            first = asyncio.create_task(bus.append("a", [b"a1"]))
            second = asyncio.create_task(bus.append("b", [b"b1"]))
            for _ in range(3):  # the commit callback ran and handed over to the task
                await asyncio.sleep(0)
            assert not first.done() and not second.done()
            assert [data for _, data in await store.read_updates("a")] == [b"a0"]
        await asyncio.gather(first, second)
        await bus.append("a", [b"a2"])
    assert [data for _, data in await store.read_updates("a")] == [b"a0", b"a1", b"a2"]
    assert [data for _, data in await store.read_updates("b")] == [b"b1"]


async def test_append_now_translates_driver_errors_like_append_many(store: Store) -> None:
    """A sqlite3 error out of the inline commit reaches the caller as a `StorageError`
    subclass, with the driver's error as its cause, as from `append_many`."""
    assert store.append_many_now([("a", [b"first"])]) is True
    inline = store._appender._inline if store._appender is not None else None
    assert inline is not None
    inline.close()  # any use now raises sqlite3.ProgrammingError
    with pytest.raises(StorageError) as raised:
        store.append_many_now([("a", [b"second"])])
    assert isinstance(raised.value.__cause__, sqlite3.ProgrammingError)
