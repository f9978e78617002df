"""What happens to a note, as typed events: services publish them, subscribers react.

Each kind is a frozen dataclass with the note's id first. Events that carry a live `Room`
or `Peer` are for subscribers in this process only; the others are plain data, ready for
the subscribers that will send them elsewhere (webhooks, AMQP).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from syncd.auth import Principal
from syncd.room import Peer, Room
from syncd.storage import NoteRecord, NotificationRecord, SessionRecord, VersionRecord


@dataclass(frozen=True, slots=True)
class NoteEvent:
    note_id: str
    #: published on the path of every connection or keystroke: only synchronous
    #: subscribers that do no I/O, or queued ones, may take it (checked at `subscribe`)
    hot: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class NoteCreated(NoteEvent):
    record: NoteRecord
    by: Principal


@dataclass(frozen=True, slots=True)
class NoteUpdated(NoteEvent):
    """The note's row changed (title, lead, metadata, permissions) by a REST call;
    `before`: the row as it was (who could view it then: list views tell those who lost
    the right)."""

    record: NoteRecord
    before: NoteRecord


@dataclass(frozen=True, slots=True)
class NoteShared(NoteEvent):
    """Users gained view or edit rights (created with them, or added by an update)."""

    record: NoteRecord
    user_ids: tuple[str, ...]
    by: Principal


@dataclass(frozen=True, slots=True)
class PermissionsChanged(NoteEvent):
    """The note's rights changed; `remote`: on another instance (relayed by the bus)."""

    remote: bool = False


@dataclass(frozen=True, slots=True)
class NoteDeleted(NoteEvent):
    """The note left every view: moved to the trash, or purged (`permanent`). `record`:
    the row as it was, on the instance that deleted it (None when `remote`)."""

    remote: bool = False
    record: NoteRecord | None = None
    permanent: bool = False


@dataclass(frozen=True, slots=True)
class NoteRestored(NoteEvent):
    """The note came back from the trash with its content, versions and rights; `record`
    and `by` on the instance that restored it (None when `remote`)."""

    remote: bool = False
    record: NoteRecord | None = None
    by: Principal | None = None


@dataclass(frozen=True, slots=True)
class ContentEdited(NoteEvent):
    """A server-side edit (REST content, a Yjs update posted, a restore) by `editor`."""

    editor: str


@dataclass(frozen=True, slots=True)
class ContentChanged(NoteEvent):
    """A checkpoint stored the room's doc (at most every `SYNCD_COMPACT_INTERVAL` and when
    the last peer leaves): the point to look at its content."""

    room: Room


@dataclass(frozen=True, slots=True)
class PeerJoined(NoteEvent):
    """A y-websocket connection joined the note's room on this instance."""

    room: Room
    peer: Peer
    hot: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class PeerLeft(NoteEvent):
    """The connection left (closed, dropped or revoked)."""

    room: Room
    peer: Peer
    hot: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class UserJoined(NoteEvent):
    """A user appeared on the note, on any instance and transport (presence bookkeeping);
    `sid`: the Socket.IO socket that joined, not told about itself."""

    user_id: str
    name: str | None
    source: str
    sid: str | None = None


@dataclass(frozen=True, slots=True)
class UserLeft(NoteEvent):
    user_id: str
    name: str | None
    source: str
    sid: str | None = None


@dataclass(frozen=True, slots=True)
class SessionStarted(NoteEvent):
    session_id: str


@dataclass(frozen=True, slots=True)
class SessionEnded(NoteEvent):
    """`stale`: ended for lack of live connections (its instance died or stopped before
    its bookkeeping was done), so nothing took the version its end calls for yet."""

    session: SessionRecord
    stale: bool = False


@dataclass(frozen=True, slots=True)
class VersionTaken(NoteEvent):
    version: VersionRecord


@dataclass(frozen=True, slots=True)
class Mention(NoteEvent):
    """Users newly @mentioned in the note's content, by `by` (None: unknown editor)."""

    user_ids: tuple[str, ...]
    by: str | None


@dataclass(frozen=True, slots=True)
class NotificationCreated(NoteEvent):
    """A notification was stored for a user; `note_id` is its note's, or "" for one about
    no note (a service's own)."""

    record: NotificationRecord


#: every kind (for subscribers that take them all, like metrics); a new kind goes here too
ALL_KINDS: tuple[type[NoteEvent], ...] = (
    NoteCreated,
    NoteUpdated,
    NoteShared,
    PermissionsChanged,
    NoteDeleted,
    NoteRestored,
    ContentEdited,
    ContentChanged,
    PeerJoined,
    PeerLeft,
    UserJoined,
    UserLeft,
    SessionStarted,
    SessionEnded,
    VersionTaken,
    Mention,
    NotificationCreated,
)
