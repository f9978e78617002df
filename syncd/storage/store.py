"""`Store`: the one storage implementation, and `open_store` to get one from a URL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import _docs, _notes, _users
from ._access import EngineStore
from ._engine import create_engine
from ._errors import NoteExists, translate_errors
from ._sqlite_appender import SqliteAppender, sqlite_file
from ._url import parse_database_url
from .migrate import upgrade
from .notifications import notifications
from .records import (
    EMPTY_METADATA,
    EMPTY_PERMISSIONS,
    UNSET,
    NoteAccess,
    NoteMetadata,
    NoteRecord,
    Permissions,
    Snapshot,
    Unset,
    UserRecord,
)
from .schema import note_permissions, note_tags, notes


def _now() -> datetime:
    return datetime.now(UTC)


class Store(EngineStore):
    """Notes, users and doc state over one SQLAlchemy async engine.

    Every method is one transaction (or one read), raises `StorageUnavailable`
    when the database cannot be reached and `StorageError` for anything else
    the database refuses. Use as an async context manager: exit disposes the
    engine's pool.

    On a SQLite file, `append_many` (the embedded mode's hot path) bypasses
    SQLAlchemy for a plain `sqlite3` connection: see `_sqlite_appender`.
    """

    def __init__(self, engine: AsyncEngine, *, connect_timeout: float = 10.0) -> None:
        super().__init__(engine)
        path = sqlite_file(engine)
        # Connects on the first append, so after `open_store` migrated the schema.
        self._appender = (
            None
            if path is None
            else SqliteAppender(path, busy_timeout=connect_timeout, lock=self._write_lock)
        )

    @property
    def dialect(self) -> str:
        """The SQLAlchemy dialect name: "sqlite" or "postgresql"."""
        return self._engine.dialect.name

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the appender's connections, then dispose the engine's pool."""
        try:
            if self._appender is not None:
                await self._appender.close()
        finally:
            await super().close()

    @property
    def engine(self) -> AsyncEngine:
        """For the stores beside this one (versions, refresh tokens): same pool."""
        return self._engine

    async def migrate(self) -> None:
        """Upgrade the schema to head (under the migration lock)."""
        await upgrade(self._engine)

    async def ping(self) -> None:
        async with self._read() as conn:
            await conn.execute(sa.text("SELECT 1"))

    # users

    async def upsert_user(self, user: UserRecord) -> None:
        """Record a user seen in a token: refresh name, email, roles, last_seen."""
        async with self._write() as conn:
            await _users.upsert(conn, user)

    async def get_user(self, user_id: str) -> UserRecord | None:
        async with self._read() as conn:
            return await _users.get(conn, user_id)

    async def register_user(
        self,
        user_id: str,
        *,
        name: str | Unset | None = UNSET,
        email: str | Unset | None = UNSET,
        email_notifications: bool | Unset = UNSET,
    ) -> UserRecord:
        """Create the user or change what is given (the CRM registers its users, and a
        user sets their own e-mail opt-out); the stored user."""
        changes = {
            key: value
            for key, value in (
                ("name", name),
                ("email", email),
                ("email_notifications", email_notifications),
            )
            if not isinstance(value, Unset)
        }
        async with self._write() as conn:
            await _users.register(conn, user_id, changes)
            user = await _users.get(conn, user_id)
        assert user is not None
        return user

    # notes

    async def create_note(
        self,
        *,
        note_id: str | None,
        title: str,
        created_by: str,
        lead_id: str | None = None,
        permissions: Permissions = EMPTY_PERMISSIONS,
        metadata: NoteMetadata = EMPTY_METADATA,
        content_text: str = "",
    ) -> NoteRecord:
        """Create a note (id = uuid4 hex when None); `NoteExists` if the id is taken."""
        note_id = note_id or uuid.uuid4().hex
        now = _now()
        row = {
            "id": note_id,
            "title": title,
            "lead_id": lead_id,
            "created_by": created_by,
            "updated_by": None,
            "category": metadata.category,
            "priority": metadata.priority,
            "due_date": metadata.due_date,
            "content_text": content_text,
            "version": 1,
            "created_at": now,
            "last_modified": now,
        }
        rights = _notes.permission_rows(note_id, permissions)
        tags = _notes.tag_rows(note_id, metadata.tags)
        async with self._write() as conn:
            try:
                await conn.execute(sa.insert(notes), row)
            except IntegrityError as error:  # the primary key: the only constraint here
                raise NoteExists(note_id) from error
            # A note id just inserted has no child rows (foreign keys with ON DELETE
            # CASCADE, enforced on both dialects): nothing to delete before inserting.
            if rights:
                await conn.execute(sa.insert(note_permissions), rights)
            if tags:
                await conn.execute(sa.insert(note_tags), tags)
            if not rights and not tags:
                # Nothing the database could order or normalise differently: the record
                # is the row as inserted (a note auto-created by its first WebSocket
                # connect: three SELECTs fewer, measured with bench/connect_cost.py).
                return NoteRecord(
                    id=note_id,
                    title=title,
                    lead_id=lead_id,
                    created_by=created_by,
                    updated_by=None,
                    permissions=EMPTY_PERMISSIONS,
                    metadata=NoteMetadata(
                        (), metadata.category, metadata.priority, metadata.due_date
                    ),
                    content_text=content_text,
                    version=1,
                    created_at=now,
                    last_modified=now,
                )
            record = await _notes.fetch_note(conn, note_id)
        assert record is not None
        return record

    async def get_note(self, note_id: str, *, trashed: bool | None = False) -> NoteRecord | None:
        """The live note (`trashed=True`: the note in the trash; None: either)."""
        async with self._read() as conn:
            return await _notes.fetch_note(conn, note_id, trashed=trashed)

    async def update_note(
        self,
        note_id: str,
        *,
        updated_by: str,
        title: str | Unset = UNSET,
        lead_id: str | Unset | None = UNSET,
        permissions: Permissions | Unset = UNSET,
        metadata: NoteMetadata | Unset = UNSET,
    ) -> NoteRecord | None:
        """Change what is given; permissions and tags are replaced whole. None if unknown
        (or in the trash)."""
        values: dict[str, Any] = {"updated_by": updated_by, "last_modified": _now()}
        if not isinstance(title, Unset):
            values["title"] = title
        if not isinstance(lead_id, Unset):
            values["lead_id"] = lead_id
        if not isinstance(metadata, Unset):
            values.update(
                category=metadata.category, priority=metadata.priority, due_date=metadata.due_date
            )
        async with self._write() as conn:
            result = await conn.execute(
                sa.update(notes)
                .where(notes.c.id == note_id, notes.c.deleted_at.is_(None))
                .values(values)
            )
            if result.rowcount == 0:
                return None
            if not isinstance(permissions, Unset):
                await _notes.replace_permissions(conn, note_id, permissions)
            if not isinstance(metadata, Unset):
                await _notes.replace_tags(conn, note_id, metadata.tags)
            return await _notes.fetch_note(conn, note_id)

    async def delete_note(self, note_id: str) -> bool:
        """Purge a note (live or in the trash) with its permissions, tags, snapshot, update
        log, versions and the notifications about it (no one is told about a note that is
        gone)."""
        async with self._write() as conn:
            return bool(await _purge(conn, [note_id]))

    async def trash_note(self, note_id: str) -> NoteRecord | None:
        """Move a live note to the trash: every read but the trash's then misses it, and
        its content, versions and rights wait for `restore_note`. None if there is no such
        live note."""
        async with self._write() as conn:
            result = await conn.execute(
                sa.update(notes)
                .where(notes.c.id == note_id, notes.c.deleted_at.is_(None))
                .values(deleted_at=_now())
            )
            if result.rowcount == 0:
                return None
            return await _notes.fetch_note(conn, note_id, trashed=True)

    async def restore_note(self, note_id: str) -> NoteRecord | None:
        """Bring a note back from the trash as it was; None if it is not in the trash."""
        async with self._write() as conn:
            result = await conn.execute(
                sa.update(notes)
                .where(notes.c.id == note_id, notes.c.deleted_at.isnot(None))
                .values(deleted_at=None)
            )
            if result.rowcount == 0:
                return None
            return await _notes.fetch_note(conn, note_id)

    async def purge_trash(self, before: datetime, *, limit: int = 500) -> list[str]:
        """Purge up to `limit` notes trashed before `before` (oldest first), as
        `delete_note` does; their ids. The caller repeats while a full batch comes back."""
        async with self._write() as conn:
            expired = await conn.execute(
                sa.select(notes.c.id)
                .where(notes.c.deleted_at < before)
                .order_by(notes.c.deleted_at, notes.c.id)
                .limit(max(limit, 0))
            )
            note_ids = list(expired.scalars().all())
            return await _purge(conn, note_ids)

    async def list_notes(
        self,
        *,
        viewer_id: str | None,
        lead_id: str | None = None,
        q: str | None = None,
        tag: str | None = None,
        category: str | None = None,
        priority: str | None = None,
        offset: int = 0,
        limit: int = 20,
        trashed: bool = False,
    ) -> tuple[list[NoteRecord], int]:
        """One page of the notes `viewer_id` may see (all when None), and the total;
        `trashed`: of the notes in the trash that `viewer_id` may delete, newest first."""
        where = _notes.list_filter(
            viewer_id=viewer_id,
            trashed=trashed,
            lead_id=lead_id,
            q=q,
            tag=tag,
            category=category,
            priority=priority,
        )
        page = (
            sa.select(notes)
            .where(*where)
            .order_by((notes.c.deleted_at if trashed else notes.c.last_modified).desc(), notes.c.id)
            .offset(max(offset, 0))
            .limit(max(limit, 0))
        )
        count = sa.select(sa.func.count()).select_from(notes).where(*where)
        async with self._read() as conn:
            total = await conn.scalar(count) or 0
            records = await _notes.fetch_notes(conn, page) if total else []
        return records, total

    async def get_access(
        self, note_id: str, user_id: str, *, trashed: bool | None = False
    ) -> NoteAccess | None:
        """`user_id`'s rights from ownership and permission rows; None if no such note
        (a note in the trash unless `trashed` is True or None)."""
        async with self._read() as conn:
            return await _notes.access(conn, note_id, user_id, trashed=trashed)

    async def record_doc_change(
        self, note_id: str, *, updated_by: str | None, content_text: str
    ) -> None:
        """The doc changed: bump version and last_modified, store its plain text."""
        values: dict[str, Any] = {
            "version": notes.c.version + 1,
            "last_modified": _now(),
            "content_text": content_text,
        }
        if updated_by is not None:
            values["updated_by"] = updated_by
        async with self._write() as conn:
            await conn.execute(sa.update(notes).where(notes.c.id == note_id).values(values))

    # doc state

    async def append_updates(self, doc_id: str, updates: Sequence[bytes]) -> int:
        """Append a tick's updates in one transaction; return the last seq.

        `NoteNotFound` if the note does not exist (e.g. deleted meanwhile).
        """
        async with self._write() as conn:
            return await _docs.append(conn, doc_id, updates)

    async def append_many(self, batches: Sequence[tuple[str, Sequence[bytes]]]) -> None:
        """Append the updates of several docs in ONE transaction (a group commit).

        `NoteNotFound` if any of the notes does not exist; nothing is then written.
        """
        if self._appender is not None:
            with translate_errors():
                await self._appender.append_many(batches)
            return
        async with self._write() as conn:
            await _docs.append_many(conn, batches)

    @property
    def appends_now(self) -> bool:
        """`append_many_now` can commit (a SQLite file); False: it never does (Postgres)."""
        return self._appender is not None

    def append_many_now(self, batches: Sequence[tuple[str, Sequence[bytes]]]) -> bool:
        """`append_many` without awaiting, when that is possible now (a SQLite file whose
        write lock is free): True once committed; False, with nothing written, when the
        caller has to await `append_many` instead (always on Postgres).

        `NoteNotFound` if any of the notes does not exist; nothing is then written.
        """
        if self._appender is None:
            return False
        try:
            return self._appender.append_now(batches)
        except Exception:
            # translated only on failure: entering the generator-based context manager
            # on every group commit cost ~10.7k instructions, a commit of one row ~63k
            with translate_errors():
                raise

    async def read_updates(self, doc_id: str, after_seq: int = 0) -> list[tuple[int, bytes]]:
        """Log rows after `after_seq`, in order. A loader should read from 0:
        the log only ever holds rows not yet folded into the snapshot."""
        async with self._read() as conn:
            return await _docs.read(conn, doc_id, after_seq)

    async def load_snapshot(self, doc_id: str) -> Snapshot | None:
        async with self._read() as conn:
            return await _docs.load(conn, doc_id)

    async def load_doc(self, doc_id: str) -> list[bytes]:
        """What a room loads: the snapshot's state (if any), then the log's rows, read
        in one read transaction (the log then holds exactly what that snapshot lacks,
        even with a compaction committing in between: on SQLite the read sees one
        snapshot of the database) and one pool checkout instead of two."""
        async with self._read() as conn:
            snapshot = await _docs.load(conn, doc_id)
            rows = await _docs.read(conn, doc_id, 0)
        updates = [data for _, data in rows]
        return [snapshot.state, *updates] if snapshot is not None else updates

    async def save_snapshot(self, doc_id: str, state: bytes, *, position: str) -> bool:
        """Store `state`; False (old one kept) if it lacks anything the stored one has."""
        async with self._write() as conn:
            return await _docs.save(conn, doc_id, state, position)

    async def compact_doc(self, doc_id: str) -> int:
        """Fold the log into the snapshot in one transaction; rows folded (0: nothing)."""
        async with self._write() as conn:
            return await _docs.compact(conn, doc_id)

    async def compact_doc_in_slices(self, doc_id: str, slice_seconds: float = 0.0005) -> int:
        """`compact_doc` for the event loop that serves the doc's clients: the log and the
        snapshot are read in one read transaction, folded outside any transaction in
        slices of about `slice_seconds` of CPU with a loop turn between two (a busy room's
        checkpoint is several ms of CPU, which held every delivery behind it and, in the
        write transaction, every durable append too), and only the write of the result
        takes the write lock. A snapshot stored meanwhile (another compaction) is handled
        by `save` as always: merged in if ours holds it, else ours is refused (0)."""
        async with self._read() as conn:
            snapshot = await _docs.load(conn, doc_id)
            rows = await _docs.read(conn, doc_id, 0)
        if not rows:
            return 0
        steps = _docs.fold_steps(doc_id, snapshot, rows)
        clock = time.thread_time
        start = clock()
        while True:
            try:
                next(steps)
            except StopIteration as done:
                state: bytes | None = done.value
                break
            if clock() - start >= slice_seconds:
                await asyncio.sleep(0)
                start = clock()
        if state is None:
            return 0
        async with self._write() as conn:
            folded = None if snapshot is None else snapshot.state
            return await _docs.fold(conn, doc_id, state, rows, folded=folded)


async def _purge(conn: AsyncConnection, note_ids: list[str]) -> list[str]:
    """Delete the notes (their rows cascade) and the notifications about them."""
    if not note_ids:
        return []
    deleted = await conn.execute(
        sa.delete(notes).where(notes.c.id.in_(note_ids)).returning(notes.c.id)
    )
    gone = list(deleted.scalars().all())
    if gone:
        await conn.execute(sa.delete(notifications).where(notifications.c.note_id.in_(gone)))
    return gone


@asynccontextmanager
async def open_store(
    url: str, *, migrate: bool = True, pool_size: int = 10, connect_timeout: float = 10.0
) -> AsyncIterator[Store]:
    """Open the store at `url` (sqlite:// or postgresql://), migrated to head by default.

    `connect_timeout` bounds connecting and waiting for a pooled connection (and the
    SQLite lock); `pool_size` caps concurrent connections.
    """
    with translate_errors():
        engine = await create_engine(
            parse_database_url(url), pool_size=pool_size, connect_timeout=connect_timeout
        )
    async with Store(engine, connect_timeout=connect_timeout) as store:
        if migrate:
            await store.migrate()
        yield store
