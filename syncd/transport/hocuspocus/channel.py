"""The room's view of one opening of one document of a Hocuspocus socket, and its acks."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from syncd import metrics
from syncd.protocol.hocuspocus import encode_sync_status
from syncd.room import Room

if TYPE_CHECKING:
    from syncd.transport.hocuspocus.document import DocSession

log = logging.getLogger(__name__)

_AUTH_FRAME = 2  # a y-websocket auth frame from the room ("permission denied")


class DocChannel:
    """The room's `Channel` for one opening of a document: room frames get the document
    name put in front; a close by the room closes the document, not the socket."""

    __slots__ = ("__weakref__", "_acks", "_closed", "_owed", "doc", "room")

    def __init__(self, doc: DocSession, room: Room) -> None:
        self.doc = doc
        self.room = room
        self._closed = False
        self._owed = 0
        self._acks: asyncio.Task[None] | None = None

    @property
    def prefix(self) -> bytes:
        return self.doc.prefix

    @property
    def closed(self) -> bool:
        return self._closed or self.doc.socket.closed

    async def send(self, frame: bytes) -> None:
        if self.closed or frame[0] == _AUTH_FRAME:
            # A provider learns that it is read-only from its `authenticated` scope; the
            # y-websocket "permission denied" frame would read as "send your token".
            return
        metrics.count_frame("out", metrics.frame_type(frame), len(frame))
        await self.doc.socket.send(self.doc.prefix + frame)

    def send_now(self, frame: bytes) -> bool:
        return False  # every frame gets the document name in front: `send` builds it

    def send_all_now(self, frames: tuple[bytes, ...]) -> bool:
        return False  # as `send_now`

    async def send_raw(self, frame: bytes) -> None:
        """Send a frame that already has the document name."""
        if not self.closed:
            await self.doc.socket.send(frame)

    async def close(self, code: int, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        await self.doc.closed_by_server(self, code, reason)

    def retire(self) -> None:
        """This opening ended; acks already owed are still sent once durable."""
        self._closed = True

    def owe_ack(self) -> None:
        """Ack an applied update once the room has made it durable (the `SyncStatus`
        that lets the provider's `unsyncedChanges` reach 0)."""
        self._owed += 1
        if self._acks is None:
            self._acks = asyncio.get_running_loop().create_task(self._send_acks())

    async def _send_acks(self) -> None:
        socket = self.doc.socket
        frame = encode_sync_status(self.doc.prefix, True)
        try:
            while self._owed and not socket.closed:
                owed, self._owed = self._owed, 0
                await self.room.wait_durable()
                if self.room.gone:
                    return  # the note was deleted: its updates were dropped, never acked
                for _ in range(owed):
                    await socket.send(frame)
        except (ConnectionError, OSError, RuntimeError) as exc:
            log.info("acks for %s not sent: %s", self.doc.key, exc)
        finally:
            self._acks = None
