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
