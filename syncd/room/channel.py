"""The one-screen contract between a room and a connection: the room never sees ASGI."""

from __future__ import annotations

from typing import Protocol


class Channel(Protocol):
    """One client connection as the room sees it."""

    @property
    def closed(self) -> bool:
        """True once the connection is closing or closed; sends are then dropped."""
        ...

    async def send(self, frame: bytes) -> None:
        """Send one binary frame; raises `ConnectionError` if the peer is gone."""
        ...

    async def close(self, code: int, reason: str = "") -> None:
        """Close with a WebSocket close code; idempotent."""
        ...
