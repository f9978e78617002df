"""Plain values that cross the storage boundary: frozen, slotted, driver-free."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class Unset(enum.Enum):
    """Marks an `update_note` argument that was not given (None is a real value)."""

    UNSET = "UNSET"


UNSET = Unset.UNSET


@dataclass(frozen=True, slots=True)
class Permissions:
    """User ids per right, in the seed's shape; stored one row per note and user.

    Edit implies view, so after a round trip every editor is also listed in
    `can_view`; ids come back sorted.
    """

    can_view: tuple[str, ...] = ()
    can_edit: tuple[str, ...] = ()
    can_delete: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NoteMetadata:
    """The seed's `metadata` object; `due_date` is kept as the ISO text given."""

    tags: tuple[str, ...] = ()
    category: str | None = None
    priority: str | None = None
    due_date: str | None = None


EMPTY_PERMISSIONS = Permissions()
EMPTY_METADATA = NoteMetadata()


@dataclass(frozen=True, slots=True)
class NoteRecord:
    id: str
    title: str
    lead_id: str | None
    created_by: str
    updated_by: str | None
    permissions: Permissions
    metadata: NoteMetadata
    content_text: str
    version: int
    created_at: datetime
    last_modified: datetime
    #: when the note was moved to the trash; None for a live note
    deleted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: str
    name: str | None = None
    email: str | None = None
    roles: tuple[str, ...] = ()
    #: False: the user opted out of notification e-mail
    email_notifications: bool = True


@dataclass(frozen=True, slots=True)
class NoteAccess:
    """One user's rights on one note, from the note's own data only.

    Roles (`admin`, `service`) are the caller's business: storage does not
    know about them.
    """

    owner: bool
    can_view: bool
    can_edit: bool
    can_delete: bool


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A doc's stored state; `position` is the log position folded into it (opaque)."""

    state: bytes
    state_vector: bytes
    position: str
