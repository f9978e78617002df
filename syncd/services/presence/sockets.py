"""The Socket.IO sockets of this instance: whose they are and which notes they joined.

The Socket.IO gateway (`syncd.transport.socketio`) records here; the presence hub reads
it (online markers, `/socket-stats`), so neither holds a reference to the other.
"""

from __future__ import annotations

from collections import Counter
from typing import Any


class SocketDirectory:
    def __init__(self) -> None:
        self._users: dict[str, str] = {}
        self._notes: dict[str, set[str]] = {}

    def connected(self, sid: str, user_id: str) -> None:
        self._users[sid] = user_id
        self._notes[sid] = set()

    def disconnected(self, sid: str) -> None:
        self._users.pop(sid, None)
        self._notes.pop(sid, None)

    def joined(self, sid: str, note_id: str) -> None:
        self._notes.setdefault(sid, set()).add(note_id)

    def left(self, sid: str, note_id: str) -> None:
        self._notes.get(sid, set()).discard(note_id)

    def users(self) -> dict[str, int]:
        """User id -> how many sockets they have here."""
        return dict(Counter(self._users.values()))

    def stats(self) -> dict[str, Any]:
        """This instance's Socket.IO counts, as `/socket-stats` shows them."""
        users = len(set(self._users.values()))
        notes = len(set().union(*self._notes.values())) if self._notes else 0
        return {
            "connections": len(self._users),
            "namespaces": {"/": len(self._users)},
            "rooms": users + notes,
            "noteRooms": notes,
            "users": users,
        }
