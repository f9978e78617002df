"""Two `RedisBus` instances used directly in a test (no REST or WebSocket in front): a
listener that records what reaches each doc, and a bus with a set of docs loaded."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from redis.asyncio import Redis

from syncd.bus import RedisBus
from syncd.bus.keys import Keys
from syncd.storage import Store, open_store


class Recorder:
    """A `RemoteListener` that keeps everything delivered to it."""

    def __init__(self) -> None:
        self.updates: list[bytes] = []
        self.awareness: list[bytes] = []

    def apply_remote(self, updates: Sequence[bytes]) -> None:
        self.updates.extend(updates)

    def apply_remote_awareness(self, payload: bytes) -> None:
        self.awareness.append(payload)


@contextlib.asynccontextmanager
async def store_with_notes(postgres_url: str, doc_ids: Sequence[str]) -> AsyncIterator[Store]:
    """A migrated store holding a note for each of `doc_ids`."""
    async with open_store(postgres_url, migrate=True) as opened:
        for doc_id in doc_ids:
            await opened.create_note(note_id=doc_id, title="t", created_by="owner")
        yield opened


@contextlib.asynccontextmanager
async def open_bus(
    redis_url: str, store: Store, instance_id: str, keys: Keys, doc_ids: Sequence[str]
) -> AsyncIterator[tuple[RedisBus, dict[str, Recorder]]]:
    """A bus with every doc of `doc_ids` subscribed and loaded (each empty), and the
    recorder of each."""
    redis = Redis.from_url(redis_url)
    try:
        async with RedisBus(
            redis, redis_url, store, instance_id, orphan_interval=3600, keys=keys
        ) as bus:
            recorders = {doc_id: Recorder() for doc_id in doc_ids}
            for doc_id, recorder in recorders.items():
                bus.subscribe(doc_id, recorder)
                assert await bus.load(doc_id) == []
            yield bus, recorders
    finally:
        await redis.aclose()


@contextlib.asynccontextmanager
async def two_buses(
    redis_url: str,
    redis_prefix: str,
    store: Store,
    doc_ids: Sequence[str],
    names: tuple[str, str] = ("bus-a", "bus-b"),
) -> AsyncIterator[
    tuple[Redis, Keys, tuple[RedisBus, dict[str, Recorder]], tuple[RedisBus, dict[str, Recorder]]]
]:
    """Two instances' buses on one Redis with every doc loaded on both, the test's own
    Redis client and the keys under the test's prefix: the scene of every test of what
    crosses (and what must not cross) between instances."""
    keys = Keys(redis_prefix.rstrip(":"))
    redis = Redis.from_url(redis_url)
    async with (
        contextlib.aclosing(redis),
        open_bus(redis_url, store, names[0], keys, doc_ids) as first,
        open_bus(redis_url, store, names[1], keys, doc_ids) as second,
    ):
        yield redis, keys, first, second
