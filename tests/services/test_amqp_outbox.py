"""The AMQP outbox and its lease on real storage: both outboxes keep order, refuse past
their bound and remove only what they are told; one lease holder at a time (real SQLite
and Redis; the broker side is in tests/integration/test_amqp.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis.asyncio import Redis

from syncd.services.amqp import RedisLease, StreamOutbox, TableOutbox
from syncd.services.amqp.outbox import Outbox
from syncd.storage import OutboxRow, SqlOutbox, open_store

AT = datetime(2026, 12, 6, tzinfo=UTC)


def _row(n: int, note: str | None = "n1") -> OutboxRow:
    return OutboxRow(f"evt_{n}", "note.updated", note, f'{{"n": {n}}}', AT)


@pytest.fixture
async def redis(redis_server_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server_url)
    yield client
    await client.aclose()


@pytest.fixture(params=["table", "stream"])
async def outbox(
    request: pytest.FixtureRequest, tmp_path: Path, redis: Redis, redis_prefix: str
) -> AsyncIterator[Outbox]:
    if request.param == "stream":
        yield StreamOutbox(redis, redis_prefix.rstrip(":"), limit=3)
        return
    async with open_store(f"sqlite:///{tmp_path / 'o.db'}", migrate=True) as store:
        yield TableOutbox(SqlOutbox(store.engine), limit=3)


async def test_messages_come_out_in_order_and_leave_only_when_removed(outbox: Outbox) -> None:
    for n in range(3):
        assert await outbox.add(_row(n, note=None if n == 1 else "n1"))
    head = await outbox.head(2)
    assert [row.event_id for _, row in head] == ["evt_0", "evt_1"]
    assert head[1][1].note_id is None and head[0][1] == _row(0)
    assert await outbox.depth() == 3
    await outbox.remove([head[0][0]])
    assert [row.event_id for _, row in await outbox.head(10)] == ["evt_1", "evt_2"]
    assert await outbox.depth() == 2


async def test_a_full_outbox_refuses_and_keeps_what_it_has(outbox: Outbox) -> None:
    assert [await outbox.add(_row(n)) for n in range(5)] == [True, True, True, False, False]
    assert [row.event_id for _, row in await outbox.head(10)] == ["evt_0", "evt_1", "evt_2"]


async def test_one_lease_holder_at_a_time(redis: Redis, redis_prefix: str) -> None:
    prefix = redis_prefix.rstrip(":")
    a = RedisLease(redis, prefix, "a", ttl=5)
    b = RedisLease(redis, prefix, "b", ttl=5)
    assert await a.hold() and not await b.hold()
    assert await a.hold()  # renewed by its holder
    await b.release()  # not b's to release
    assert not await b.hold()
    await a.release()
    assert await b.hold() and not await a.hold()
