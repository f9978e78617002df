"""The typed events interface: what happens to a note (`kinds`) and the bus that carries
it from the services that publish to the subscribers registered in `syncd.wiring`."""

from syncd.services.events.bus import EventBus
from syncd.services.events.kinds import (
    ALL_KINDS,
    ContentChanged,
    ContentEdited,
    Mention,
    NoteCreated,
    NoteDeleted,
    NoteEvent,
    NoteRestored,
    NoteShared,
    NoteUpdated,
    NotificationCreated,
    PeerJoined,
    PeerLeft,
    PermissionsChanged,
    SessionEnded,
    SessionStarted,
    UserJoined,
    UserLeft,
    VersionTaken,
)

__all__ = [
    "ALL_KINDS",
    "ContentChanged",
    "ContentEdited",
    "EventBus",
    "Mention",
    "NoteCreated",
    "NoteDeleted",
    "NoteEvent",
    "NoteRestored",
    "NoteShared",
    "NoteUpdated",
    "NotificationCreated",
    "PeerJoined",
    "PeerLeft",
    "PermissionsChanged",
    "SessionEnded",
    "SessionStarted",
    "UserJoined",
    "UserLeft",
    "VersionTaken",
]
