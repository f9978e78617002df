"""The shared client of a single Redis (`syncd.bus.connect.open_redis`) under a burst of
concurrent commands: a checkpoint compacting 100 rooms at once took more connections than
redis-py's default pool allows, and it refused the rest (`MaxConnectionsError`)."""

from __future__ import annotations

import asyncio
import uuid

from syncd.bus.connect import MAX_CONNECTIONS, open_redis


async def test_commands_beyond_the_pools_connections_wait_for_one(redis_server_url: str) -> None:
    client = open_redis(redis_server_url, cluster=False)
    empty = f"syncd-test-empty-{uuid.uuid4().hex}"
    try:
        # each holds its connection for 0.2 s: 50 more than the pool has at once
        replies = await asyncio.gather(
            *(client.blpop([empty], timeout=0.2) for _ in range(MAX_CONNECTIONS + 50))
        )
        assert replies == [None] * (MAX_CONNECTIONS + 50)
        pool = client.connection_pool
        assert len(pool._available_connections) <= MAX_CONNECTIONS  # type: ignore[attr-defined]
    finally:
        await client.aclose()
