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

    def send_now(self, frame: bytes) -> bool:
        """Send one binary frame without waiting, if the connection takes it now.

        True: sent (or dropped, the channel being closed); False: nothing was done and
        the caller awaits `send`, which waits out backpressure. A fan-out pass to a
        thousand peers thus costs no await per peer while their sockets keep up.
        """
        ...

    def send_all_now(self, frames: tuple[bytes, ...]) -> bool:
        """`send_now` for several frames in this order, all or none: a pass that sends a
        peer an update and a cursor move makes one transport write (one syscall), not
        one per frame. The same tuple may go to many peers (the transport can reuse what
        it built for the last one)."""
        ...

    async def close(self, code: int, reason: str = "") -> None:
        """Close with a WebSocket close code; idempotent."""
        ...
