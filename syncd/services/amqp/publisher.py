"""Note events become AMQP messages: the queued events subscriber of the AMQP channel.

`AmqpPublisher` is an `OutgoingMessages` (`syncd.services.events.outgoing`: the catalogue
message of each event, `note.updated` debounced as for webhooks, each event sent once, by
the instance where it happened) whose channel is the outbox: it appends the message and
wakes the relay, which publishes it when the broker is there. A full outbox drops the
message with a WARNING line and `syncd_amqp_dropped_total`, never silently.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from syncd import metrics
from syncd.services.amqp.outbox import Outbox
from syncd.services.events.outgoing import OutgoingMessages, UpdateWindow
from syncd.services.events.payloads import EventMessage
from syncd.storage import NoteRecord, OutboxRow

log = logging.getLogger(__name__)


class AmqpPublisher(OutgoingMessages):
    component = "amqp"

    def __init__(
        self,
        outbox: Outbox,
        wake: Callable[[], None],
        debounce: float,
        get_note: Callable[[str], Awaitable[NoteRecord | None]],
        *,
        limit: int,
        field: str = "prosemirror",
        window: UpdateWindow | None = None,
    ) -> None:
        super().__init__(debounce, get_note, field=field, window=window)
        self._outbox = outbox
        self._wake = wake
        self._limit = limit

    async def _send(self, message: EventMessage) -> None:
        row = OutboxRow(
            event_id=message.id,
            event_type=message.type,
            note_id=message.note_id,
            body=message.body(),
            created_at=message.timestamp,
        )
        if not await self._outbox.add(row):
            log.warning(
                "AMQP outbox full (SYNCD_AMQP_OUTBOX_MAX=%d): dropped %s %s of note %s",
                self._limit,
                message.type,
                message.id,
                message.note_id,
            )
            metrics.AMQP_DROPPED.inc()
            return
        self._wake()
