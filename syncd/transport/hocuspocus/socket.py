"""One Hocuspocus socket: many documents multiplexed by name, each authorised on its own.

The socket reads frames in order and hands each to its document. What it bounds: the
number of documents (`SYNCD_HOCUSPOCUS_MAX_DOCUMENTS`), the bytes queued for documents
not yet authorised (`SYNCD_MAX_MESSAGE_BYTES` for all of them together; the document
that would go over is refused), the time to the
first authorised document (`SYNCD_HOCUSPOCUS_AUTH_TIMEOUT`), and frames and bytes per
second (the same budget as a y-websocket connection). It pings every `PING_INTERVAL`
seconds: the provider reconnects after 30 s without hearing anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from syncd import metrics
from syncd.protocol import ProtocolError
from syncd.protocol.close_codes import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_MALFORMED,
    CLOSE_RATE_LIMITED,
    CLOSE_UNAUTHORIZED,
)
from syncd.protocol.hocuspocus import (
    PING_FRAME,
    DocMessage,
    DocumentError,
    Envelope,
    Token,
    document_prefix,
    encode_close,
    encode_permission_denied,
    parse_frame,
)
from syncd.room import RoomRegistry
from syncd.services.events import EventBus
from syncd.services.notes import NoteService
from syncd.services.ratelimit import ConnectionBudget
from syncd.settings import Limits
from syncd.transport.expiries import Expiries
from syncd.transport.hocuspocus.auth import reason_text
from syncd.transport.hocuspocus.document import DocSession, State

log = logging.getLogger(__name__)

Send = Any
Receive = Any

#: seconds between pings; well inside the provider's 30 s `messageReconnectTimeout`
PING_INTERVAL = 10.0


class StatelessBus(Protocol):
    """Where stateless messages go to the other instances (the bus; a no-op embedded)."""

    def publish_stateless(self, doc_id: str, payload: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Context:
    """What every socket of the endpoint shares."""

    notes: NoteService
    rooms: RoomRegistry
    events: EventBus
    limits: Limits
    expiries: Expiries
    bus: StatelessBus | None = None


class HocuspocusSocket:
    """One accepted socket and its documents, keyed by the name the provider routes by."""

    def __init__(self, context: Context, send: Send) -> None:
        self.context = context
        self._send = send
        self.closed = False
        self.docs: dict[str, DocSession] = {}
        self._queued_bytes = 0
        self._ever_opened = False
        self._closing: asyncio.Task[None] | None = None

    # -- output --------------------------------------------------------------------------

    async def send(self, frame: bytes) -> None:
        if self.closed:
            return
        await self._send({"type": "websocket.send", "bytes": frame})

    async def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        metrics.WS_CLOSES.labels(str(code)).inc()
        with contextlib.suppress(Exception):
            await self._send({"type": "websocket.close", "code": code, "reason": reason[:120]})

    # -- documents -----------------------------------------------------------------------

    def opened(self, doc: DocSession) -> None:
        self._ever_opened = True

    def forget(self, doc: DocSession) -> None:
        self.drop_queue(doc)
        self.docs.pop(doc.key, None)

    def queue(self, doc: DocSession, message: DocMessage, size: int) -> bool:
        """Keep a message of a document that is not authorised yet; False when that would
        take the socket's queued bytes over the bound (the document is then refused)."""
        if self._queued_bytes + size > self.context.limits.max_message_bytes:
            return False
        self._queued_bytes += size
        doc.queued.append((message, size))
        return True

    def unqueue(self, size: int) -> None:
        self._queued_bytes -= size

    def drop_queue(self, doc: DocSession) -> None:
        self.unqueue(sum(size for _, size in doc.queued))
        doc.queued.clear()

    # -- the pump ------------------------------------------------------------------------

    async def run(self, receive: Receive, budget: ConnectionBudget | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.call_later(self.context.limits.hocuspocus_auth_timeout, self._auth_deadline)
        pinger = loop.create_task(self._ping())
        try:
            await self._pump(receive, budget)
        except (ConnectionError, OSError):
            pass
        finally:
            deadline.cancel()
            pinger.cancel()
            self.closed = True
            for doc in list(self.docs.values()):
                doc.leave()
            self.docs.clear()

    async def _pump(self, receive: Receive, budget: ConnectionBudget | None) -> None:
        max_bytes = self.context.limits.max_message_bytes
        while True:
            event = await receive()
            kind = event["type"]
            if kind == "websocket.disconnect":
                return
            if kind != "websocket.receive" or self.closed:
                continue
            data = event.get("bytes")
            size = len(data) if data is not None else len((event.get("text") or "").encode())
            if budget is not None and not budget.allow(size):
                metrics.RATE_LIMITED.labels("ws_messages").inc()
                await self.close(CLOSE_RATE_LIMITED, "rate limit")
                continue
            if data is None:
                await self.close(CLOSE_MALFORMED, "text frames are not part of the protocol")
                continue
            try:
                frame = parse_frame(data, max_bytes=max_bytes)
                if isinstance(frame, Envelope):
                    metrics.count_frame("in", "hocuspocus_" + _kind(frame.message), size)
                    await self._deliver(frame, size)
            except DocumentError as exc:
                await self._bad_document(exc)
            except ProtocolError as exc:
                log.info("closing a Hocuspocus socket: %s", exc)
                await self.close(exc.close_code, str(exc))
            except (ConnectionError, OSError):
                raise
            except Exception:
                # A bug of ours must not leave the socket half-served: log it, close it.
                log.exception("closing a Hocuspocus socket after an unexpected error")
                metrics.ERRORS.labels("hocuspocus").inc()
                await self.close(CLOSE_INTERNAL_ERROR, "internal error")

    async def _deliver(self, frame: Envelope, size: int) -> None:
        doc = self.docs.get(frame.document)
        if doc is None:
            if len(self.docs) >= self.context.limits.hocuspocus_max_documents:
                if isinstance(frame.message, Token):
                    reason = reason_text(CLOSE_RATE_LIMITED, "too many documents on one connection")
                    await self.send(
                        encode_permission_denied(document_prefix(frame.document), reason)
                    )
                metrics.ERRORS.labels("hocuspocus_dropped").inc()
                return
            doc = self.docs[frame.document] = DocSession(self, frame.document)
        await doc.handle(frame.message, size)

    async def _bad_document(self, exc: DocumentError) -> None:
        """A malformed message for one document closes that document only."""
        log.info("closing document %s of a Hocuspocus socket: %s", exc.document, exc)
        doc = self.docs.get(exc.document)
        if doc is not None and doc.channel is not None:
            await doc.channel.close(exc.close_code, str(exc))
            return
        if doc is not None:
            doc.state = State.DENIED
            self.drop_queue(doc)
        metrics.WS_CLOSES.labels(str(exc.close_code)).inc()
        prefix = document_prefix(exc.document)
        await self.send(encode_close(prefix, reason_text(exc.close_code, str(exc))))

    def _auth_deadline(self) -> None:
        if not self._ever_opened and not self.closed:
            self._closing = asyncio.get_running_loop().create_task(
                self.close(CLOSE_UNAUTHORIZED, "no document authenticated in time")
            )

    async def _ping(self) -> None:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            while not self.closed:
                await asyncio.sleep(PING_INTERVAL)
                await self.send(PING_FRAME)


def _kind(message: DocMessage) -> str:
    return type(message).__name__.lower()
