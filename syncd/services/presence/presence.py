"""Who is on a note right now: one entry per connection, merged per user for the API.

Local connections (y-websocket peers and Socket.IO sockets that joined a note) are read
live: a y-websocket peer's cursor and selection come from its awareness state, its status
from what it did lately. In scaled mode every instance also mirrors its entries into Redis
(`RedisPresence`), and a note's presence is this instance's live entries plus the other
instances' mirrored ones.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from syncd.room import Peer, Room
from syncd.services.presence.redis_state import RedisPresence

STATUSES = ("editing", "viewing", "idle")  # most present first


@dataclass(eq=False, slots=True)
class Connection:
    """One connection to one note on this instance."""

    conn_id: str
    note_id: str
    user_id: str
    name: str | None
    source: str  # "websocket" | "socket.io"
    can_edit: bool
    joined_at: float = field(default_factory=time.time)
    last_active: float = field(default_factory=time.time)
    last_edit: float | None = None
    cursor: Any = None
    selection: Any = None
    #: a status the client states itself (awareness field `status`)
    stated: str | None = None
    peer: Peer | None = None
    room: Room | None = None
    sid: str | None = None
    seen_updates: int = 0
    seen_awareness: str = ""
    #: the peer's update and byte counters already added to the session's statistics
    reported_updates: int = 0
    reported_bytes: int = 0
    #: its entry was written to the Redis mirror (so its leave must retract it)
    mirrored: bool = False

    def unreported(self) -> tuple[int, int]:
        """The peer's updates and bytes not yet added to the session's statistics (and
        from now on counted as added)."""
        peer = self.peer
        if peer is None:
            return 0, 0
        updates = peer.updates_in - self.reported_updates
        size = peer.bytes_in - self.reported_bytes
        self.reported_updates, self.reported_bytes = peer.updates_in, peer.bytes_in
        return updates, size

    def observe(self, now: float) -> None:
        """Pull what the live y-websocket peer did since the last look."""
        peer, room = self.peer, self.room
        if peer is None or room is None:
            return
        self.can_edit = peer.can_write  # edit rights can be taken away while connected
        if peer.updates_in != self.seen_updates:
            self.seen_updates = peer.updates_in
            self.last_edit = self.last_active = now
        states = room.awareness.states_of(peer)
        text = states[0][1] if states else ""
        if text != self.seen_awareness:
            self.seen_awareness = text
            self.last_active = now
            state = _parse(text)
            self.cursor = state.get("cursor")
            self.selection = state.get("selection")
            stated = state.get("status")
            self.stated = stated if stated in STATUSES else None

    def status(self, now: float, *, idle_after: float, edit_window: float) -> str:
        if self.stated is not None:
            return self.stated
        if now - self.last_active > idle_after:
            return "idle"
        if self.can_edit and self.last_edit is not None and now - self.last_edit <= edit_window:
            return "editing"
        return "viewing"

    def entry(self, now: float, instance_id: str, *, idle_after: float, edit_window: float) -> dict:
        self.observe(now)
        return {
            "connId": self.conn_id,
            "noteId": self.note_id,
            "userId": self.user_id,
            "name": self.name,
            "source": self.source,
            "status": self.status(now, idle_after=idle_after, edit_window=edit_window),
            "cursor": self.cursor,
            "selection": self.selection,
            "lastSeen": max(self.last_active, self.joined_at),
            "instance": instance_id,
        }


def _parse(text: str) -> dict[str, Any]:
    try:
        state = json.loads(text) if text else {}
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}


def merge_by_user(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One item per user: the most present status, the latest cursor, every source."""
    by_user: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        by_user[entry["userId"]].append(entry)
    merged = []
    for user_id, own in by_user.items():
        latest = max(own, key=lambda e: e["lastSeen"])
        with_cursor = [e for e in own if e.get("cursor") is not None]
        pointer = max(with_cursor, key=lambda e: e["lastSeen"]) if with_cursor else latest
        merged.append(
            {
                "userId": user_id,
                "name": next((e["name"] for e in own if e.get("name")), None),
                "status": min((e["status"] for e in own), key=STATUSES.index),
                "cursor": pointer.get("cursor"),
                "selection": pointer.get("selection"),
                "lastSeen": datetime.fromtimestamp(latest["lastSeen"], UTC)
                .isoformat()
                .replace("+00:00", "Z"),
                "connections": len(own),
                "sources": sorted({e["source"] for e in own}),
            }
        )
    merged.sort(key=lambda item: (STATUSES.index(item["status"]), item["userId"]))
    return merged


class PresenceBoard:
    """This instance's connections, and (scaled) their mirror in Redis."""

    def __init__(
        self,
        instance_id: str,
        *,
        remote: RedisPresence | None = None,
        ttl: float = 30.0,
        idle_after: float = 300.0,
        edit_window: float = 60.0,
    ) -> None:
        self.instance_id = instance_id
        self.remote = remote
        self.ttl = ttl
        self._idle_after = idle_after
        self._edit_window = edit_window
        self._conns: dict[str, Connection] = {}
        self._by_note: dict[str, dict[str, Connection]] = defaultdict(dict)

    def add(self, conn: Connection) -> None:
        self._conns[conn.conn_id] = conn
        self._by_note[conn.note_id][conn.conn_id] = conn

    def remove(self, conn_id: str) -> Connection | None:
        conn = self._conns.pop(conn_id, None)
        if conn is not None:
            note = self._by_note.get(conn.note_id, {})
            note.pop(conn_id, None)
            if not note:
                self._by_note.pop(conn.note_id, None)
        return conn

    def get(self, conn_id: str) -> Connection | None:
        return self._conns.get(conn_id)

    def local(self, note_id: str) -> list[Connection]:
        return list(self._by_note.get(note_id, {}).values())

    def notes(self) -> list[str]:
        return list(self._by_note)

    def users(self) -> set[str]:
        return {conn.user_id for conn in self._conns.values()}

    def __len__(self) -> int:
        return len(self._conns)

    def _entries(self, note_id: str, now: float) -> list[dict[str, Any]]:
        return [
            conn.entry(
                now, self.instance_id, idle_after=self._idle_after, edit_window=self._edit_window
            )
            for conn in self.local(note_id)
        ]

    async def entries(self, note_id: str) -> list[dict[str, Any]]:
        """Every connection to the note: live ones here, mirrored ones of other instances."""
        now = time.time()
        found = self._entries(note_id, now)
        if self.remote is not None:
            found += [
                e for e in await self.remote.read(note_id) if e.get("instance") != self.instance_id
            ]
        return found

    async def others(self, note_id: str) -> set[str]:
        """Users with a connection to the note on another instance (scaled mode)."""
        if self.remote is None:
            return set()
        return {
            str(e.get("userId"))
            for e in await self.remote.read(note_id)
            if e.get("instance") != self.instance_id
        }

    async def publish(self, note_id: str) -> None:
        """Mirror this instance's entries of the note to Redis (scaled mode)."""
        if self.remote is None:
            return
        conns = self.local(note_id)
        now = time.time()
        entries = [
            conn.entry(
                now, self.instance_id, idle_after=self._idle_after, edit_window=self._edit_window
            )
            for conn in conns
        ]
        for conn in conns:  # before the write: a leave during it must retract the entry
            conn.mirrored = True
        await self.remote.put(note_id, entries, self.ttl)

    async def retract(self, note_id: str, conn_ids: list[str]) -> None:
        if self.remote is not None and conn_ids:
            await self.remote.drop(note_id, conn_ids)
