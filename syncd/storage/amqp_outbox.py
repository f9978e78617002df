"""The AMQP outbox of the embedded mode: messages waiting for the broker's confirm.

A message is a row from the moment its event is handled until RabbitMQ confirms it; the
publisher reads rows in `seq` order and deletes them only after the confirm, so a broker
outage or a restart of syncd loses none and the backlog goes out in order. The table is
declared on the shared `schema.metadata`; the DDL lives in migration 0007. (Scaled, the
outbox is a Redis stream: `syncd.services.amqp.outbox`.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ._access import EngineStore
from .schema import _SEQ, UTCDateTime, metadata

amqp_outbox = sa.Table(
    "amqp_outbox",
    metadata,
    sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("note_id", sa.Text),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sqlite_autoincrement=True,
)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One message as the broker gets it: `event_id` is its `message_id`, `event_type`
    its routing key and `type`, `created_at` its `timestamp`."""

    event_id: str
    event_type: str
    note_id: str | None
    body: str
    created_at: datetime


class SqlOutbox(EngineStore):
    """The outbox table (one writer and one publisher: the embedded process)."""

    async def add(self, row: OutboxRow, *, limit: int) -> bool:
        """Append `row`; False (nothing written) when the outbox holds `limit` already."""
        async with self._write() as conn:
            held = (
                await conn.execute(sa.select(sa.func.count()).select_from(amqp_outbox))
            ).scalar_one()
            if held >= limit:
                return False
            await conn.execute(
                amqp_outbox.insert().values(
                    event_id=row.event_id,
                    event_type=row.event_type,
                    note_id=row.note_id,
                    body=row.body,
                    created_at=row.created_at,
                )
            )
        return True

    async def head(self, limit: int) -> list[tuple[int, OutboxRow]]:
        """The oldest `limit` rows, oldest first, each with its `seq`."""
        t = amqp_outbox.c
        async with self._read() as conn:
            rows = await conn.execute(sa.select(amqp_outbox).order_by(t.seq).limit(limit))
            return [
                (r.seq, OutboxRow(r.event_id, r.event_type, r.note_id, r.body, r.created_at))
                for r in rows
            ]

    async def remove(self, seqs: Sequence[int]) -> None:
        if not seqs:
            return
        async with self._write() as conn:
            await conn.execute(amqp_outbox.delete().where(amqp_outbox.c.seq.in_(list(seqs))))

    async def depth(self) -> int:
        async with self._read() as conn:
            count = sa.select(sa.func.count()).select_from(amqp_outbox)
            return int((await conn.execute(count)).scalar_one())
