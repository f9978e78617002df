"""Note events become webhook messages: the queued events subscriber.

`WebhookPublisher` is the webhooks' `OutgoingMessages` (`syncd.services.events.outgoing`:
messages from events, `note.updated` debounced per note by `SYNCD_WEBHOOK_DEBOUNCE`, sent
once by the instance where the event happened). Its channel is `dispatch` (the
`WebhookDispatcher`: one delivery row and job per endpoint that wants the message), so a
slow or down receiver never holds up a request or the sync path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from syncd.services.events.kinds import NoteEvent
from syncd.services.events.outgoing import (
    LocalWindow,
    OutgoingMessages,
    RedisWindow,
    UpdateWindow,
)
from syncd.services.events.payloads import WEBHOOK_EVENT_TYPES, EventMessage, message_of
from syncd.settings import WebhookSettings
from syncd.storage import NoteRecord

__all__ = ["LocalWindow", "RedisWindow", "UpdateWindow", "WebhookPublisher"]


class WebhookPublisher(OutgoingMessages):
    """The queued subscriber: events to messages to delivery jobs (module docstring)."""

    component = "webhooks"

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
        super().__init__(settings.debounce, get_note, field=field, window=window, active=active)
        self._settings = settings
        self._dispatch = dispatch

    def _message_of(self, event: NoteEvent) -> EventMessage | None:
        message = message_of(event)
        return message if message is None or message.type in WEBHOOK_EVENT_TYPES else None

    async def _send(self, message: EventMessage) -> None:
        await self._dispatch(message)
