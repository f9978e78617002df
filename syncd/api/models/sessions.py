"""Bodies of the collaborative session and presence routes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from syncd.api.models._base import Body, Out, Timestamp
from syncd.api.models.notes import NoteId


class NoteRef(Body):
    noteId: NoteId


class HistoryQuery(Body):
    limit: int = Field(default=50, ge=1, le=200)


class SessionStats(Out):
    updates: int = Field(ge=0)
    bytes: int = Field(ge=0)
    participantCount: int = Field(ge=0)
    durationSeconds: float


class CollaborativeSession(Out):
    id: str
    sessionId: str
    noteId: str
    participants: list[str]
    isActive: bool
    startedAt: Timestamp
    endedAt: Timestamp | None
    lastActivity: Timestamp
    metadata: SessionStats


class SessionList(Out):
    noteId: str
    sessions: list[CollaborativeSession]


class PresentUser(Out):
    userId: str
    name: str | None
    status: Literal["editing", "viewing", "idle"]
    cursor: Any
    selection: Any
    lastSeen: Timestamp
    connections: int = Field(ge=1)
    sources: list[Literal["websocket", "socket.io"]]


class Presence(Out):
    noteId: str
    users: list[PresentUser]
    count: int = Field(ge=0)
