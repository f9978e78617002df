"""Doc state: the embedded update log and snapshots, over one connection.

The callers in `Store` run each function inside a writer transaction, so on
SQLite the read-check-write below holds the database's write lock and on
Postgres the snapshot row is locked with SELECT ... FOR UPDATE.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from datetime import UTC, datetime

import pycrdt
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from syncd import metrics
from syncd.updates import CompactionError, compact_state, compact_steps, run_steps

from ._engine import dialect_insert
from ._errors import NoteNotFound
from ._statevector import dominates
from .records import Snapshot
from .schema import doc_snapshots, doc_updates

log = logging.getLogger(__name__)


async def append(conn: AsyncConnection, doc_id: str, updates: Sequence[bytes]) -> int:
    if not updates:
        return await _last_seq(conn, doc_id)
    now = datetime.now(UTC)
    rows = [{"doc_id": doc_id, "data": bytes(data), "created_at": now} for data in updates]
    try:
        # One multi-row INSERT ... RETURNING (SQLAlchemy's insertmanyvalues).
        result = await conn.execute(sa.insert(doc_updates).returning(doc_updates.c.seq), rows)
    except IntegrityError as error:
        raise NoteNotFound(doc_id) from error
    return int(max(result.scalars()))


async def append_many(
    conn: AsyncConnection, batches: Sequence[tuple[str, Sequence[bytes]]]
) -> None:
    now = datetime.now(UTC)
    rows = [
        {"doc_id": doc_id, "data": bytes(data), "created_at": now}
        for doc_id, updates in batches
        for data in updates
    ]
    if not rows:
        return
    try:
        await conn.execute(sa.insert(doc_updates), rows)
    except IntegrityError as error:
        raise NoteNotFound(", ".join(sorted({doc_id for doc_id, _ in batches}))) from error


async def _last_seq(conn: AsyncConnection, doc_id: str) -> int:
    query = sa.select(sa.func.max(doc_updates.c.seq)).where(doc_updates.c.doc_id == doc_id)
    return (await conn.scalar(query)) or 0


#: the loader's queries, built once (bound parameters): a room load runs both
_READ = (
    sa.select(doc_updates.c.seq, doc_updates.c.data)
    .where(
        doc_updates.c.doc_id == sa.bindparam("doc_id"), doc_updates.c.seq > sa.bindparam("after")
    )
    .order_by(doc_updates.c.seq)
)
_LOAD = sa.select(
    doc_snapshots.c.state, doc_snapshots.c.state_vector, doc_snapshots.c.position
).where(doc_snapshots.c.doc_id == sa.bindparam("doc_id"))
_LOAD_LOCKED = _LOAD.with_for_update()


async def read(conn: AsyncConnection, doc_id: str, after_seq: int) -> list[tuple[int, bytes]]:
    result = await conn.execute(_READ, {"doc_id": doc_id, "after": after_seq})
    return [(seq, bytes(data)) for seq, data in result]


async def load(conn: AsyncConnection, doc_id: str, *, lock: bool = False) -> Snapshot | None:
    row = (await conn.execute(_LOAD_LOCKED if lock else _LOAD, {"doc_id": doc_id})).first()
    return (
        None if row is None else Snapshot(bytes(row.state), bytes(row.state_vector), row.position)
    )


async def save(
    conn: AsyncConnection,
    doc_id: str,
    state: bytes,
    position: str,
    *,
    folded: bytes | None = None,
) -> bool:
    """Store `state` unless the stored snapshot holds something it lacks.

    `folded`: the snapshot that `state` was compacted from (a compaction's). When that is
    still the stored one, `state` holds all of it, deletes included, and the merge with it
    is skipped (a merge of two whole states: ~1 ms of CPU for a doc of a few thousand
    characters, in the write transaction)."""
    state_vector = pycrdt.get_state(state)
    now = datetime.now(UTC)
    while True:
        stored = await load(conn, doc_id, lock=True)
        if stored is not None:
            break
        # No row to lock yet: insert, and if a concurrent writer won the race,
        # go round again to lock its row and compare against it.
        insert = dialect_insert(conn)(doc_snapshots).values(
            doc_id=doc_id,
            state=state,
            state_vector=state_vector,
            position=position,
            updated_at=now,
        )
        try:
            result = await conn.execute(insert.on_conflict_do_nothing())
        except IntegrityError as error:
            raise NoteNotFound(doc_id) from error
        if result.rowcount == 1:
            return True
    if not dominates(state_vector, stored.state_vector):
        log.warning(
            "refused snapshot of doc %s at %s: it lacks updates the stored one (at %s) holds",
            doc_id,
            position,
            stored.position,
        )
        return False
    if state != stored.state and stored.state != folded:
        # Equal clocks do not mean equal content: a delete adds no clock, so a
        # state can match the stored vector yet miss a deletion. Merging keeps
        # the union, but a merged update keeps every item apart: with an older
        # merged snapshot it re-inflates a compacted state (measured: 22 KB ->
        # 115 KB), so the union is compacted again unless it is the new state
        # as it is. With the new state first, merge_updates keeps its encoding
        # of the structs both hold, so a state holding all the stored one does
        # (every compaction's) comes out byte for byte unchanged.
        merged = pycrdt.merge_updates(state, stored.state)
        if merged != state:
            try:
                state = compact_state([merged])
            except CompactionError as exc:
                # the union as merged: larger, but it holds everything both do
                metrics.ERRORS.labels("compaction").inc()
                log.error("doc %s: snapshot stored uncompacted: %s", doc_id, exc)
                state = merged
            state_vector = pycrdt.get_state(state)
    await conn.execute(
        sa.update(doc_snapshots)
        .where(doc_snapshots.c.doc_id == doc_id)
        .values(state=state, state_vector=state_vector, position=position, updated_at=now)
    )
    return True


async def compact(conn: AsyncConnection, doc_id: str) -> int:
    """Fold the whole log of `doc_id` into its snapshot; return rows folded.

    If pycrdt cannot fold them (`CompactionError`), the snapshot and the log stay as they
    are (nothing is lost: loading reads both), with one log line and a counted error.
    """
    snapshot = await load(conn, doc_id, lock=True)
    rows = await read(conn, doc_id, 0)
    if not rows:
        return 0
    state = run_steps(fold_steps(doc_id, snapshot, rows))
    if state is None:
        return 0
    return await fold(
        conn, doc_id, state, rows, folded=None if snapshot is None else snapshot.state
    )


def fold_steps(
    doc_id: str, snapshot: Snapshot | None, rows: Sequence[tuple[int, bytes]]
) -> Generator[None, None, bytes | None]:
    """The snapshot with `rows` folded in (`compact_steps`: yields between pieces of work),
    or None, logged and counted, if pycrdt cannot fold them."""
    parts = [data for _, data in rows]
    if snapshot is not None:
        parts.insert(0, snapshot.state)
    try:
        return (yield from compact_steps(parts))
    except CompactionError as exc:
        metrics.ERRORS.labels("compaction").inc()
        log.error(
            "doc %s: compaction failed, snapshot and %d log rows kept: %s", doc_id, len(rows), exc
        )
        return None


async def fold(
    conn: AsyncConnection,
    doc_id: str,
    state: bytes,
    rows: Sequence[tuple[int, bytes]],
    *,
    folded: bytes | None,
) -> int:
    """Store `state` (the snapshot `folded`, None if there was none, with the log `rows`
    folded in) and delete those rows; rows deleted, 0 if `save` refused the state (the
    stored snapshot holds more)."""
    last_seq = rows[-1][0]
    if not await save(conn, doc_id, state, str(last_seq), folded=folded):
        return 0
    seqs = [seq for seq, _ in rows]
    if conn.dialect.name == "postgresql":
        # Postgres hands out sequence numbers before commit, so a row with a
        # smaller seq may become visible after our read: delete exactly the
        # rows folded, never a range.
        done = doc_updates.c.seq == sa.any_(
            sa.bindparam("seqs", seqs, postgresql.ARRAY(sa.BigInteger))
        )
    else:
        # SQLite commits one writer at a time and AUTOINCREMENT never reuses a seq, so
        # the rows up to `last_seq` are exactly those read, even outside this transaction
        done = doc_updates.c.seq <= last_seq
    await conn.execute(sa.delete(doc_updates).where(doc_updates.c.doc_id == doc_id, done))
    return len(rows)
