"""The appends of one loop turn on a real Redis: each doc's outcome is its own (a doc that
fails is not re-appended for the others, nor they for it), and with
`SYNCD_REDIS_WAIT_REPLICAS` an append waits for the replicas the master has."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from syncd.bus.appender import StreamAppender
from syncd.bus.keys import Keys
from tests.scaled.test_bus_keys import update_of


@pytest.fixture
async def redis(redis_server_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server_url)
    try:
        yield client
    finally:
        await client.aclose()


async def test_one_failing_doc_fails_alone(
    redis: Redis, redis_server_url: str, redis_prefix: str
) -> None:
    keys = Keys(redis_prefix.rstrip(":"))
    await redis.set(keys.updates("broken"), "not a stream")  # XADD answers WRONGTYPE
    appender = StreamAppender(redis, redis_server_url, keys, b"me")
    try:
        outcome = await appender.append(
            [("d1", [update_of("a")]), ("broken", [update_of("b")]), ("d2", [update_of("c")])],
            1.0,
        )
    finally:
        await appender.aclose()
    assert outcome["d1"] is None and outcome["d2"] is None
    assert "WRONGTYPE" in str(outcome["broken"])
    assert await redis.xlen(keys.updates("d1")) == 1
    assert await redis.xlen(keys.updates("d2")) == 1
    assert await redis.zscore(keys.doc_index, "d1") == 1.0


async def test_appends_wait_for_the_replicas_attached(
    redis: Redis, redis_server_url: str, redis_prefix: str
) -> None:
    """The suite's Redis has no replica: an append waits for none (as durable as that one
    Redis), and says so by asking `ROLE` after it; one that expects a replica the master
    still has is not durable until the replica acknowledged it (see the cluster test)."""
    info = await redis.info("replication")
    assert info["connected_slaves"] == 0, "the suite's Redis is expected to have no replica"
    keys = Keys(redis_prefix.rstrip(":"))
    appender = StreamAppender(redis, redis_server_url, keys, b"me", replicas=1, wait_ms=50)
    try:
        # before it knows better it asks for one replica: WAIT times out with 0, but ROLE
        # then shows none is attached, so none was needed
        assert await appender.append([("d1", [update_of("a")])], 1.0) == {"d1": None}
        assert await appender.append([("d1", [update_of("b")])], 1.0) == {"d1": None}
    finally:
        await appender.aclose()
    assert await redis.xlen(keys.updates("d1")) == 2
