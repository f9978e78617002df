"""What a room needs from the layers below it (the bus and, through it, storage).

The room defines these ports; the bus implements them (embedded: the store's update table;
scaled: Redis streams), so the room never imports a bus or a store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class DocGone(Exception):
    """Raised by a backend when the doc no longer exists (its note was deleted): the room
    stops writing and closes its peers instead of retrying forever."""


class RemoteListener(Protocol):
    """Where a backend delivers what other instances did to a loaded doc."""

    def apply_remote(self, updates: Sequence[bytes]) -> None: ...

    def apply_remote_awareness(self, payload: bytes) -> None: ...


class DocBackend(Protocol):
    """Durable update log plus cross-instance fan-out for docs.

    `append` returns only once the updates are durable (SQLite commit, Redis stream entry):
    the room fans updates out to other clients after that and never before.

    Optional group commits, used by the pass scheduler (`syncd.room.passes`) for the rooms
    with a pass due in one loop turn: `append_now(batches) -> bool` where `appends_now`
    (made without awaiting: SQLite), `append_group(batches) -> {doc id: error or None}`
    where `groups_appends` (one awaited call: Redis). Both hold the same contract per doc.
    """

    async def load(self, doc_id: str) -> Sequence[bytes]:
        """Every update needed to rebuild the doc (snapshot first, then the log's tail)."""
        ...

    async def append(self, doc_id: str, updates: Sequence[bytes]) -> None: ...

    async def compact(self, doc_id: str) -> bool:
        """Fold the log into the stored snapshot and trim what the snapshot holds; False
        when it cannot run now (another instance is compacting): try again later."""
        ...

    def subscribe(self, doc_id: str, listener: RemoteListener) -> None:
        """Deliver what other instances append for this doc (called before `load`)."""
        ...

    def unsubscribe(self, doc_id: str) -> None: ...

    def publish_awareness(self, doc_id: str, payload: bytes) -> None:
        """Send an awareness update to other instances (ephemeral, best effort)."""
        ...
