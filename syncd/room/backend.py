"""What a room needs from the layers below it (the bus and, through it, storage)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

RemoteUpdates = Callable[[Sequence[bytes]], None]


class DocGone(Exception):
    """Raised by a backend when the doc no longer exists (its note was deleted): the room
    stops writing and closes its peers instead of retrying forever."""


class DocBackend(Protocol):
    """Durable update log plus cross-instance fan-out for docs.

    `append` returns only once the updates are durable (SQLite commit, Redis stream entry):
    the room fans updates out to other clients after that and never before.
    """

    async def load(self, doc_id: str) -> Sequence[bytes]:
        """Every update needed to rebuild the doc (snapshot first, then the log's tail)."""
        ...

    async def append(self, doc_id: str, updates: Sequence[bytes]) -> None: ...

    async def compact(self, doc_id: str, state: bytes) -> None:
        """Fold the log into the stored snapshot; `state` is the live doc's full state."""
        ...

    def subscribe(self, doc_id: str, on_updates: RemoteUpdates) -> None:
        """Start delivering updates that other instances append for this doc."""
        ...

    def unsubscribe(self, doc_id: str) -> None: ...
