"""JSON schemas of the notes API: what `/openapi.json` documents and what request bodies
and queries are checked against before `note_shapes` parses their meaning (ISO dates,
ProseMirror)."""

from __future__ import annotations

from syncd.api.content_schemas import JSON_VALUE, KEY, PM_DOC
from syncd.api.note_shapes import (
    MAX_ID_LENGTH,
    MAX_IDS,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    MAX_TEXT,
    MAX_TITLE,
)
from syncd.api.openapi import path_parameter
from syncd.api.schema import (
    Schema,
    array,
    at_most_one,
    boolean,
    component,
    integer,
    nullable,
    obj,
    string,
    text,
)
from syncd.ids import NOTE_ID_MAX, NOTE_ID_PATTERN

_ID = text(max_length=MAX_ID_LENGTH, blank=False)
_IDS = nullable(array(_ID, max_items=MAX_IDS))
_TIME = string(fmt="date-time")
#: a note id as `syncd.ids` defines it (path parameters, bodies)
NOTE_ID = string(
    min_length=1,
    max_length=NOTE_ID_MAX,
    pattern=NOTE_ID_PATTERN,
    description="letters, digits, `_` and `-`",
)
path_parameter("note_id", NOTE_ID)

PERMISSIONS_IN = nullable(obj({"canView": _IDS, "canEdit": _IDS, "canDelete": _IDS}))
_DUE = {"maxLength": 40, "description": "ISO 8601 date or date and time"}
METADATA_IN = nullable(
    obj(
        {
            "tags": nullable(
                array(text(max_length=MAX_TAG_LENGTH, blank=False), max_items=MAX_TAGS)
            ),
            "category": nullable(text(max_length=100, blank=False)),
            "priority": nullable(text(max_length=50, blank=False)),
            "dueDate": {
                "anyOf": [
                    {"type": "string", "format": "date", **_DUE},
                    {"type": "string", "format": "date-time", **_DUE},
                    {"type": "null"},
                ]
            },
        }
    )
)
_CONTENT_IN = {
    "content": nullable(text(max_length=MAX_TEXT, description="plain text")),
    "contentJson": nullable(PM_DOC),
}
_FIELDS_IN = {
    "title": text(max_length=MAX_TITLE, blank=False),
    "leadId": nullable(_ID),
    "permissions": PERMISSIONS_IN,
    "metadata": METADATA_IN,
    **_CONTENT_IN,
}


def _content_once(schema: Schema) -> Schema:
    # both given, the server would have to pick one
    return at_most_one(
        schema, ("content", "contentJson"), "give either content or contentJson, not both"
    )


# Unknown keys are ignored, as the seed's API did: clients send whole note objects back
# (their values still obey the rules of every body).
CREATE_NOTE = _content_once(
    obj(
        {"id": nullable(NOTE_ID), **_FIELDS_IN},
        required=["title"],
        additional=JSON_VALUE,
        keys=KEY,
    )
)
UPDATE_NOTE = _content_once(obj(_FIELDS_IN, additional=JSON_VALUE, keys=KEY))
#: standard base64 with its padding, as `base64.b64decode(validate=True)` takes it
BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
YJS_UPDATE = obj(
    {
        "update": string(
            min_length=1,
            pattern=BASE64,
            description="a Yjs update (v1), base64; bounded by the body limit (413)",
        )
    },
    required=["update"],
    additional=JSON_VALUE,
    keys=KEY,
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
    "leadId": text(max_length=MAX_ID_LENGTH),
    "q": text(max_length=200, description="words of the title or content"),
    "tag": text(max_length=MAX_TAG_LENGTH),
    "category": text(max_length=100),
    "priority": text(max_length=50),
    "page": integer(minimum=1, maximum=1_000_000),
    "limit": integer(minimum=1, maximum=100),
}
APPLIED = obj({"applied": boolean(), "bytes": integer(minimum=0)}, required=("applied", "bytes"))
