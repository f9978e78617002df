"""Bodies of the notification routes."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from syncd.api.models._base import Body, Out, Timestamp, text_field
from syncd.api.models.content import JsonObject
from syncd.api.models.notes import NoteId

MAX_LIMIT = 200
_UserId = Annotated[str, text_field(200, min_length=1)]
Category = Annotated[str, text_field(100)]


def _recipients(schema: dict[str, Any]) -> None:
    schema["description"] = "Recipients in `userIds` (or one `userId`)"
    schema["anyOf"] = [
        {"type": "object", "required": ["userIds"]},
        {"type": "object", "required": ["userId"]},
    ]


class NewNotification(Body):
    model_config = ConfigDict(json_schema_extra=_recipients)

    # one of the two is given (`_someone`); neither may be null
    userIds: list[_UserId] = Field(default=None, min_length=1, max_length=1000)  # type: ignore[arg-type]
    userId: _UserId = None  # type: ignore[assignment]
    title: Annotated[str, text_field(500, min_length=1)]
    message: Annotated[str, text_field(10_000)] = ""
    type: Annotated[str, text_field(100, min_length=1)] = "general"
    category: Annotated[str, text_field(100, min_length=1)] = "general"
    data: JsonObject = Field(default_factory=dict)
    noteId: NoteId | None = None

    @model_validator(mode="after")
    def _someone(self) -> NewNotification:
        if self.userIds is None and self.userId is None:
            message = "userIds (or userId) must name at least one user"
            raise PydanticCustomError("recipients", message)
        return self

    @property
    def recipients(self) -> list[str]:
        return self.userIds or [self.userId]


#: an opaque cursor of `syncd.api.cursors` (base64url, no padding)
Cursor = Annotated[
    str,
    Field(
        min_length=1,
        max_length=512,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="`nextCursor` of the previous page",
    ),
]


class ListQuery(Body):
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT)
    category: Category | None = None
    unread: bool | None = None
    cursor: Cursor | None = None


class CategoryQuery(Body):
    category: Category | None = None


class Notification(Out):
    id: str
    userId: str
    type: str
    category: str
    title: str
    message: str
    data: dict[str, Any]
    noteId: str | None
    actorId: str | None
    read: bool
    readAt: Timestamp | None
    createdAt: Timestamp


class NotificationList(Out):
    notifications: list[Notification]
    unreadCount: int = Field(ge=0)
    nextCursor: str | None = Field(description="`cursor` of the next page; null: no more")


class CreatedNotifications(Out):
    notifications: list[Notification]
    jobIds: list[str] = Field(
        description="The delivery job of each notification (`GET /api/jobs/:jobId`); one "
        "missing only if the job queue was unreachable (the notification is stored)"
    )


class Updated(Out):
    updated: int = Field(ge=0)
