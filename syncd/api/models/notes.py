"""What the notes routes take, in the seed's JSON shape: `POST`/`PUT` bodies (checked here,
content included), the Yjs update body and the list query. What they answer is in
`note_views`."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from syncd.api.models._base import Body, NotBlank, name_field, text_field
from syncd.api.models.content import JSON_VALUE_REF, KEY, PmDoc, bounded_json
from syncd.content import CheckedDoc, ContentError, check_doc, text_to_json
from syncd.ids import NOTE_ID_MAX, NOTE_ID_PATTERN, is_note_id
from syncd.storage import NoteMetadata, Permissions

MAX_TITLE = 500
MAX_IDS = 1000
MAX_ID_LENGTH = 200
MAX_TAGS = 50
MAX_TAG_LENGTH = 100
MAX_TEXT = 1_000_000
#: standard base64 with its padding, as `base64.b64decode(validate=True)` takes it
BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
_BASE64 = re.compile(BASE64[:-1] + r"\Z")


def _note_id(value: str) -> str:
    if not is_note_id(value):
        raise PydanticCustomError("note_id", "must match {pattern}", {"pattern": NOTE_ID_PATTERN})
    return value


#: a note id as `syncd.ids` defines it (path parameters, bodies)
NoteId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=NOTE_ID_MAX,
        description="letters, digits, `_` and `-`",
        json_schema_extra={"pattern": NOTE_ID_PATTERN},
    ),
    AfterValidator(_note_id),
]
UserId = Annotated[str, name_field(MAX_ID_LENGTH), NotBlank]
Title = Annotated[str, name_field(MAX_TITLE), NotBlank]
Tag = Annotated[str, name_field(MAX_TAG_LENGTH), NotBlank]


def _iso_date(value: str) -> str:
    try:
        # RFC 3339 allows a lower-case `t` and `z`; Python reads neither
        dt.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise PydanticCustomError("date", "must be an ISO 8601 date") from None
    return value


_DUE = {"type": "string", "maxLength": 40, "description": "ISO 8601 date or date and time"}
DueDate = Annotated[
    str,
    Field(max_length=40),
    AfterValidator(_iso_date),
    WithJsonSchema(
        {"anyOf": [{**_DUE, "format": "date"}, {**_DUE, "format": "date-time"}]},
        mode="validation",
    ),
]


class PermissionsIn(Body):
    canView: list[UserId] | None = Field(default=None, max_length=MAX_IDS)
    canEdit: list[UserId] | None = Field(default=None, max_length=MAX_IDS)
    canDelete: list[UserId] | None = Field(default=None, max_length=MAX_IDS)

    def parse(self) -> Permissions:
        return Permissions(
            can_view=tuple(dict.fromkeys(self.canView or ())),
            can_edit=tuple(dict.fromkeys(self.canEdit or ())),
            can_delete=tuple(dict.fromkeys(self.canDelete or ())),
        )


class MetadataIn(Body):
    tags: list[Tag] | None = Field(default=None, max_length=MAX_TAGS)
    category: Annotated[str, name_field(100), NotBlank] | None = None
    priority: Annotated[str, name_field(50), NotBlank] | None = None
    dueDate: DueDate | None = None

    def parse(self) -> NoteMetadata:
        return NoteMetadata(
            tags=tuple(dict.fromkeys(self.tags or ())),
            category=self.category,
            priority=self.priority,
            due_date=self.dueDate,
        )


def _open_body(schema: dict[str, Any]) -> None:
    # unknown keys are ignored, as the seed's API did (clients send whole note objects
    # back), but their values obey the rules of every body; and content comes one way
    schema["additionalProperties"] = JSON_VALUE_REF
    schema["propertyNames"] = KEY
    schema["anyOf"] = [
        {"type": "object", "properties": {name: {"type": "null"}}}
        for name in ("content", "contentJson")
    ]


class _NoteFields(Body):
    model_config = ConfigDict(extra="allow", json_schema_extra=_open_body)

    leadId: UserId | None = None
    permissions: PermissionsIn | None = None
    metadata: MetadataIn | None = None
    content: Annotated[str, text_field(MAX_TEXT, description="plain text")] | None = None
    contentJson: PmDoc | None = None
    _doc: CheckedDoc | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _one_content(self) -> _NoteFields:
        if self.__pydantic_extra__:
            bounded_json(self.__pydantic_extra__)
        if self.content is not None:
            if self.contentJson is not None:
                raise PydanticCustomError("content", "give either content or contentJson, not both")
            try:
                self._doc = check_doc(text_to_json(self.content))
            except ContentError as exc:
                reason = {"reason": str(exc)}
                raise PydanticCustomError("content", "content: {reason}", reason) from None
        else:
            self._doc = self.contentJson
        return self

    @property
    def doc(self) -> CheckedDoc | None:
        """The new content, checked once: from `content` (plain text) or `contentJson`."""
        return self._doc


class CreateNote(_NoteFields):
    id: NoteId | None = None
    title: Title


class UpdateNote(_NoteFields):
    # may be left out, but not be null: a note always has a title
    title: Title = None  # type: ignore[assignment]

    def changes(self) -> dict[str, Any]:
        """The fields given, as `NoteService.update` keywords (content aside)."""
        given = self.model_fields_set
        changes: dict[str, Any] = {}
        if "title" in given:
            changes["title"] = self.title.strip()
        if "leadId" in given:
            changes["lead_id"] = self.leadId
        if "metadata" in given:
            changes["metadata"] = (self.metadata or MetadataIn()).parse()
        if "permissions" in given:
            changes["permissions"] = (self.permissions or PermissionsIn()).parse()
        return changes


def _base64(value: object) -> bytes:
    if not isinstance(value, str) or not value:
        raise PydanticCustomError("base64", "must be a base64 string")
    if _BASE64.match(value) is None:
        raise PydanticCustomError("base64", "is not valid base64")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise PydanticCustomError("base64", "is not valid base64") from None


class YjsUpdate(Body):
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"additionalProperties": JSON_VALUE_REF, "propertyNames": KEY},
    )

    update: Annotated[
        bytes,
        PlainValidator(_base64),
        WithJsonSchema(
            {
                "type": "string",
                "minLength": 1,
                "pattern": BASE64,
                "description": "a Yjs update (v1), base64; bounded by the body limit (413)",
            },
            mode="validation",
        ),
    ]

    @model_validator(mode="after")
    def _bounded(self) -> YjsUpdate:
        if self.__pydantic_extra__:
            bounded_json(self.__pydantic_extra__)
        return self


class ListQuery(Body):
    leadId: Annotated[str, text_field(MAX_ID_LENGTH)] | None = None
    q: Annotated[str, text_field(200, description="words of the title or content")] | None = None
    tag: Annotated[str, text_field(MAX_TAG_LENGTH)] | None = None
    category: Annotated[str, text_field(100)] | None = None
    priority: Annotated[str, text_field(50)] | None = None
    page: int = Field(default=1, ge=1, le=1_000_000)
    limit: int = Field(default=20, ge=1, le=100)
    deleted: bool = Field(
        default=False,
        description="true: the notes in the trash that the caller may delete (and restore)",
    )


class DeleteQuery(Body):
    permanent: bool = Field(
        default=False,
        description="true: purge at once, live or from the trash (role admin only)",
    )
