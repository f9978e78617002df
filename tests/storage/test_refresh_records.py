"""Refresh-token records, one contract on the database (embedded) and on Redis (scaled)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from syncd.auth.refresh_redis import RedisRefreshRecords
from syncd.storage import Rotation, SqlRefreshRecords, open_store


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def backend(request: pytest.FixtureRequest) -> tuple[str, str, str]:
    """(kind, url, redis key prefix) of each backend in turn."""
    if request.param == "redis":
        prefix = request.getfixturevalue("redis_prefix").rstrip(":")
        return "redis", request.getfixturevalue("redis_server_url"), prefix
    return "sql", request.getfixturevalue(f"{request.param}_url"), ""


@pytest.fixture
async def records(backend: tuple[str, str, str]) -> AsyncIterator[object]:
    kind, url, prefix = backend
    if kind == "redis":
        import redis.asyncio as redis

        client = redis.Redis.from_url(url)
        try:
            yield RedisRefreshRecords(client, prefix=prefix, max_ttl=60)
        finally:
            await client.aclose()
        return
    async with open_store(url) as store:
        yield SqlRefreshRecords(store.engine)


async def test_rotation_spends_a_token_once(records) -> None:
    later = time.time() + 60
    await records.issue("t1", "fam", "ann", later)
    assert await records.rotate("t1", "fam", "t2", "ann", later) is Rotation.OK
    assert await records.rotate("t2", "fam", "t3", "ann", later) is Rotation.OK
    assert await records.rotate("t3", "fam", "t4", "ann", later) is Rotation.OK


async def test_a_replay_revokes_the_whole_family(records) -> None:
    later = time.time() + 60
    await records.issue("t1", "fam", "ann", later)
    assert await records.rotate("t1", "fam", "t2", "ann", later) is Rotation.OK
    assert await records.rotate("t1", "fam", "t9", "ann", later) is Rotation.REUSED
    assert await records.rotate("t2", "fam", "t3", "ann", later) is Rotation.REVOKED
    await records.issue("o1", "other", "ann", later)
    assert await records.rotate("o1", "other", "o2", "ann", later) is Rotation.OK


async def test_revoke_and_unknown_tokens(records) -> None:
    later = time.time() + 60
    await records.issue("t1", "fam", "ann", later)
    await records.revoke("fam")
    assert await records.rotate("t1", "fam", "t2", "ann", later) is Rotation.REVOKED
    assert await records.rotate("nope", "fam2", "x", "ann", later) is Rotation.UNKNOWN


async def test_expired_records_count_as_unknown_and_are_purged(records) -> None:
    await records.issue("t1", "fam", "ann", time.time() - 1)
    assert await records.rotate("t1", "fam", "t2", "ann", time.time() + 60) is Rotation.UNKNOWN
    purged = await records.purge_expired()
    assert purged == (0 if isinstance(records, RedisRefreshRecords) else 1)


async def test_a_token_minted_elsewhere_starts_its_family_on_first_use(records) -> None:
    later = time.time() + 60
    assert await records.adopt("crm1", "xfam", later, "t2", "ann", later) is Rotation.OK
    assert await records.rotate("t2", "xfam", "t3", "ann", later) is Rotation.OK
    # the CRM's token again: a replay, which revokes the family it started
    assert await records.adopt("crm1", "xfam", later, "t9", "ann", later) is Rotation.REUSED
    assert await records.rotate("t3", "xfam", "t4", "ann", later) is Rotation.REVOKED
    assert await records.adopt("crm1", "xfam", later, "t5", "ann", later) is Rotation.REVOKED


async def test_a_token_minted_elsewhere_can_be_revoked_before_its_first_use(records) -> None:
    later = time.time() + 60
    await records.revoke("xlogout", later)
    assert await records.adopt("crm2", "xlogout", later, "t2", "ann", later) is Rotation.REVOKED
