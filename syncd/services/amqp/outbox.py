"""Where AMQP messages wait for the broker's confirm: the durable outbox.

The events subscriber appends (a local write, never a broker round trip: the hot path
never waits for RabbitMQ); the relay reads the oldest messages in order and removes them
only after the broker confirmed them. Embedded it is a table (`syncd.storage.SqlOutbox`);
scaled it is one Redis stream shared by every instance (`<prefix>:amqp:outbox`), read by
the one instance that holds the publisher lease (`lease.py`), so a message is published
once and a note's messages keep their order whichever instance handled its events.

Both are bounded by `SYNCD_AMQP_OUTBOX_MAX`: past it, `add` refuses and the caller logs
and counts the drop. (Scaled, two instances may both pass the check at the same instant:
the bound can be passed by the few messages in flight, never by a backlog.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from redis.asyncio import Redis

from syncd.bus.keys import Keys
from syncd.storage import OutboxRow, SqlOutbox


class Outbox(Protocol):
    async def add(self, row: OutboxRow) -> bool:
        """Append `row`; False when the outbox is full (nothing written)."""
        ...

    async def head(self, limit: int) -> list[tuple[Any, OutboxRow]]:
        """The oldest `limit` messages, oldest first, each with the key `remove` takes."""
        ...

    async def remove(self, keys: Sequence[Any]) -> None: ...

    async def depth(self) -> int: ...


class TableOutbox:
    """Embedded: the `amqp_outbox` table."""

    def __init__(self, store: SqlOutbox, limit: int) -> None:
        self._store = store
        self._limit = limit

    async def add(self, row: OutboxRow) -> bool:
        return await self._store.add(row, limit=self._limit)

    async def head(self, limit: int) -> list[tuple[Any, OutboxRow]]:
        return list(await self._store.head(limit))

    async def remove(self, keys: Sequence[Any]) -> None:
        await self._store.remove(keys)

    async def depth(self) -> int:
        return await self._store.depth()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class StreamOutbox:
    """Scaled: one Redis stream (fields `i` event id, `t` type, `n` note id, `c` time,
    `b` body); `XDEL` after the confirm. Redis runs with `appendonly yes` and a
    no-eviction policy (the bus needs both already), so the stream outlives a restart."""

    def __init__(self, redis: Redis, prefix: str, limit: int) -> None:
        self._redis = redis
        self._key = Keys(prefix).amqp_outbox
        self._limit = limit

    async def add(self, row: OutboxRow) -> bool:
        if await self._redis.xlen(self._key) >= self._limit:
            return False
        fields: dict[Any, Any] = {
            "i": row.event_id,
            "t": row.event_type,
            "n": row.note_id or "",
            "c": row.created_at.isoformat(),
            "b": row.body,
        }
        await self._redis.xadd(self._key, fields)
        return True

    async def head(self, limit: int) -> list[tuple[Any, OutboxRow]]:
        entries = await self._redis.xrange(self._key, "-", "+", count=limit)
        rows = []
        for entry_id, raw in entries:
            f = {_text(k): _text(v) for k, v in raw.items()}
            row = OutboxRow(
                event_id=f["i"],
                event_type=f["t"],
                note_id=f["n"] or None,
                body=f["b"],
                created_at=datetime.fromisoformat(f["c"]),
            )
            rows.append((entry_id, row))
        return rows

    async def remove(self, keys: Sequence[Any]) -> None:
        if keys:
            await self._redis.xdel(self._key, *keys)

    async def depth(self) -> int:
        return int(await self._redis.xlen(self._key))
