"""Note versions: full Yjs state snapshots of a note's doc, numbered per note.

A version keeps the whole encoded state (not a diff against the previous one) so any
version can be read, diffed or restored without replaying others, and thinning old
versions never breaks the ones kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from ._access import EngineStore
from ._errors import NoteNotFound, StorageError
from ._statevector import decode_state_vector
from .schema import _SEQ, UTCDateTime, metadata, notes

note_versions = sa.Table(
    "note_versions",
    metadata,
    sa.Column("id", _SEQ, primary_key=True, autoincrement=True),
    sa.Column("note_id", sa.Text, sa.ForeignKey("notes.id", ondelete="CASCADE"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("label", sa.Text),
    sa.Column("automatic", sa.Boolean, nullable=False),
    sa.Column("restored_from", sa.Integer),
    sa.Column("created_by", sa.Text),
    sa.Column("authors", sa.Text, nullable=False, server_default="[]"),
    sa.Column("state", sa.LargeBinary, nullable=False),
    sa.Column("state_vector", sa.LargeBinary, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_note_versions_note_id_number", "note_id", "number", unique=True),
    sqlite_autoincrement=True,
)

_INFO_COLUMNS = [c for c in note_versions.c if c.name not in ("id", "state")]
_NUMBER_RETRIES = 5


#: `_add_once`'s queries, built once (bound parameters): the automatic version taken
#: when a room's last peer leaves runs both, mostly to find nothing changed
_LOCK_NOTE = sa.select(notes.c.id).where(notes.c.id == sa.bindparam("note_id")).with_for_update()
_NEWEST = (
    sa.select(note_versions.c.number, note_versions.c.state_vector)
    .where(note_versions.c.note_id == sa.bindparam("note_id"))
    .order_by(note_versions.c.number.desc())
    .limit(1)
)


class _NumberTaken(Exception):
    """Another instance stored a version with the same number first."""


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """What a version list shows; the state itself is read with `VersionStore.get`."""

    note_id: str
    number: int
    label: str | None
    automatic: bool
    restored_from: int | None
    created_by: str | None
    authors: tuple[str, ...]
    size: int
    created_at: datetime
    state_vector: bytes


def _record(row: Row[*tuple[Any, ...]]) -> VersionRecord:
    m = row._mapping
    return VersionRecord(
        note_id=m["note_id"],
        number=m["number"],
        label=m["label"],
        automatic=bool(m["automatic"]),
        restored_from=m["restored_from"],
        created_by=m["created_by"],
        authors=tuple(json.loads(m["authors"])),
        size=m["size"],
        created_at=m["created_at"],
        state_vector=bytes(m["state_vector"]),
    )


def same_state(a: bytes, b: bytes) -> bool:
    """True when two encoded state vectors name the same clocks (encoding order aside)."""
    return decode_state_vector(a) == decode_state_vector(b)


class VersionStore(EngineStore):
    """The `note_versions` table."""

    async def add(
        self,
        note_id: str,
        *,
        state: bytes,
        state_vector: bytes,
        label: str | None = None,
        automatic: bool = False,
        restored_from: int | None = None,
        created_by: str | None = None,
        authors: Iterable[str] = (),
        skip_if_unchanged: bool = False,
    ) -> VersionRecord | None:
        """Store a version numbered one past the newest; `NoteNotFound` if the note is gone.

        With `skip_if_unchanged`, nothing is stored (None) when the newest version already
        has this state vector (a doc with no versions counts as empty).
        """
        for attempt in range(_NUMBER_RETRIES):
            try:
                return await self._add_once(
                    note_id,
                    state=state,
                    state_vector=state_vector,
                    label=label,
                    automatic=automatic,
                    restored_from=restored_from,
                    created_by=created_by,
                    authors=sorted(set(authors)),
                    skip_if_unchanged=skip_if_unchanged,
                )
            except _NumberTaken:
                # Another instance took the same number at the same moment (Postgres);
                # the unique index refused ours, so take the next one.
                if attempt == _NUMBER_RETRIES - 1:
                    raise StorageError(f"could not number a version of {note_id}") from None
        raise AssertionError("unreachable")

    async def _add_once(
        self,
        note_id: str,
        *,
        state: bytes,
        state_vector: bytes,
        label: str | None,
        automatic: bool,
        restored_from: int | None,
        created_by: str | None,
        authors: list[str],
        skip_if_unchanged: bool,
    ) -> VersionRecord | None:
        async with self._write() as conn:
            # Lock the note row (Postgres; SQLite's BEGIN IMMEDIATE already serialises):
            # versions of one note are numbered one at a time.
            exists = await conn.scalar(_LOCK_NOTE, {"note_id": note_id})
            if exists is None:
                raise NoteNotFound(note_id)
            newest = (await conn.execute(_NEWEST, {"note_id": note_id})).first()
            previous_vector = bytes(newest.state_vector) if newest is not None else b"\x00"
            if skip_if_unchanged and same_state(state_vector, previous_vector):
                return None
            number = (newest.number if newest is not None else 0) + 1
            created_at = datetime.now(UTC)
            row = {
                "note_id": note_id,
                "number": number,
                "label": label,
                "automatic": automatic,
                "restored_from": restored_from,
                "created_by": created_by,
                "authors": json.dumps(authors),
                "state": state,
                "state_vector": state_vector,
                "size": len(state),
                "created_at": created_at,
            }
            try:
                await conn.execute(sa.insert(note_versions), row)
            except IntegrityError:
                raise _NumberTaken from None
        return VersionRecord(
            note_id=note_id,
            number=number,
            label=label,
            automatic=automatic,
            restored_from=restored_from,
            created_by=created_by,
            authors=tuple(authors),
            size=len(state),
            created_at=created_at,
            state_vector=state_vector,
        )

    async def list(self, note_id: str) -> list[VersionRecord]:
        """Every version of a note, newest first."""
        query = (
            sa.select(*_INFO_COLUMNS)
            .where(note_versions.c.note_id == note_id)
            .order_by(note_versions.c.number.desc())
        )
        async with self._read() as conn:
            return [_record(row) for row in await conn.execute(query)]

    async def get(self, note_id: str, number: int) -> tuple[VersionRecord, bytes] | None:
        """One version and its encoded Yjs state."""
        query = sa.select(*_INFO_COLUMNS, note_versions.c.state).where(
            note_versions.c.note_id == note_id, note_versions.c.number == number
        )
        async with self._read() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else (_record(row), bytes(row.state))

    async def latest_state_vector(self, note_id: str) -> bytes | None:
        query = (
            sa.select(note_versions.c.state_vector)
            .where(note_versions.c.note_id == note_id)
            .order_by(note_versions.c.number.desc())
            .limit(1)
        )
        async with self._read() as conn:
            value = await conn.scalar(query)
        return None if value is None else bytes(value)

    async def delete(self, note_id: str, numbers: Iterable[int]) -> int:
        """Remove the given versions of a note (retention); returns how many went."""
        chosen = list(numbers)
        if not chosen:
            return 0
        async with self._write() as conn:
            result = await conn.execute(
                sa.delete(note_versions).where(
                    note_versions.c.note_id == note_id, note_versions.c.number.in_(chosen)
                )
            )
        return result.rowcount
