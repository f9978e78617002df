"""The embedded bus: one instance, so fan-out stays in the room and the durable log is the
store's update table (SQLite, or Postgres when it runs without Redis)."""

from __future__ import annotations

from collections.abc import Sequence

from syncd.room.backend import DocGone, RemoteListener
from syncd.storage import NoteNotFound, Store


class LocalBus:
    """`DocBackend` over the store alone: `append` returns once the batch is committed."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def load(self, doc_id: str) -> Sequence[bytes]:
        snapshot = await self._store.load_snapshot(doc_id)
        # Compaction deletes exactly the rows it folds, so the log holds only what the
        # snapshot lacks; reading it whole also covers a row committed out of seq order.
        updates = [data for _, data in await self._store.read_updates(doc_id)]
        return [snapshot.state, *updates] if snapshot is not None else updates

    async def append(self, doc_id: str, updates: Sequence[bytes]) -> None:
        try:
            await self._store.append_updates(doc_id, updates)
        except NoteNotFound:
            raise DocGone(doc_id) from None

    async def compact(self, doc_id: str) -> None:
        try:
            await self._store.compact_doc(doc_id)
        except NoteNotFound:
            raise DocGone(doc_id) from None

    def subscribe(self, doc_id: str, listener: RemoteListener) -> None:
        """Nothing to subscribe to: no other instance writes these docs."""

    def unsubscribe(self, doc_id: str) -> None:
        """See `subscribe`."""

    def publish_awareness(self, doc_id: str, payload: bytes) -> None:
        """No other instance to tell."""
