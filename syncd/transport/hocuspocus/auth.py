"""Authorising one document of a Hocuspocus socket, from the token in its auth message.

The same checks as the y-websocket endpoint's handshake, in the same order (note id, token,
rights, room load), but per document: a refusal answers that document with
`permissionDenied` and leaves the socket and its other documents alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from syncd.auth import AuthError, Principal
from syncd.auth.permissions import Access
from syncd.ids import is_note_id
from syncd.protocol.close_codes import (
    CLOSE_FORBIDDEN,
    CLOSE_GOING_AWAY,
    CLOSE_MALFORMED,
    CLOSE_NOT_FOUND,
    CLOSE_RATE_LIMITED,
    CLOSE_TOO_LARGE,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHORIZED,
)
from syncd.room import Room, RoomLoadError, RoomRegistry
from syncd.services.notes import NoteNotFound, NoteService
from syncd.storage import StorageError

#: the y-websocket close codes, named the way Hocuspocus names its close events; reasons
#: sent to providers start with the code so a client can branch on it
LABELS = {
    CLOSE_GOING_AWAY: "going-away",
    CLOSE_TOO_LARGE: "message-too-big",
    CLOSE_TRY_AGAIN: "try-again-later",
    CLOSE_MALFORMED: "bad-message",
    CLOSE_UNAUTHORIZED: "unauthorized",
    CLOSE_FORBIDDEN: "forbidden",
    CLOSE_NOT_FOUND: "not-found",
    CLOSE_RATE_LIMITED: "rate-limited",
}


def reason_text(code: int, reason: str) -> str:
    """`4403 forbidden: view permission revoked`: what a provider sees in permissionDenied
    and close messages."""
    return f"{code} {LABELS.get(code, 'error')}: {reason}"


class Refusal(Exception):
    """The document cannot be opened with this token; `code` is the y-websocket close code."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Grant:
    """An authorised document: the caller holds `room` and must release it."""

    principal: Principal
    access: Access
    room: Room


def verify(notes: NoteService, token: str) -> Principal:
    try:
        return notes.verify_token(token or None)
    except AuthError as exc:
        raise Refusal(CLOSE_UNAUTHORIZED, str(exc)) from None


async def authorize(notes: NoteService, rooms: RoomRegistry, token: str, note_id: str) -> Grant:
    """Check the token and the rights, then load (and hold) the room; raises `Refusal`."""
    if not is_note_id(note_id):
        raise Refusal(CLOSE_NOT_FOUND, "unknown note")
    principal = verify(notes, token)
    try:
        access = await notes.connect_access(principal, note_id)
    except NoteNotFound:
        raise Refusal(CLOSE_NOT_FOUND, "unknown note") from None
    except StorageError:
        raise Refusal(CLOSE_TRY_AGAIN, "storage unavailable, try again later") from None
    if access < Access.VIEW:
        raise Refusal(CLOSE_FORBIDDEN, "no view permission")
    try:
        room = await rooms.acquire(note_id)
    except RoomLoadError:
        raise Refusal(CLOSE_TRY_AGAIN, "note could not be loaded, try again later") from None
    return Grant(principal, access, room)
