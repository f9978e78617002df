"""The seed's JSON shape of a note, in and out, with validation that names the bad field."""

from __future__ import annotations

import datetime as dt
from typing import Any

from syncd.api.errors import ApiError
from syncd.content import (
    ContentError,
    UnsafeContent,
    check_safe,
    json_to_text,
    sanitize,
    text_to_json,
    validate_pm_json,
)
from syncd.notes import NoteView
from syncd.storage import NoteMetadata, NoteRecord, Permissions

MAX_TITLE = 500
MAX_IDS = 1000
MAX_ID_LENGTH = 200
MAX_TAGS = 50
MAX_TAG_LENGTH = 100
MAX_TEXT = 1_000_000


def invalid(message: str) -> ApiError:
    return ApiError(422, message)


def _string(value: object, name: str, *, max_length: int, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise invalid(f"{name} must be a string")
    if not allow_empty and not value.strip():
        raise invalid(f"{name} must not be empty")
    if len(value) > max_length:
        raise invalid(f"{name} is longer than {max_length} characters")
    return value


def _optional_string(value: object, name: str, *, max_length: int) -> str | None:
    return None if value is None else _string(value, name, max_length=max_length)


def _id_list(value: object, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_IDS:
        raise invalid(f"{name} must be a list of at most {MAX_IDS} user ids")
    ids = [_string(v, f"{name}[]", max_length=MAX_ID_LENGTH) for v in value]
    return tuple(dict.fromkeys(ids))


def parse_permissions(value: object) -> Permissions:
    if not isinstance(value, dict):
        raise invalid("permissions must be an object with canView, canEdit, canDelete")
    unknown = set(value) - {"canView", "canEdit", "canDelete"}
    if unknown:
        raise invalid(f"permissions has unknown keys: {', '.join(sorted(unknown))}")
    return Permissions(
        can_view=_id_list(value.get("canView"), "permissions.canView"),
        can_edit=_id_list(value.get("canEdit"), "permissions.canEdit"),
        can_delete=_id_list(value.get("canDelete"), "permissions.canDelete"),
    )


def parse_metadata(value: object) -> NoteMetadata:
    if not isinstance(value, dict):
        raise invalid("metadata must be an object")
    unknown = set(value) - {"tags", "category", "priority", "dueDate"}
    if unknown:
        raise invalid(f"metadata has unknown keys: {', '.join(sorted(unknown))}")
    tags = value.get("tags") or []
    if not isinstance(tags, list) or len(tags) > MAX_TAGS:
        raise invalid(f"metadata.tags must be a list of at most {MAX_TAGS} strings")
    due = _optional_string(value.get("dueDate"), "metadata.dueDate", max_length=40)
    if due is not None:
        try:
            # RFC 3339 allows a lower-case `t` and `z`; Python reads neither
            dt.datetime.fromisoformat(due.upper().replace("Z", "+00:00"))
        except ValueError:
            raise invalid("metadata.dueDate must be an ISO 8601 date") from None
    return NoteMetadata(
        tags=tuple(
            dict.fromkeys(_string(t, "metadata.tags[]", max_length=MAX_TAG_LENGTH) for t in tags)
        ),
        category=_optional_string(value.get("category"), "metadata.category", max_length=100),
        priority=_optional_string(value.get("priority"), "metadata.priority", max_length=50),
        due_date=due,
    )


def parse_content(body: dict[str, Any]) -> dict[str, object] | None:
    """`content` (plain text) or `contentJson` (ProseMirror JSON) as ProseMirror JSON."""
    has_text = body.get("content") is not None
    has_json = body.get("contentJson") is not None
    if has_text and has_json:
        raise invalid("give either content or contentJson, not both")
    if has_text:
        text = _string(body["content"], "content", max_length=MAX_TEXT, allow_empty=True)
        return text_to_json(text)
    if has_json:
        try:
            content = validate_pm_json(body["contentJson"])
            check_safe(content, "/contentJson")
        except UnsafeContent as exc:
            raise ApiError(422, f"contentJson: {exc.reason}", pointer=exc.pointer) from None
        except ContentError as exc:
            raise invalid(f"contentJson: {exc}") from None
        return content
    return None


def parse_title(value: object) -> str:
    return _string(value, "title", max_length=MAX_TITLE).strip()


def parse_lead_id(value: object) -> str | None:
    return _optional_string(value, "leadId", max_length=MAX_ID_LENGTH)


def _timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def note_json(record: NoteRecord, *, content: str, content_json: object = None) -> dict[str, Any]:
    """A note in the seed's shape."""
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
        "createdAt": _timestamp(record.created_at),
        "lastModified": _timestamp(record.last_modified),
    }
    if content_json is not None:
        shape["contentJson"] = content_json
    return shape


def view_json(view: NoteView) -> dict[str, Any]:
    """The note as `GET /:id` shows it: content within the safe schema, whatever Yjs
    clients wrote (the plain text is that of the safe content)."""
    safe = sanitize(view.json)
    return note_json(view.record, content=json_to_text(safe), content_json=safe)
