"""The presence and session bookkeeping not yet done, coalesced per note.

Connections come and go on the connection path, synchronously; the hub's worker does the
I/O later, in passes. Between two passes, each note keeps one `NoteChanges`: who joined
(participants of its session), whose presence changed (announcements), which mirrored
entries to retract and the statistics of connections that left. A note that sees a
thousand joins and leaves costs one entry, so the backlog is bounded by the number of
notes touched between passes, not by events; and an entry holds only ids and numbers,
never a room or a peer, so a closed connection's memory goes at once.

What a pass does is decided from the state at that moment (who is connected now, who was
announced), not replayed event by event: a user who joined and left before the pass is
recorded as a participant but never announced.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from syncd.services.presence.presence import Connection


@dataclass(frozen=True, slots=True)
class Farewell:
    """How to announce a user's leave: their last connection to the note."""

    name: str | None
    source: str
    sid: str | None


@dataclass(slots=True)
class NoteChanges:
    """What happened on one note since the last pass."""

    #: users who connected: participants of the note's session
    joined: set[str] = field(default_factory=set)
    #: users whose presence here changed, in the order they changed (announcements)
    users: dict[str, None] = field(default_factory=dict)
    #: users who left, with how to announce it
    farewells: dict[str, Farewell] = field(default_factory=dict)
    #: connection ids mirrored to Redis that left (to retract)
    gone: list[str] = field(default_factory=list)
    #: updates and bytes of connections that left, not yet added to the session
    updates: int = 0
    size: int = 0
    #: a connection left (or an end failed): the pass ends the session if nobody is left.
    #: Only then: a note whose last connection left during a pass keeps its session until
    #: the next pass has added that connection's statistics to it.
    left: bool = False

    def touch(self, user_id: str) -> None:
        self.users.pop(user_id, None)
        self.users[user_id] = None

    def merge(self, later: NoteChanges) -> None:
        """Fold `later` (changes made after these) into these."""
        self.joined |= later.joined
        for user_id in later.users:
            self.touch(user_id)
        self.farewells.update(later.farewells)
        self.gone += later.gone
        self.updates += later.updates
        self.size += later.size
        self.left |= later.left


class Backlog:
    """Pending `NoteChanges` per note, at most `limit` notes (beyond it, changes of
    further notes are dropped and counted: the refresh and the idle expiry repair the
    sessions, and the announcements are lost)."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._notes: dict[str, NoteChanges] = {}
        #: changes dropped because the backlog was full, since the last `take`
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._notes)

    def __bool__(self) -> bool:
        return bool(self._notes)

    def _entry(self, note_id: str) -> NoteChanges | None:
        entry = self._notes.get(note_id)
        if entry is None:
            if len(self._notes) >= self.limit:
                self.dropped += 1
                return None
            entry = self._notes[note_id] = NoteChanges()
        return entry

    def joined(self, conn: Connection) -> None:
        entry = self._entry(conn.note_id)
        if entry is not None:
            entry.joined.add(conn.user_id)
            entry.touch(conn.user_id)

    def left(self, conn: Connection, updates: int = 0, size: int = 0) -> None:
        entry = self._entry(conn.note_id)
        if entry is None:
            return
        entry.touch(conn.user_id)
        entry.left = True
        entry.farewells[conn.user_id] = Farewell(conn.name, conn.source, conn.sid)
        if conn.mirrored:
            entry.gone.append(conn.conn_id)
        entry.updates += updates
        entry.size += size

    def counted(self, note_id: str, updates: int, size: int) -> None:
        """Statistics that could not be recorded (retried with the next pass)."""
        entry = self._entry(note_id)
        if entry is not None:
            entry.updates += updates
            entry.size += size

    def take(self) -> dict[str, NoteChanges]:
        """Everything pending, for one pass; the backlog starts empty again."""
        taken, self._notes = self._notes, {}
        self.dropped = 0
        return taken

    def restore(self, changes: dict[str, NoteChanges]) -> None:
        """Put back what a failed pass could not do, before whatever came since."""
        for note_id, earlier in changes.items():
            later = self._notes.pop(note_id, None)
            if later is not None:
                earlier.merge(later)
            self._notes[note_id] = earlier
