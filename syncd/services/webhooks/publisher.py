"""Note events become webhook messages: the queued events subscriber.

`WebhookPublisher` is a queued event subscriber (a slow or down receiver never holds up a
request or the sync path). It turns each event into its catalogue message
(`events.payloads`) and hands it to `dispatch` (the `WebhookDispatcher`: one delivery row
and job per endpoint that wants it). Remote copies of an event (`remote=True`) have no
message, so an event is sent once, by the instance where it happened. `note.updated` is
debounced per note: the first change starts a timer of `SYNCD_WEBHOOK_DEBOUNCE` seconds and
one message then carries the latest state; the checkpoint when the last client leaves, and
the end of the note's session, send a pending one at once. Scaled, every instance with
editors checkpoints the doc, so the window is also shared (`RedisWindow`): an instance that
finds it taken sends its pending one when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, Self

from redis.asyncio import Redis

from syncd import metrics
from syncd.bus.keys import Keys
from syncd.content import doc_to_json, sanitize
from syncd.services.events import ContentChanged, NoteEvent, NoteUpdated, SessionEnded
from syncd.services.events.payloads import EventMessage, message_of, note_updated
from syncd.settings import WebhookSettings
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
    """Scaled: a key with a TTL per note (`SET NX PX`), held by the instance that sent."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._keys = Keys(prefix)

    async def claim(self, note_id: str, window: float) -> float:
        key = self._keys.webhook_window(note_id)
        if await self._redis.set(key, b"1", nx=True, px=max(1, int(window * 1000))):
            return 0.0
        left = await self._redis.pttl(key)
        return max(left, 1) / 1000 if left > 0 else 0.001


class WebhookPublisher:
    """The queued subscriber: events to messages to delivery jobs (module docstring)."""

    def __init__(
        self,
        settings: WebhookSettings,
        dispatch: Callable[[EventMessage], Awaitable[object]],
        get_note: Callable[[str], Awaitable[NoteRecord | None]],
        *,
        field: str = "prosemirror",
        window: UpdateWindow | None = None,
        active: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self._settings = settings
        #: False while no endpoint is enabled: nothing to build messages for
        self._active = active
        self._window = window or LocalWindow()
        self._dispatch = dispatch
        self._get_note = get_note
        self._field = field
        #: notes with a `note.updated` waiting: the latest sanitised content (None: row only)
        self._pending: dict[str, dict[str, Any] | None] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Send every pending `note.updated` now (it would be lost with the process)."""
        self._closed = True
        for note_id in list(self._pending):
            try:
                await self._flush(note_id)
            except Exception:  # stopping goes on: the job queue may be gone already
                log.exception("webhook note.updated for %s not queued at exit", note_id)
                metrics.ERRORS.labels("webhooks").inc()
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
        message = message_of(event)
        if message is not None:
            await self.send(message)

    async def send(self, message: EventMessage) -> None:
        await self._dispatch(message)

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
        await asyncio.sleep(self._settings.debounce if delay is None else delay)
        self._timers.pop(note_id, None)
        try:
            await self._flush(note_id)
        except Exception:
            log.exception("webhook note.updated for %s not queued", note_id)
            metrics.ERRORS.labels("webhooks").inc()

    async def _flush(self, note_id: str) -> None:
        timer = self._timers.pop(note_id, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        if note_id not in self._pending:
            return
        wait = 0.0 if self._closed else await self._window.claim(note_id, self._settings.debounce)
        if wait > 0:  # another instance sent one within the window: send ours after it
            self._timers[note_id] = asyncio.create_task(self._after_debounce(note_id, wait))
            return
        content = self._pending.pop(note_id)
        record = await self._get_note(note_id)
        if record is not None:  # deleted meanwhile: `note.deleted` says it all
            await self.send(note_updated(record, content))
