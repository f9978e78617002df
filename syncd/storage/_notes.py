"""Note queries over one connection; `Store` owns connections and transactions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from .records import NoteAccess, NoteMetadata, NoteRecord, Permissions
from .schema import note_permissions, note_tags, notes

# Rights a permission row can carry; any of them makes a note show up in a list.
_ANY_RIGHT = sa.or_(
    note_permissions.c.can_view, note_permissions.c.can_edit, note_permissions.c.can_delete
)


def permission_rows(note_id: str, permissions: Permissions) -> list[dict[str, Any]]:
    """One row per user; edit implies view."""
    view, edit, delete = (
        set(ids) for ids in (permissions.can_view, permissions.can_edit, permissions.can_delete)
    )
    return [
        {
            "note_id": note_id,
            "user_id": user,
            "can_view": user in view or user in edit,
            "can_edit": user in edit,
            "can_delete": user in delete,
        }
        for user in sorted(view | edit | delete)
    ]


def tag_rows(note_id: str, tags: Iterable[str]) -> list[dict[str, Any]]:
    return [{"note_id": note_id, "tag": tag} for tag in sorted(set(tags))]


async def replace_permissions(conn: AsyncConnection, note_id: str, perms: Permissions) -> None:
    await conn.execute(sa.delete(note_permissions).where(note_permissions.c.note_id == note_id))
    if rows := permission_rows(note_id, perms):
        await conn.execute(sa.insert(note_permissions), rows)


async def replace_tags(conn: AsyncConnection, note_id: str, tags: Iterable[str]) -> None:
    await conn.execute(sa.delete(note_tags).where(note_tags.c.note_id == note_id))
    if rows := tag_rows(note_id, tags):
        await conn.execute(sa.insert(note_tags), rows)


async def _children(
    conn: AsyncConnection, note_ids: Sequence[str]
) -> tuple[dict[str, Permissions], dict[str, tuple[str, ...]]]:
    """Permissions and tags of many notes in two queries (no N+1)."""
    rights: dict[str, tuple[list[str], list[str], list[str]]] = {i: ([], [], []) for i in note_ids}
    tags: dict[str, list[str]] = {i: [] for i in note_ids}
    if not note_ids:
        return {}, {}
    perm_rows = await conn.execute(
        sa.select(note_permissions)
        .where(note_permissions.c.note_id.in_(note_ids))
        .order_by(note_permissions.c.note_id, note_permissions.c.user_id)
    )
    for row in perm_rows:
        view, edit, delete = rights[row.note_id]
        for flag, bucket in ((row.can_view, view), (row.can_edit, edit), (row.can_delete, delete)):
            if flag:
                bucket.append(row.user_id)
    tag_result = await conn.execute(
        sa.select(note_tags)
        .where(note_tags.c.note_id.in_(note_ids))
        .order_by(note_tags.c.note_id, note_tags.c.tag)
    )
    for row in tag_result:
        tags[row.note_id].append(row.tag)
    return (
        {i: Permissions(*(tuple(ids) for ids in r)) for i, r in rights.items()},
        {i: tuple(t) for i, t in tags.items()},
    )


def _record(row: Row[Any], perms: Permissions, tags: tuple[str, ...]) -> NoteRecord:
    return NoteRecord(
        id=row.id,
        title=row.title,
        lead_id=row.lead_id,
        created_by=row.created_by,
        updated_by=row.updated_by,
        permissions=perms,
        metadata=NoteMetadata(tags, row.category, row.priority, row.due_date),
        content_text=row.content_text,
        version=row.version,
        created_at=row.created_at,
        last_modified=row.last_modified,
        deleted_at=row.deleted_at,
    )


async def fetch_notes(conn: AsyncConnection, query: sa.Select[Any]) -> list[NoteRecord]:
    """Run a SELECT over `notes` and attach permissions and tags."""
    rows = (await conn.execute(query)).all()
    perms, tags = await _children(conn, [row.id for row in rows])
    return [_record(row, perms[row.id], tags[row.id]) for row in rows]


def live(trashed: bool | None = False) -> list[sa.ColumnElement[bool]]:
    """The WHERE clause that picks live notes (False), trashed ones (True) or both (None)."""
    if trashed is None:
        return []
    return [notes.c.deleted_at.isnot(None) if trashed else notes.c.deleted_at.is_(None)]


async def fetch_note(
    conn: AsyncConnection, note_id: str, *, trashed: bool | None = False
) -> NoteRecord | None:
    found = await fetch_notes(conn, sa.select(notes).where(notes.c.id == note_id, *live(trashed)))
    return found[0] if found else None


def list_filter(
    *,
    viewer_id: str | None,
    trashed: bool = False,
    lead_id: str | None,
    q: str | None,
    tag: str | None,
    category: str | None,
    priority: str | None,
) -> list[sa.ColumnElement[bool]]:
    """WHERE clauses of `Store.list_notes`."""
    """WHERE clauses of `Store.list_notes`: live notes the viewer may see, or (`trashed`)
    notes in the trash the viewer may delete (and so restore)."""
    where = live(trashed)
    if viewer_id is not None:
        granted = sa.exists().where(
            note_permissions.c.note_id == notes.c.id,
            note_permissions.c.user_id == viewer_id,
            note_permissions.c.can_delete if trashed else _ANY_RIGHT,
        )
        where.append(sa.or_(notes.c.created_by == viewer_id, granted))
    if lead_id is not None:
        where.append(notes.c.lead_id == lead_id)
    if q:
        # autoescape: a user's % and _ are literal characters, not wildcards.
        where.append(
            sa.or_(
                notes.c.title.icontains(q, autoescape=True),
                notes.c.content_text.icontains(q, autoescape=True),
            )
        )
    if tag is not None:
        where.append(sa.exists().where(note_tags.c.note_id == notes.c.id, note_tags.c.tag == tag))
    if category is not None:
        where.append(notes.c.category == category)
    if priority is not None:
        where.append(notes.c.priority == priority)
    return where


def _access_query(trashed: bool | None) -> sa.Select[Any]:
    joined = notes.outerjoin(
        note_permissions,
        sa.and_(
            note_permissions.c.note_id == notes.c.id,
            note_permissions.c.user_id == sa.bindparam("user_id"),
        ),
    )
    return (
        sa.select(
            notes.c.created_by,
            note_permissions.c.can_view,
            note_permissions.c.can_edit,
            note_permissions.c.can_delete,
        )
        .select_from(joined)
        .where(notes.c.id == sa.bindparam("note_id"), *live(trashed))
    )


#: `access`'s query for each `trashed`, built once: building it per call (operators,
#: bound literals) was half of the look-up's CPU in the loop thread, and every cache miss
#: of a connect runs it (bench/connect_cost.py)
_ACCESS = {trashed: _access_query(trashed) for trashed in (False, True, None)}


async def access(
    conn: AsyncConnection, note_id: str, user_id: str, *, trashed: bool | None = False
) -> NoteAccess | None:
    """The note's creator and the user's permission row, in one query (None for no such
    note; by default, a note in the trash is no such note)."""
    result = await conn.execute(_ACCESS[trashed], {"note_id": note_id, "user_id": user_id})
    row = result.first()
    if row is None:
        return None
    if row.created_by == user_id:
        return NoteAccess(owner=True, can_view=True, can_edit=True, can_delete=True)
    edit = bool(row.can_edit)
    return NoteAccess(
        owner=False,
        can_view=bool(row.can_view) or edit,
        can_edit=edit,
        can_delete=bool(row.can_delete),
    )
