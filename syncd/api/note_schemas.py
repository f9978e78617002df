"""JSON schemas of the notes API: what `/openapi.json` documents and what request bodies
are checked against before `note_shapes` parses their meaning (ISO dates, ProseMirror)."""

from __future__ import annotations

from syncd.api.note_shapes import (
    MAX_ID_LENGTH,
    MAX_IDS,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    MAX_TEXT,
    MAX_TITLE,
)
from syncd.api.schema import (
    array,
    boolean,
    component,
    integer,
    nullable,
    obj,
    string,
)
from syncd.ids import NOTE_ID_MAX, NOTE_ID_PATTERN

_ID = string(min_length=1, max_length=MAX_ID_LENGTH)
#: a note id wherever one comes in: the `id` of a new note, `{note_id}` in a path, `noteId`
NOTE_ID = string(
    min_length=1,
    max_length=NOTE_ID_MAX,
    pattern=NOTE_ID_PATTERN,
    description="letters, digits, `_` and `-`",
)
_IDS = nullable(array(_ID, max_items=MAX_IDS))
_TIME = string(fmt="date-time")

PERMISSIONS_IN = nullable(obj({"canView": _IDS, "canEdit": _IDS, "canDelete": _IDS}))
METADATA_IN = nullable(
    obj(
        {
            "tags": nullable(
                array(string(min_length=1, max_length=MAX_TAG_LENGTH), max_items=MAX_TAGS)
            ),
            "category": nullable(string(min_length=1, max_length=100)),
            "priority": nullable(string(min_length=1, max_length=50)),
            "dueDate": nullable(string(min_length=1, max_length=40, description="ISO 8601")),
        }
    )
)
_CONTENT_IN = {
    "content": nullable(string(max_length=MAX_TEXT, description="plain text")),
    "contentJson": nullable(
        obj({"type": string()}, required=["type"], additional=True, description="ProseMirror JSON")
    ),
}
_FIELDS_IN = {
    "title": string(min_length=1, max_length=MAX_TITLE),
    "leadId": nullable(_ID),
    "permissions": PERMISSIONS_IN,
    "metadata": METADATA_IN,
    **_CONTENT_IN,
}
# Unknown keys are ignored, as the seed's API did: clients send whole note objects back.
CREATE_NOTE = obj({"id": nullable(NOTE_ID), **_FIELDS_IN}, required=["title"], additional=True)
UPDATE_NOTE = obj(_FIELDS_IN, additional=True)
YJS_UPDATE = obj(
    {"update": string(min_length=1, description="a Yjs update, base64")},
    required=["update"],
    additional=True,
)

_NOTE_FIELDS = {
    "id": string(),
    "title": string(),
    "content": string(description="plain text"),
    "leadId": nullable(string()),
    "createdBy": string(),
    "updatedBy": nullable(string()),
    "permissions": obj(
        {"canView": array(string()), "canEdit": array(string()), "canDelete": array(string())},
        required=("canView", "canEdit", "canDelete"),
    ),
    "metadata": obj(
        {
            "tags": array(string()),
            "category": nullable(string()),
            "priority": nullable(string()),
            "dueDate": nullable(string()),
        },
        required=("tags", "category", "priority", "dueDate"),
    ),
    "version": integer(minimum=1),
    "createdAt": _TIME,
    "lastModified": _TIME,
}
NOTE = component(
    "Note",
    obj(
        {**_NOTE_FIELDS, "contentJson": obj({}, additional=True, description="ProseMirror JSON")},
        required=_NOTE_FIELDS,
        description="A note in the seed's shape; contentJson when read from the live doc",
    ),
)
NOTE_LIST = obj(
    {
        "notes": array(NOTE),
        "pagination": obj(
            {
                "page": integer(minimum=1),
                "limit": integer(minimum=1),
                "total": integer(minimum=0),
                "pages": integer(minimum=0),
            },
            required=("page", "limit", "total", "pages"),
        ),
    },
    required=("notes", "pagination"),
)
LIST_QUERY = {
    "leadId": string(),
    "q": string(),
    "tag": string(),
    "category": string(),
    "priority": string(),
    "page": integer(minimum=1, maximum=1_000_000),
    "limit": integer(minimum=1, maximum=100),
}
APPLIED = obj({"applied": boolean(), "bytes": integer(minimum=0)}, required=("applied", "bytes"))
