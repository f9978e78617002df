"""Note events become catalogue messages for one outgoing channel (webhooks, AMQP).

`OutgoingMessages` is the shared part of every queued subscriber that sends events out of
the process: it turns each event into its catalogue message (`events.payloads`) and hands
it to `_send`, which each channel implements (a webhook delivery per endpoint, an AMQP
outbox row). Remote copies of an event (`remote=True`) have no message, so an event is sent
once, by the instance where it happened. `note.updated` is debounced per note: the first
change starts a timer of `debounce` seconds and one message then carries the latest state;
the checkpoint when the last client leaves, and the end of the note's session, send a
pending one at once. Scaled, every instance with editors checkpoints the doc, so the window
is also shared (`RedisWindow`, one key per note and channel): an instance that finds it
taken sends its pending one when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, Self

from redis.asyncio import Redis

from syncd import metrics
from syncd.bus.keys import Keys
from syncd.content import doc_to_json, sanitize
from syncd.services.events.kinds import ContentChanged, NoteEvent, NoteUpdated, SessionEnded
from syncd.services.events.payloads import EventMessage, message_of, note_updated
from syncd.storage import NoteRecord

log = logging.getLogger(__name__)


class UpdateWindow(Protocol):
    """At most one `note.updated` per note and window across instances."""

    async def claim(self, note_id: str, window: float) -> float:
        """0: this instance may send now (the window starts); else seconds until the
        window of the instance that sent last ends."""
        ...


class LocalWindow:
    """One process: its own debounce timer is the window already."""

    async def claim(self, note_id: str, window: float) -> float:
        return 0.0


class RedisWindow:
    """Scaled: a key with a TTL per note and channel (`SET NX PX`), held by the instance
    that sent (`channel`: each channel has its own window, so webhooks and AMQP each send
    their `note.updated`)."""

    def __init__(self, redis: Redis, prefix: str, channel: str = "webhook") -> None:
        self._redis = redis
        self._keys = Keys(prefix)
        self._channel = channel

    async def claim(self, note_id: str, window: float) -> float:
        key = self._keys.event_window(note_id, self._channel)
        if await self._redis.set(key, b"1", nx=True, px=max(1, int(window * 1000))):
            return 0.0
        left = await self._redis.pttl(key)
        return max(left, 1) / 1000 if left > 0 else 0.001


class OutgoingMessages(ABC):
    """The queued subscriber of one channel: events to messages to `_send` (module
    docstring). `component` labels its errors in `syncd_errors_total`."""

    component = "events"

    def __init__(
        self,
        debounce: float,
        get_note: Callable[[str], Awaitable[NoteRecord | None]],
        *,
        field: str = "prosemirror",
        window: UpdateWindow | None = None,
        active: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self._debounce = debounce
        #: False while the channel has nowhere to send: nothing to build messages for
        self._active = active
        self._window = window or LocalWindow()
        self._get_note = get_note
        self._field = field
        #: notes with a `note.updated` waiting: the latest sanitised content (None: row only)
        self._pending: dict[str, dict[str, Any] | None] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    @abstractmethod
    async def _send(self, message: EventMessage) -> None:
        """Hand one message to the channel (durably: it must not wait for the receiver)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Send every pending `note.updated` now (it would be lost with the process)."""
        self._closed = True
        for note_id in list(self._pending):
            try:
                await self._flush(note_id)
            except Exception:  # stopping goes on: the channel may be gone already
                log.exception("%s note.updated for %s not sent at exit", self.component, note_id)
                metrics.ERRORS.labels(self.component).inc()
        for timer in self._timers.values():
            timer.cancel()

    async def on_event(self, event: NoteEvent) -> None:
        """One queued handler for every kind, so a note's messages keep publish order."""
        if self._active is not None and not await self._active():
            return
        if isinstance(event, NoteUpdated | ContentChanged):
            await self._changed(event)
            return
        if isinstance(event, SessionEnded):
            await self._flush(event.note_id)
        message = self._message_of(event)
        if message is not None:
            await self.send(message)

    def _message_of(self, event: NoteEvent) -> EventMessage | None:
        """The message of `event` on this channel (a channel may carry fewer kinds)."""
        return message_of(event)

    async def send(self, message: EventMessage) -> None:
        await self._send(message)

    async def _changed(self, event: NoteUpdated | ContentChanged) -> None:
        note_id = event.note_id
        content = self._pending.get(note_id)
        if isinstance(event, ContentChanged):
            content = sanitize(doc_to_json(event.room.doc, self._field))
        self._pending[note_id] = content
        # the checkpoint of the last client leaving: the editing is over, send it now
        last = isinstance(event, ContentChanged) and not event.room.peers
        if self._closed or last:
            await self._flush(note_id)
        elif note_id not in self._timers:
            self._timers[note_id] = asyncio.create_task(self._after_debounce(note_id))

    async def _after_debounce(self, note_id: str, delay: float | None = None) -> None:
        await asyncio.sleep(self._debounce if delay is None else delay)
        self._timers.pop(note_id, None)
        try:
            await self._flush(note_id)
        except Exception:
            log.exception("%s note.updated for %s not sent", self.component, note_id)
            metrics.ERRORS.labels(self.component).inc()

    async def _flush(self, note_id: str) -> None:
        timer = self._timers.pop(note_id, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        if note_id not in self._pending:
            return
        wait = 0.0 if self._closed else await self._window.claim(note_id, self._debounce)
        if wait > 0:  # another instance sent one within the window: send ours after it
            self._timers[note_id] = asyncio.create_task(self._after_debounce(note_id, wait))
            return
        content = self._pending.pop(note_id)
        record = await self._get_note(note_id)
        if record is not None:  # deleted meanwhile: `note.deleted` says it all
            await self.send(note_updated(record, content))
