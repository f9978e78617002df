"""Rooms: the live, in-memory state of docs on this instance."""

from syncd.room.backend import DocBackend, DocGone, RemoteListener
from syncd.room.channel import Channel
from syncd.room.peer import Peer
from syncd.room.registry import RoomLoadError, RoomRegistry
from syncd.room.room import Room, RoomLimits

__all__ = [
    "Channel",
    "DocBackend",
    "DocGone",
    "Peer",
    "RemoteListener",
    "Room",
    "RoomLimits",
    "RoomLoadError",
    "RoomRegistry",
]
