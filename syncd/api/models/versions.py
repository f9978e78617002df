"""Bodies of the version history routes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import Field

from syncd.api.models._base import Body, Out, Timestamp, text_field
from syncd.storage import VersionRecord

MAX_LABEL = 200
#: version numbers are 32-bit integers in storage; anything above names no version
MAX_NUMBER = 2**31 - 1
VersionNumber = Annotated[int, Field(ge=1, le=MAX_NUMBER)]


class Label(Body):
    label: Annotated[str, text_field(MAX_LABEL)] | None = None

    @property
    def text(self) -> str | None:
        """The label, stripped; None when blank."""
        return self.label.strip() or None if self.label is not None else None


class DiffQuery(Body):
    against: VersionNumber | None = None


class Version(Out):
    """A stored version; size is the byte size of its Yjs state"""

    number: int = Field(ge=1)
    label: str | None
    createdAt: Timestamp
    createdBy: str | None
    authors: list[str]
    size: int = Field(ge=0)
    automatic: bool
    restoredFrom: int | None = Field(ge=1)


class VersionList(Out):
    versions: list[Version]


class VersionContent(Version):
    content: str = Field(description="plain text")
    contentJson: dict[str, Any] = Field(description="ProseMirror JSON")


class VersionDiff(Out):
    number: int = Field(ge=1)
    against: int | None = Field(ge=1)
    diff: str = Field(description="unified diff, line based")
    added: list[str]
    removed: list[str]


def timestamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def version_json(record: VersionRecord) -> dict[str, Any]:
    return {
        "number": record.number,
        "label": record.label,
        "createdAt": timestamp(record.created_at),
        "createdBy": record.created_by,
        "authors": list(record.authors),
        "size": record.size,
        "automatic": record.automatic,
        "restoredFrom": record.restored_from,
    }
