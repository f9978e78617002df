"""The embedded update log's hot write path: plain `sqlite3`, inline on the event loop.

`Store.append_many` runs once per event-loop turn with every room's updates. Through
SQLAlchemy + aiosqlite it cost ~20-25% of the server's one core (statement compile and
bind processing, then aiosqlite's thread hand-offs and GIL contention); the server is
pinned to one core, so that thread bought no parallelism. An uncontended commit of a small
batch on a WAL database with synchronous=NORMAL (no fsync) takes tens of microseconds,
less than one hand-off, so it runs right on the loop with busy_timeout 0. Writers of this
process queue on the store's write lock (`_engine.write_lock`), so the inline commit only
finds SQLite's lock taken when another process writes: then the append goes to one worker
thread whose connection waits up to the store's timeout, and the loop never sleeps in
SQLite's busy handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from itertools import chain
from pathlib import Path
from typing import Any

from sqlalchemy.dialects.sqlite import pysqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from ._errors import NoteNotFound
from .schema import doc_updates

log = logging.getLogger(__name__)

_INSERT = "INSERT INTO doc_updates (doc_id, data, created_at) VALUES (?, ?, ?)"
# Groups of up to this many rows are one INSERT statement (see `_append`): a turn of 100
# busy rooms is a group of 100 rows. Larger groups are BEGIN IMMEDIATE + executemany +
# COMMIT, not several multi-row INSERTs in one transaction: a statement that can fail
# after writing some of its rows, inside a transaction, keeps a statement journal, which
# spills to a temporary file past 64 KiB (100 rows as 4 INSERTs: 2x the pwrite calls).
MULTI_ROW_MAX = 128
# every size's INSERT stays prepared, besides the few other statements
_CACHED_STATEMENTS = MULTI_ROW_MAX + 32
#: index n: the INSERT of n rows (one `VALUES` tuple each); index 0 unused
_INSERTS = ["", *(_INSERT + ", (?, ?, ?)" * (n - 1) for n in range(1, MULTI_ROW_MAX + 1))]
_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
# Once the inline commits wrote about this many WAL pages, the worker thread runs a PASSIVE
# checkpoint (copying pages and two fsyncs, with the GIL released: measured 7-13 ms that
# used to stall the loop), concurrently with the inline appends. The frames those appends
# wrote meanwhile are then copied by a second PASSIVE checkpoint, the finish, also in the
# worker: queued like an append, so every append after it waits behind it in the worker
# and the WAL is fully copied when the next commit starts, which then starts it over from
# the top (with the loop always writing, the WAL would otherwise never restart). The finish
# used to run inline, right after the commit that found the copy done and before that
# pass's sends: its two fsyncs held the loop 5-25 ms of wall time for under 1 ms of CPU
# (bench/loop_turns.py, sqlite checkpoint (loop); 6-32 ms in a standalone replay on this
# machine), every delivery of the loop waiting behind them. In the worker they hold back
# only the appends queued meanwhile, whose sends had to wait for the restart anyway.
CHECKPOINT_PAGES = 8000
# The finish copies the pages written while the worker copied, while appends wait behind
# it; on a loaded machine that copy can take long enough for the loop to write thousands
# of pages. With more than this many estimated pages to copy, the worker copies them first
# (another PASSIVE round, appends going on inline) and the finish waits for a round that
# leaves few.
FINISH_PAGES = 100
# ... but at most this many rounds in a row, then the finish anyway: with many busy rooms
# every commit writes about a page per room (~103 pages a pass of 100 rooms), so the
# frames written during a round never fell under FINISH_PAGES. The worker then copied
# round after round (two fsyncs each, every hot page copied again each round: 440 rounds
# in 2,050 passes of bench/flush_cost.py --rooms 100, 182 in 1,050 under strace) and the
# WAL never restarted (277 MB after those passes, and growing).
COPY_ROUNDS = 3
# The other connections to the file (SQLAlchemy's pool: sessions, presence, notes; the
# worker's) keep SQLite's autocheckpoint, but past this many frames rather than the
# default 1,000: the WAL is past 1,000 frames most of the time between two restarts of the
# cycle above, so every write of theirs ran a PASSIVE checkpoint of thousands of frames
# with two fsyncs inside its COMMIT, holding the store's write lock, and every inline
# append (every room's sends) waited behind it. Measured with bench/loop_turns.py under
# the fanout load: the presence refresh held the lock 110-128 ms every 10 s. Four cycles'
# worth is never reached while the inline appends keep restarting the WAL; without them
# (no rooms, or a database only the API writes to) it still bounds the WAL, at ~128 MB.
OTHERS_AUTOCHECKPOINT = 4 * CHECKPOINT_PAGES
# checkpoint stages: none running; the worker is copying; copied, the finish is due
_IDLE, _COPYING, _COPIED = 0, 1, 2

_DIALECT = pysqlite.dialect()
_created_at_processor = doc_updates.c.created_at.type.dialect_impl(_DIALECT).bind_processor(
    _DIALECT
)


def created_at(value: datetime) -> Any:
    """`value` as SQLAlchemy's column type stores it on SQLite (naive-UTC text)."""
    if _created_at_processor is None:  # a type with no bind processor stores the value as is
        return value
    return _created_at_processor(value)


#: (whole second, its text): `_now_text` formats the date and time once a second
_second: tuple[int, str] = (-1, "")


def _now_text() -> str:
    """The current UTC time as `created_at` stores it ("YYYY-MM-DD HH:MM:SS.ffffff"),
    formatted directly: an aware datetime through SQLAlchemy's bind processor (two
    datetime conversions and a format call) cost more than the rest of a row."""
    global _second
    now = time.time_ns() // 1000
    seconds, micros = divmod(now, 1_000_000)
    if _second[0] != seconds:
        _second = (seconds, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)))
    return f"{_second[1]}.{micros:06d}"


def sqlite_file(engine: AsyncEngine) -> Path | None:
    """The file behind a SQLite engine; None for Postgres and in-memory or URI databases."""
    url = engine.url
    database = url.database or ""
    if (
        engine.dialect.name != "sqlite"
        or database in ("", ":memory:")
        or database.startswith("file:")
        or url.query.get("uri")
    ):
        return None
    return Path(database)


def _connect(path: Path, busy_ms: int, *, autocheckpoint: bool) -> sqlite3.Connection:
    # isolation_level=None: the sqlite3 module issues no BEGIN of its own; WAL is set
    # in the file already (the engine's `_enable_wal`).
    conn = sqlite3.connect(path, isolation_level=None, cached_statements=_CACHED_STATEMENTS)
    try:
        conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        if not autocheckpoint:
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        else:
            conn.execute(f"PRAGMA wal_autocheckpoint = {OTHERS_AUTOCHECKPOINT}")
    except BaseException:
        conn.close()
        raise
    return conn


def _append(conn: sqlite3.Connection, rows: list[tuple[str, bytes, Any]]) -> None:
    """One transaction, or nothing: a failed INSERT or COMMIT is rolled back.

    Up to `MULTI_ROW_MAX` rows are ONE INSERT in autocommit: SQLite runs a lone statement
    as its own transaction (taking the write lock at its start, committing at its end,
    undoing all of it if it fails), with the same WAL commit and synchronous setting as an
    explicit BEGIN/COMMIT. That saves the two extra statements, and per row a statement
    execution of `executemany` (its reset and rebind, and the AUTOINCREMENT counter
    written at each statement's end): a one-row group commit cost ~74k instructions as
    BEGIN IMMEDIATE + executemany + COMMIT, ~63k as one INSERT; 20 rows ~696k vs ~493k.
    Rows of one INSERT are inserted in their order. Each size's statement stays prepared
    in the connection's statement cache (`_CACHED_STATEMENTS`).
    """
    if conn.in_transaction:  # only if a ROLLBACK below failed: never append to that
        conn.execute("ROLLBACK")
    count = len(rows)
    if count == 1:
        conn.execute(_INSERT, rows[0])
        return
    if count <= MULTI_ROW_MAX:
        conn.execute(_INSERTS[count], tuple(chain.from_iterable(rows)))
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(_INSERT, rows)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def _checkpoint(conn: sqlite3.Connection, path: Path) -> None:
    """PASSIVE: copies what it can, never waits on readers or writers."""
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error as error:  # the next one, or any other connection's, retries
        log.warning("WAL checkpoint of %s failed: %s", path, error)


def _pages(batches: Sequence[tuple[str, Sequence[bytes]]], rows: int) -> int:
    """About the WAL pages a commit writes: an index leaf per doc (the index is by doc,
    so a batch of many docs touches many), table leaves for the rows (~100 bytes of each
    row besides its data), sqlite_sequence and slack."""
    size = sum([sum(map(len, updates)) for _, updates in batches]) + 100 * rows
    return len(batches) + size // 4096 + 3


def _rows(batches: Sequence[tuple[str, Sequence[bytes]]]) -> list[tuple[str, bytes, Any]]:
    now = _now_text()
    return [(doc_id, bytes(data), now) for doc_id, updates in batches for data in updates]


def _not_found(batches: Sequence[tuple[str, Sequence[bytes]]]) -> NoteNotFound:
    """The foreign key refused a row: one of the notes was deleted."""
    return NoteNotFound(", ".join(sorted({doc_id for doc_id, _ in batches})))


class SqliteAppender:
    """Appends group commits to `doc_updates` of one SQLite file, inline when it can.

    Raises `NoteNotFound` (nothing written) for a missing note and plain `sqlite3`
    errors otherwise: the caller translates them like any driver error. Appends that
    had to wait go to one worker thread, in call order; while any is queued, later ones
    queue behind it too, so the log keeps the order of the calls.
    """

    def __init__(
        self, path: Path, *, busy_timeout: float, lock: asyncio.Lock | None = None
    ) -> None:
        self._path = path
        self._lock = lock or asyncio.Lock()
        self._busy_ms = int(busy_timeout * 1000)
        self._inline: sqlite3.Connection | None = None  # the loop's, busy_timeout 0
        self._threaded: sqlite3.Connection | None = None  # only the worker touches it
        self._worker: ThreadPoolExecutor | None = None
        self._queued = 0  # appends handed to the worker, not finished yet
        self._wal_pages = 0  # estimated pages of the inline commits since a checkpoint
        self._checkpoint_stage = _IDLE
        self._rounds = 0  # copies in a row since the last finish

    async def append_many(self, batches: Sequence[tuple[str, Sequence[bytes]]]) -> None:
        rows = _rows(batches)
        if not rows:
            return
        try:
            async with self._lock:
                if not self._queued and self._append_inline(rows, _pages(batches, len(rows))):
                    return
            await self._append_in_worker(rows)
        except sqlite3.IntegrityError as error:  # the foreign key: a note was deleted
            raise _not_found(batches) from error

    def append_now(self, batches: Sequence[tuple[str, Sequence[bytes]]]) -> bool:
        """Commit on the loop, without awaiting, if nothing has to be waited for: True once
        committed; False, with nothing written, when the write lock is held (a writer of
        this process is mid-transaction, or another process's holds SQLite's lock) or
        appends are queued on the worker. The caller then awaits `append_many`, so the
        log keeps the order of the calls.

        `LocalBus` commits every loop turn's group this way from a `call_soon` callback:
        no task, no coroutine chain, no lock acquire per turn.
        """
        rows = _rows(batches)
        if not rows:
            return True
        if self._queued or self._lock.locked():
            return False
        try:
            return self._append_inline(rows, _pages(batches, len(rows)))
        except sqlite3.IntegrityError as error:
            raise _not_found(batches) from error

    async def close(self) -> None:
        """Close both connections (after the queued appends are done)."""
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        if self._worker is not None:
            worker, self._worker = self._worker, None
            try:
                await asyncio.wrap_future(worker.submit(self._close_threaded))
            finally:
                worker.shutdown(wait=False)

    def _append_inline(self, rows: list[tuple[str, bytes, Any]], pages: int) -> bool:
        """Commit on the loop; False if another connection holds the write lock."""
        try:
            if self._inline is None:
                self._inline = _connect(self._path, 0, autocheckpoint=False)
            _append(self._inline, rows)
        except sqlite3.OperationalError as error:
            if getattr(error, "sqlite_errorcode", 0) & 0xFF in _BUSY:
                return False
            raise
        self._wal_pages += pages
        if self._checkpoint_stage == _COPIED:
            if self._wal_pages > FINISH_PAGES and self._rounds < COPY_ROUNDS:
                self._copy_in_worker()  # too many frames meanwhile to hold appends for
            else:
                self._finish_in_worker()
        elif self._wal_pages >= CHECKPOINT_PAGES and self._checkpoint_stage == _IDLE:
            self._copy_in_worker()
        return True

    def _copy_in_worker(self) -> None:
        """A PASSIVE checkpoint in the worker; the pages written from now on are counted
        for the inline finish that follows it."""
        self._wal_pages = 0
        self._checkpoint_stage = _COPYING
        self._rounds += 1
        loop = asyncio.get_running_loop()
        self._executor().submit(self._checkpoint_threaded).add_done_callback(
            lambda _: loop.call_soon_threadsafe(self._copied)
        )

    def _finish_in_worker(self) -> None:
        """Copy the few frames written during the copy, in the worker: queued, so the
        appends after this one wait behind it there (in order) and the WAL is fully copied
        when the next of them starts, which restarts it. The loop never runs a checkpoint:
        its fsyncs would hold every room's sends (the commit that found the copy done
        returns first, so its pass sends at once)."""
        self._wal_pages = 0
        self._checkpoint_stage = _IDLE
        self._rounds = 0
        self._submit(self._checkpoint_threaded)

    def _copied(self) -> None:
        self._checkpoint_stage = _COPIED

    async def _append_in_worker(self, rows: list[tuple[str, bytes, Any]]) -> None:
        await asyncio.wrap_future(self._submit(self._append_threaded, rows))

    def _executor(self) -> ThreadPoolExecutor:
        if self._worker is None:
            self._worker = ThreadPoolExecutor(1, thread_name_prefix="syncd-sqlite-append")
        return self._worker

    def _submit(self, fn: Callable[..., None], *args: Any) -> Future[None]:
        """Queue `fn` on the worker; inline appends wait until the queue is empty again."""
        loop = asyncio.get_running_loop()
        future = self._executor().submit(fn, *args)
        self._queued += 1
        # Counted down when the worker is done (not when a cancelled caller stops
        # waiting), so no inline append can overtake a queued one.
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(self._unqueue))
        return future

    def _unqueue(self) -> None:
        self._queued -= 1

    # in the worker thread

    def _threaded_conn(self) -> sqlite3.Connection:
        if self._threaded is None:
            self._threaded = _connect(self._path, self._busy_ms, autocheckpoint=True)
        return self._threaded

    def _append_threaded(self, rows: list[tuple[str, bytes, Any]]) -> None:
        _append(self._threaded_conn(), rows)

    def _checkpoint_threaded(self) -> None:
        _checkpoint(self._threaded_conn(), self._path)

    def _close_threaded(self) -> None:
        if self._threaded is not None:
            self._threaded.close()
            self._threaded = None
