"""One document of a Hocuspocus socket: its auth state, its peer in the room, its acks.

A document is `pending` until a token opens it (what the provider sends before that is
queued, bounded per socket), `open` while its peer is in the room, and `denied` after a
refusal or a close by the server (its writes are dropped; a new token may open it again).
Token expiry closes it and asks the provider for a fresh token: it is `pending` again, and
opening it then "resumes" (the server sends the whole doc, since the provider does not
start a new sync on its own).

The room sees a `DocChannel` (`channel.py`) per opening, so a stale close (of an earlier
opening) can never close a later one.
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING

from syncd import metrics
from syncd.auth import Principal
from syncd.auth.permissions import Access
from syncd.protocol import ProtocolError, SyncStep1, SyncStep2, SyncUpdate
from syncd.protocol.close_codes import (
    CLOSE_FORBIDDEN,
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_ERROR,
    CLOSE_NOT_FOUND,
    CLOSE_RATE_LIMITED,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHORIZED,
)
from syncd.protocol.hocuspocus import (
    SCOPE_READ_WRITE,
    SCOPE_READONLY,
    CloseDocument,
    DocMessage,
    Stateless,
    Token,
    document_prefix,
    encode_authenticated,
    encode_close,
    encode_permission_denied,
    encode_sync_status,
    encode_token_request,
)
from syncd.room import Peer
from syncd.services.events import PeerJoined, PeerLeft
from syncd.transport.hocuspocus.auth import Grant, Refusal, authorize, reason_text
from syncd.transport.hocuspocus.channel import DocChannel
from syncd.transport.hocuspocus.stateless import relay_stateless

if TYPE_CHECKING:
    from syncd.transport.hocuspocus.socket import HocuspocusSocket

log = logging.getLogger(__name__)

EMPTY_UPDATE = b"\x00\x00"
EMPTY_STATE_VECTOR = b"\x00"
#: closes that concern the whole socket, not one document: it is too slow or gone
SOCKET_CODES = frozenset(
    {CLOSE_GOING_AWAY, 1006, CLOSE_INTERNAL_ERROR, CLOSE_TRY_AGAIN, CLOSE_RATE_LIMITED}
)


class State(enum.Enum):
    PENDING = "pending"
    OPEN = "open"
    DENIED = "denied"


class DocSession:
    """One document key of one socket (`name` or `name\\0sessionId`)."""

    def __init__(self, socket: HocuspocusSocket, key: str) -> None:
        self.socket = socket
        self.key = key
        self.note_id = key.partition("\0")[0]
        self.prefix = document_prefix(key)
        self.state = State.PENDING
        self.resume = False
        self.queued: list[tuple[DocMessage, int]] = []
        self.channel: DocChannel | None = None
        self.peer: Peer | None = None
        self.principal: Principal | None = None

    # -- incoming ------------------------------------------------------------------------

    async def handle(self, message: DocMessage, size: int) -> None:
        """Process one message of this document, in the order the socket received them."""
        if isinstance(message, Token):
            await self._authenticate(message.token)
        elif isinstance(message, CloseDocument):
            self.leave()
            self.socket.forget(self)
        elif self.state is State.OPEN:
            await self._dispatch(message)
        elif self.state is State.PENDING:
            if not self.socket.queue(self, message, size):
                await self._refuse(CLOSE_RATE_LIMITED, "too much sent before authentication")
        else:
            metrics.ERRORS.labels("hocuspocus_dropped").inc()

    async def _dispatch(self, message: DocMessage) -> None:
        channel, peer = self.channel, self.peer
        assert channel is not None and peer is not None
        room = channel.room
        try:
            if isinstance(message, SyncUpdate | SyncStep2):
                await self._write(channel, peer, message)
            elif isinstance(message, Stateless):
                await self._stateless(channel, message.payload)
            elif not isinstance(message, Token | CloseDocument):
                replies = room.handle(peer, message)
                if replies:
                    await room.wait_durable()
                    for frame in replies:
                        await channel.send(frame)
        except ProtocolError as exc:
            log.info("closing document %s of a Hocuspocus socket: %s", self.key, exc)
            await channel.close(exc.close_code, str(exc))

    async def _write(
        self, channel: DocChannel, peer: Peer, message: SyncUpdate | SyncStep2
    ) -> None:
        if message.update == EMPTY_UPDATE:
            # Nothing to store (a provider's answer to our step 1 when it has nothing new).
            await channel.send_raw(encode_sync_status(self.prefix, True))
        elif not peer.can_write:
            # Read-only: dropped, never applied nor relayed, and never acked as saved.
            await channel.send_raw(encode_sync_status(self.prefix, False))
        else:
            channel.room.handle(peer, message)
            channel.owe_ack()

    async def _stateless(self, channel: DocChannel, payload: str) -> None:
        limit = self.socket.context.limits.hocuspocus_max_stateless_bytes
        if len(payload.encode()) > limit:
            raise ProtocolError(f"stateless message over {limit} bytes")
        await relay_stateless(channel.room, channel, payload)
        bus = self.socket.context.bus
        if bus is not None:
            bus.publish_stateless(self.note_id, payload)

    # -- auth ----------------------------------------------------------------------------

    async def _authenticate(self, token: str) -> None:
        context = self.socket.context
        resume = self.resume or self.state is State.OPEN
        self.leave()
        try:
            grant = await authorize(context.notes, context.rooms, token, self.note_id)
        except Refusal as refusal:
            await self._refuse(refusal.code, refusal.reason)
            return
        if self.socket.closed:
            context.rooms.release(grant.room)
            return
        await self._open(grant, resume=resume)

    async def _refuse(self, code: int, reason: str) -> None:
        self.state = State.DENIED
        self.resume = False
        self.socket.drop_queue(self)
        log.info("document %s refused: %s", self.key, reason)
        await self.socket.send(encode_permission_denied(self.prefix, reason_text(code, reason)))

    async def _open(self, grant: Grant, *, resume: bool) -> None:
        context = self.socket.context
        room = grant.room
        channel = DocChannel(self, room)
        peer = Peer(
            channel=channel,
            user_id=grant.principal.user_id,
            can_write=grant.access >= Access.EDIT,
            name=grant.principal.name,
            privileged=grant.principal.privileged,
        )
        self.state, self.resume = State.OPEN, False
        self.channel, self.peer, self.principal = channel, peer, grant.principal
        self.socket.opened(self)
        context.expiries.add(channel, grant.principal.expires_at)
        metrics.WS_CONNECTIONS.inc()
        context.events.publish_nowait(PeerJoined(room.doc_id, room, peer))
        frames = room.join(peer)
        scope = SCOPE_READ_WRITE if peer.can_write else SCOPE_READONLY
        await channel.send_raw(encode_authenticated(self.prefix, scope))
        if resume:
            # The provider starts a sync only when its socket opens: after a re-auth the
            # server sends the whole doc and its step 1 (whose answer brings the edits the
            # provider made meanwhile).
            frames[1:1] = room.handle(peer, SyncStep1(EMPTY_STATE_VECTOR))
            await room.wait_durable()
        for frame in frames:
            await channel.send(frame)
        queued, self.queued = self.queued, []
        self.socket.unqueue(sum(size for _, size in queued))
        for message, _ in queued:
            if self.state is not State.OPEN:
                break
            await self._dispatch(message)

    # -- closing -------------------------------------------------------------------------

    def leave(self) -> None:
        """Take this document's peer out of its room (no message to the provider)."""
        channel, peer = self.channel, self.peer
        if channel is None or peer is None:
            return
        self.channel = self.peer = None
        if self.state is State.OPEN:
            self.state = State.PENDING
        channel.retire()
        context = self.socket.context
        room = channel.room
        room.leave(peer)
        context.events.publish_nowait(PeerLeft(room.doc_id, room, peer))
        context.rooms.release(room)
        context.expiries.discard()
        metrics.WS_CONNECTIONS.dec()

    async def closed_by_server(self, channel: DocChannel, code: int, reason: str) -> None:
        """The room, the rights check or the expiry timer closed this opening."""
        if channel is not self.channel:
            return
        self.leave()
        metrics.WS_CLOSES.labels(str(code)).inc()
        if code in SOCKET_CODES:
            await self.socket.close(code, reason)
            return
        text = reason_text(code, reason)
        if code == CLOSE_UNAUTHORIZED:
            # Expired: ask for a fresh token (the provider calls its token function) and
            # pick up where it left off, queueing what it sends meanwhile.
            self.state, self.resume = State.PENDING, True
            await self.socket.send(encode_close(self.prefix, text))
            await self.socket.send(encode_token_request(self.prefix))
            return
        self.state = State.DENIED
        self.socket.drop_queue(self)
        if code in (CLOSE_FORBIDDEN, CLOSE_NOT_FOUND):
            await self.socket.send(encode_permission_denied(self.prefix, text))
        await self.socket.send(encode_close(self.prefix, text))
