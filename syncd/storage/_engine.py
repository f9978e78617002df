"""Engine construction per dialect: SQLite pragmas and BEGIN modes, Postgres pool."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import weakref
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ._errors import StorageError, StorageUnavailable
from ._sqlite_appender import OTHERS_AUTOCHECKPOINT, sqlite_file
from ._url import DatabaseURL

# Execution option that marks a connection as a writer. On SQLite a writer
# starts with BEGIN IMMEDIATE: it takes the write lock up front (waiting up
# to busy_timeout) instead of failing at its first write after a read, which
# is what makes read-check-write sequences (snapshot dominance, compaction,
# migrations) safe across processes.
WRITE_OPTION = "syncd_write"


async def create_engine(
    url: DatabaseURL, *, pool_size: int = 10, connect_timeout: float = 10.0
) -> AsyncEngine:
    """Create the async engine (Postgres: nothing connects until first use)."""
    if url.dialect == "sqlite":
        return await _sqlite_engine(url, pool_size=pool_size, connect_timeout=connect_timeout)
    return create_async_engine(
        url.url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=connect_timeout,
        pool_recycle=1800,
        # A Postgres restart leaves dead pooled connections; ping on checkout
        # so the first request after it does not fail.
        pool_pre_ping=True,
        connect_args={"timeout": connect_timeout},
    )


def dialect_insert(conn: AsyncConnection) -> Callable[[sa.Table], Any]:
    """The dialect's INSERT, which has ON CONFLICT (both dialects spell it alike)."""
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def writer(engine: AsyncEngine) -> AsyncEngine:
    """The same engine and pool, with connections marked as writers."""
    return engine.execution_options(**{WRITE_OPTION: True})


_write_locks: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


def write_lock(engine: AsyncEngine) -> asyncio.Lock | None:
    """One FIFO lock per SQLite database, taken by every writer of this process.

    SQLite has one writer at a time and its busy handler is not a queue: a waiting
    connection sleeps (1, 2, 5 ... 100 ms) and retries, so a writer that keeps finding the
    lock taken (the update log's appends behind a burst of session writes) starved for
    hundreds of milliseconds. Writers of one process line up here instead, each waiting
    for at most the transactions ahead of it. None for Postgres (row locks, no queue).
    """
    if engine.dialect.name != "sqlite":
        return None
    pool = engine.sync_engine.pool  # shared by every execution_options() copy
    lock = _write_locks.get(pool)
    if lock is None:
        lock = _write_locks[pool] = asyncio.Lock()
    return lock


def _enable_wal(path: Path, timeout: float) -> None:
    """Switch the file to WAL once (the mode is stored in the file).

    Entering WAL needs an exclusive lock and SQLite does not wait on
    busy_timeout for it, so two processes creating the database at the same
    moment would fail: retry here, before any pooled connection exists.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            with closing(sqlite3.connect(path, timeout=timeout)) as conn:
                if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal":
                    return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error):
                raise
        if time.monotonic() > deadline:
            raise StorageUnavailable(f"could not switch {path} to WAL: database is locked")
        time.sleep(0.02)


async def _sqlite_engine(
    url: DatabaseURL, *, pool_size: int, connect_timeout: float
) -> AsyncEngine:
    path = url.sqlite_path
    assert path is not None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(_enable_wal, path, connect_timeout)
    except (OSError, sqlite3.OperationalError) as error:
        raise StorageUnavailable(f"cannot open {path}: {error}") from error
    except sqlite3.DatabaseError as error:  # e.g. not a database file
        raise StorageError(f"cannot open {path}: {error}") from error
    engine = create_async_engine(url.url, pool_size=pool_size, pool_timeout=connect_timeout)
    busy_ms = int(connect_timeout * 1000)
    # The update log's appender checkpoints this file off the event loop (see
    # `OTHERS_AUTOCHECKPOINT` for why these connections rarely do it themselves).
    appended = sqlite_file(engine) is not None

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (see on_begin); the sqlite3 module's
        # own transaction handling skips BEGIN for SELECT and DDL.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            # WAL + NORMAL: a committed transaction survives the process being
            # killed (it is in the WAL file); only an OS crash may lose the
            # last commits. Readers never block the writer.
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            if appended:
                cursor.execute(f"PRAGMA wal_autocheckpoint = {OTHERS_AUTOCHECKPOINT}")
        finally:
            cursor.close()

    def on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    event.listen(engine.sync_engine, "connect", on_connect)
    event.listen(engine.sync_engine, "begin", on_begin)
    return engine
