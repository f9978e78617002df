"""The note cache: read-through, invalidation, and the stale-write race closed by
generations, on the in-process backend and on a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from syncd import metrics
from syncd.services.cache import MemoryCache, NoteCache, RedisCache
from syncd.storage import NoteAccess, NoteMetadata, NoteRecord, Permissions

GRANT = NoteAccess(owner=False, can_view=True, can_edit=True, can_delete=False)
REVOKED = NoteAccess(owner=False, can_view=False, can_edit=False, can_delete=False)


@pytest.fixture(params=["memory", "redis"])
def kind(request: pytest.FixtureRequest) -> tuple[str, str, str]:
    if request.param == "redis":
        prefix = request.getfixturevalue("redis_prefix").rstrip(":")
        return "redis", request.getfixturevalue("redis_server_url"), prefix
    return "memory", "", ""


@pytest.fixture
async def cache(kind: tuple[str, str, str]) -> AsyncIterator[NoteCache]:
    name, url, prefix = kind
    if name == "memory":
        yield NoteCache(MemoryCache(ttl=60))
        return
    import redis.asyncio as redis

    client = redis.Redis.from_url(url)
    try:
        yield NoteCache(RedisCache(client, prefix=prefix, ttl=60))
    finally:
        await client.aclose()


class Loader:
    """Stands in for the store: counts reads, can be held mid-read."""

    def __init__(self, value: object) -> None:
        self.value = value
        self.reads = 0
        self.gate: asyncio.Event | None = None
        self.reading = asyncio.Event()

    async def __call__(self) -> object:
        self.reads += 1
        value = self.value
        self.reading.set()
        if self.gate is not None:
            await self.gate.wait()
        return value


def hits(cache: str) -> float:
    return metrics.CACHE_REQUESTS.labels(cache, "hit")._value.get()


async def test_reads_through_once_then_hits(cache: NoteCache) -> None:
    load = Loader(GRANT)
    before = hits("access")
    assert await cache.access("n1", "ann", load) == GRANT
    assert await cache.access("n1", "ann", load) == GRANT
    assert load.reads == 1
    assert hits("access") == before + 1


async def test_invalidation_is_seen_at_once(cache: NoteCache) -> None:
    load = Loader(GRANT)
    await cache.access("n1", "ann", load)
    load.value = REVOKED
    await cache.invalidate("n1")
    assert await cache.access("n1", "ann", load) == REVOKED
    assert load.reads == 2


async def test_a_read_that_raced_a_write_does_not_store_the_old_value(cache: NoteCache) -> None:
    load = Loader(GRANT)
    load.gate = asyncio.Event()
    slow = asyncio.create_task(cache.access("n1", "ann", load))
    await load.reading.wait()  # the old row is read ...
    await cache.invalidate("n1")  # ... a writer commits and invalidates ...
    load.gate.set()
    assert await slow == GRANT  # ... the slow reader answers what it read, but caches nothing
    load.gate = None
    load.value = REVOKED
    assert await cache.access("n1", "ann", load) == REVOKED


async def test_absent_notes_are_not_cached(cache: NoteCache) -> None:
    load = Loader(None)
    assert await cache.access("gone", "ann", load) is None
    assert await cache.access("gone", "ann", load) is None
    assert load.reads == 2


async def test_note_records_round_trip(cache: NoteCache) -> None:
    now = datetime(2024, 12, 2, 10, 30, tzinfo=UTC)
    record = NoteRecord(
        id="n1",
        title="Kickoff",
        lead_id=None,
        created_by="ann",
        updated_by="bob",
        permissions=Permissions(("bob", "cy"), ("bob",), ()),
        metadata=NoteMetadata(("sales",), "meeting", None, "2024-12-24"),
        content_text="Agenda",
        version=3,
        created_at=now,
        last_modified=now,
    )
    load = Loader(record)
    assert await cache.note("n1", load) == record
    assert await cache.note("n1", load) == record
    assert load.reads == 1


async def test_caching_off_always_loads() -> None:
    cache = NoteCache(None)
    load = Loader(GRANT)
    await cache.access("n1", "ann", load)
    await cache.access("n1", "ann", load)
    await cache.invalidate("n1")
    assert load.reads == 2


async def test_the_memory_backend_stays_bounded_and_safe() -> None:
    backend = MemoryCache(ttl=60, max_entries=3)
    cache = NoteCache(backend)
    for i in range(10):
        await cache.access(f"n{i}", "ann", Loader(GRANT))
        await cache.invalidate(f"n{i}")
    assert len(backend._entries) <= 3 and len(backend._generations) <= 3
    generation, _ = await backend.get("n0", "x")
    await backend.invalidate("n0")  # a write while the reader loads ...
    for other in ("a", "b", "c"):  # ... and n0's generation is then forgotten
        await backend.invalidate(other)
    assert "n0" not in backend._generations
    await backend.put("n0", "x", generation, "stale")
    assert (await backend.get("n0", "x"))[1] is None
