"""The note cache: read-through, invalidation, and the stale-write race closed by
generations, on the in-process backend and on a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from syncd import metrics
from syncd.auth import Access, Principal
from syncd.services.cache import MemoryCache, NoteCache, RedisCache
from syncd.services.notes import NoteService
from syncd.storage import (
    NoteAccess,
    NoteMetadata,
    NoteNotFound,
    NoteRecord,
    Permissions,
    Store,
    open_store,
)

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


def requests(cache: str, result: str) -> float:
    return metrics.CACHE_REQUESTS.labels(cache, result)._value.get()


async def until(condition: Any) -> None:
    """Bounded: yield to the loop (Redis round trips included) until `condition()` holds."""
    for _ in range(5000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition not reached within 5 s")


async def test_concurrent_misses_of_one_entry_share_one_load(cache: NoteCache) -> None:
    load = Loader(GRANT)
    load.gate = asyncio.Event()
    shared = requests("access", "shared")
    first = asyncio.create_task(cache.access("n1", "ann", load))
    await asyncio.wait_for(load.reading.wait(), 5)
    others = [asyncio.create_task(cache.access("n1", "ann", load)) for _ in range(4)]
    await until(lambda: requests("access", "shared") == shared + 4)
    load.gate.set()
    assert await asyncio.wait_for(asyncio.gather(first, *others), 5) == [GRANT] * 5
    assert load.reads == 1


async def test_a_miss_after_an_invalidation_does_not_share_the_load_before_it(
    cache: NoteCache,
) -> None:
    load = Loader(GRANT)
    load.gate = asyncio.Event()
    slow = asyncio.create_task(cache.access("n1", "ann", load))
    await asyncio.wait_for(load.reading.wait(), 5)  # the old row is read ...
    gate, load.gate, load.value = load.gate, None, REVOKED
    await cache.invalidate("n1")  # ... a write revokes the grant ...
    # ... and a connect after it reads the new row, not the load under way
    assert await asyncio.wait_for(cache.access("n1", "ann", load), 5) == REVOKED
    gate.set()
    assert await asyncio.wait_for(slow, 5) == GRANT
    assert load.reads == 2


async def test_a_cancelled_load_leaves_those_waiting_on_it_to_load(cache: NoteCache) -> None:
    load = Loader(GRANT)
    load.gate = asyncio.Event()
    shared = requests("access", "shared")
    first = asyncio.create_task(cache.access("n1", "ann", load))
    await asyncio.wait_for(load.reading.wait(), 5)
    waiting = asyncio.create_task(cache.access("n1", "ann", load))
    await until(lambda: requests("access", "shared") == shared + 1)
    load.gate = None
    first.cancel()
    assert await asyncio.wait_for(waiting, 5) == GRANT
    assert load.reads == 2
    with pytest.raises(asyncio.CancelledError):
        await first


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


# -- the grant of a note created by its first connect (NoteService.connect_access) ----------


@pytest.fixture
async def counted(
    cache: NoteCache, tmp_path: Path
) -> AsyncIterator[tuple[NoteService, Store, list[str]]]:
    """A service with auto-create over a real SQLite store whose `get_access` reads are
    recorded (the note ids read)."""
    async with open_store(f"sqlite:///{tmp_path / 'syncd.db'}") as store:
        reads: list[str] = []
        read = store.get_access

        async def get_access(note_id: str, user_id: str, **kwargs: Any) -> NoteAccess | None:
            reads.append(note_id)
            return await read(note_id, user_id, **kwargs)

        store.get_access = get_access  # type: ignore[method-assign]
        nothing = cast(Any, None)
        service = NoteService(store, nothing, nothing, nothing, auto_create=True, cache=cache)
        yield service, store, reads


def _user(user_id: str) -> Principal:
    return Principal(user_id, None, None, (), 0.0, None)


async def test_a_note_created_by_a_connect_is_read_once(
    counted: tuple[NoteService, Store, list[str]],
) -> None:
    """The creator's grant is cached from the creation: the look-up that found no note is
    the only read, for this connect and the next."""
    service, store, reads = counted
    assert await service.connect_access(_user("ann"), "fresh") == Access.EDIT
    assert reads == ["fresh"]
    assert await store.get_note("fresh") is not None
    before = hits("access")
    assert await service.connect_access(_user("ann"), "fresh") == Access.EDIT
    assert reads == ["fresh"] and hits("access") == before + 1


async def test_the_grant_of_a_note_written_during_its_creation_is_not_cached(
    counted: tuple[NoteService, Store, list[str]], cache: NoteCache
) -> None:
    """A write committed and invalidated between the look-up and the end of the creation
    (here: the note moved to the trash) moves the generation: the creator's grant is not
    stored, and the next connect reads the note as it is."""
    service, store, reads = counted
    create = store.create_note

    async def create_then_trash(**kwargs: Any) -> NoteRecord:
        record = await create(**kwargs)
        await store.trash_note(record.id)
        await cache.invalidate(record.id)
        return record

    store.create_note = create_then_trash  # type: ignore[method-assign]
    await service.connect_access(_user("ann"), "racy")
    with pytest.raises(NoteNotFound):
        await service.connect_access(_user("ann"), "racy")
    # the look-up, then the next connect's two (absent; its creation finds the trashed
    # row, NoteExists, and reads again): nothing was answered from the cache
    assert reads == ["racy", "racy", "racy"]


async def test_a_note_another_connection_created_first_answers_its_own_grant(
    counted: tuple[NoteService, Store, list[str]],
) -> None:
    """When another user's connect created the note between this one's look-up and its
    own creation, the grant is read (not the creator's): no rights, refused."""
    service, store, reads = counted
    read = store.get_access

    async def absent_then_created(note_id: str, user_id: str, **kwargs: Any) -> NoteAccess | None:
        if not reads:
            reads.append(note_id)
            await store.create_note(note_id=note_id, title="t", created_by="bob")
            return None
        return await read(note_id, user_id, **kwargs)

    store.get_access = absent_then_created  # type: ignore[method-assign]
    assert await service.connect_access(_user("ann"), "taken") == Access.NONE
    assert await service.connect_access(_user("bob"), "taken") == Access.EDIT
