"""The Redis mirrors of presence, online users and instance stats, on a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from syncd.services.presence.redis_state import (
    ExpiringHash,
    RedisInstances,
    RedisOnline,
    RedisPresence,
)


@pytest.fixture
async def redis(redis_server_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server_url)
    yield client
    await client.aclose()


@pytest.fixture
def prefix(redis_prefix: str) -> str:
    return redis_prefix.rstrip(":")


def entry(conn_id: str, user: str, instance: str = "i1") -> dict:
    return {"connId": conn_id, "userId": user, "instance": instance, "status": "viewing"}


async def test_presence_entries_of_a_silent_instance_expire(redis: Redis, prefix: str) -> None:
    presence = RedisPresence(redis, prefix)
    await presence.put("n1", [entry("c1", "ann", "alive")], ttl=30)
    await presence.put("n1", [entry("c2", "bob", "dies")], ttl=0.3)
    assert sorted(e["userId"] for e in await presence.read("n1")) == ["ann", "bob"]
    key = presence.key("n1")
    assert key == f"{prefix}:{{note:n1}}:presence"  # one hash tag per note (Redis Cluster)
    assert 0 < await redis.pttl(key) <= 31_000
    deadline = asyncio.get_running_loop().time() + 5
    while [e["userId"] for e in await presence.read("n1")] != ["ann"]:
        assert asyncio.get_running_loop().time() < deadline, "bob's entry did not expire"
        await asyncio.sleep(0.05)
    assert await redis.hkeys(key) == [b"c1"]  # the expired field was deleted on read
    await presence.drop("n1", ["c1"])
    assert await presence.read("n1") == []


async def test_a_hash_nobody_writes_to_vanishes(redis: Redis, prefix: str) -> None:
    fields = ExpiringHash(redis)
    key = f"{prefix}:{{note:n2}}:presence"
    await fields.put(key, {"c": {"x": 1}}, ttl=0.2)
    assert await redis.exists(key)
    assert 0 < await redis.pttl(key) <= 1200


async def test_malformed_entries_are_dropped(redis: Redis, prefix: str) -> None:
    fields = ExpiringHash(redis)
    key = f"{prefix}:broken"
    await redis.hset(key, mapping={"bad": "not json", "old": '{"exp": 1}'})
    await redis.expire(key, 30)
    assert await fields.read(key) == {}
    assert await redis.hlen(key) == 0


async def test_online_markers_per_instance(redis: Redis, prefix: str) -> None:
    online = RedisOnline(redis, prefix)
    assert not await online.online("ann")
    await online.put("ann", "i1", 2, ttl=30)
    await online.put("ann", "i2", 1, ttl=30)
    assert await online.online("ann")
    await online.drop("ann", "i1")
    assert await online.online("ann")
    await online.drop("ann", "i2")
    assert not await online.online("ann")
    assert online.key("ann") == f"{prefix}:{{user:ann}}:online"


async def test_instance_stats(redis: Redis, prefix: str) -> None:
    instances = RedisInstances(redis, prefix)
    await instances.put("i1", {"connections": 3}, ttl=30)
    await instances.put("i2", {"connections": 1}, ttl=30)
    assert {k: v["connections"] for k, v in (await instances.read()).items()} == {"i1": 3, "i2": 1}
    await instances.drop("i2")
    assert list(await instances.read()) == ["i1"]


async def test_dead_instances_are_pruned(redis: Redis, prefix: str) -> None:
    instances = RedisInstances(redis, prefix)
    await instances.put("alive", {"connections": 1}, ttl=30)
    await instances.put("dead", {"connections": 1}, ttl=0.05)
    await asyncio.sleep(0.1)  # let the entry's own expiry pass (not a sync point)
    assert await instances.prune() == 1
    assert list(await instances.read()) == ["alive"]
