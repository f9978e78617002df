"""What the notes routes answer: a note in the seed's JSON shape, and lists of them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from syncd.api.models._base import Out, Timestamp
from syncd.content import json_to_text, sanitize
from syncd.services.notes import NoteView
from syncd.storage import NoteRecord


class PermissionsOut(Out):
    canView: list[str]
    canEdit: list[str]
    canDelete: list[str]


class MetadataOut(Out):
    tags: list[str]
    category: str | None
    priority: str | None
    dueDate: str | None


class Note(Out):
    """A note in the seed's shape; contentJson when read from the live doc"""

    id: str
    title: str
    content: str = Field(description="plain text")
    leadId: str | None
    createdBy: str
    updatedBy: str | None
    permissions: PermissionsOut
    metadata: MetadataOut
    version: int = Field(ge=1)
    createdAt: Timestamp
    lastModified: Timestamp
    # left out when the note was not read from the live doc (lists), never null
    contentJson: dict[str, Any] = Field(default=None, description="ProseMirror JSON")  # type: ignore[arg-type]
    # only on notes in the trash (`GET /?deleted=true`), never null
    deletedAt: Timestamp = Field(  # type: ignore[assignment]
        default=None, description="when the note was moved to the trash"
    )


class Pagination(Out):
    page: int = Field(ge=1)
    limit: int = Field(ge=1)
    total: int = Field(ge=0)
    pages: int = Field(ge=0)


class NoteList(Out):
    notes: list[Note]
    pagination: Pagination


class Applied(Out):
    applied: bool
    bytes: int = Field(ge=0)


def timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def note_json(record: NoteRecord, *, content: str, content_json: object = None) -> dict[str, Any]:
    """A note as `Note` describes it (built directly: this runs for every listed note)."""
    shape: dict[str, Any] = {
        "id": record.id,
        "title": record.title,
        "content": content,
        "leadId": record.lead_id,
        "createdBy": record.created_by,
        "updatedBy": record.updated_by,
        "permissions": {
            "canView": list(record.permissions.can_view),
            "canEdit": list(record.permissions.can_edit),
            "canDelete": list(record.permissions.can_delete),
        },
        "metadata": {
            "tags": list(record.metadata.tags),
            "category": record.metadata.category,
            "priority": record.metadata.priority,
            "dueDate": record.metadata.due_date,
        },
        "version": record.version,
        "createdAt": timestamp(record.created_at),
        "lastModified": timestamp(record.last_modified),
    }
    if content_json is not None:
        shape["contentJson"] = content_json
    if record.deleted_at is not None:
        shape["deletedAt"] = timestamp(record.deleted_at)
    return shape


def view_json(view: NoteView) -> dict[str, Any]:
    """The note as `GET /:id` shows it: content within the safe schema, whatever Yjs
    clients wrote (the plain text is that of the safe content)."""
    safe = sanitize(view.json)
    return note_json(view.record, content=json_to_text(safe), content_json=safe)
