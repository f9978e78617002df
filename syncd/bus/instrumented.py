"""A `DocBackend` decorator that reports to `syncd.metrics`: storage and snapshot
durations, updates applied from other instances (the room counts its own) and rooms
loaded.

It wraps whichever bus the app runs on, so the buses need not know about metrics. The
registry subscribes before loading a doc and unsubscribes when it unloads it (or the load
fails), so subscriptions are the loaded rooms.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from syncd import metrics
from syncd.room.backend import DocBackend, RemoteListener

_REMOTE = metrics.UPDATES_APPLIED.labels("remote")
_LOAD = metrics.STORAGE_SECONDS.labels("load")
_APPEND = metrics.STORAGE_APPEND  # batched: one per room per loop turn


class _CountingListener:
    __slots__ = ("_listener",)

    def __init__(self, listener: RemoteListener) -> None:
        self._listener = listener

    def apply_remote(self, updates: Sequence[bytes]) -> None:
        _REMOTE.inc(len(updates))
        self._listener.apply_remote(updates)

    def apply_remote_awareness(self, payload: bytes) -> None:
        self._listener.apply_remote_awareness(payload)


class InstrumentedBackend:
    """Delegates everything to `inner`, timing and counting on the way."""

    def __init__(self, inner: DocBackend) -> None:
        self.inner = inner
        self._subscribed: set[str] = set()

    async def load(self, doc_id: str) -> Sequence[bytes]:
        started = time.perf_counter()
        try:
            return await self.inner.load(doc_id)
        finally:
            _LOAD.observe(time.perf_counter() - started)

    async def append(self, doc_id: str, updates: Sequence[bytes]) -> None:
        started = time.perf_counter()
        await self.inner.append(doc_id, updates)
        _APPEND.observe(time.perf_counter() - started)

    @property
    def appends_now(self) -> bool:
        """The inner backend's (`syncd.room.passes`); False if it has no `append_now`."""
        return bool(getattr(self.inner, "appends_now", False))

    def append_now(self, batches: Sequence[tuple[str, Sequence[bytes]]]) -> bool:
        """The inner backend's `append_now` (see `syncd.room.passes`), timed as one
        append per doc; False if it has none."""
        append_now = getattr(self.inner, "append_now", None)
        if append_now is None:
            return False
        started = time.perf_counter()
        done: bool = append_now(batches)
        if done:
            _APPEND.observe_many(time.perf_counter() - started, len(batches))
        return done

    @property
    def groups_appends(self) -> bool:
        """The inner backend's (`syncd.room.passes`); False if it has no `append_group`."""
        return bool(getattr(self.inner, "groups_appends", False))

    async def append_group(
        self, batches: Sequence[tuple[str, Sequence[bytes]]]
    ) -> Mapping[str, BaseException | None]:
        """The inner backend's `append_group` (see `syncd.room.passes`), timed as one
        append per doc made durable."""
        started = time.perf_counter()
        outcome: Mapping[str, BaseException | None] = await self.inner.append_group(batches)  # type: ignore[attr-defined]
        durable = sum(1 for error in outcome.values() if error is None)
        if durable:
            _APPEND.observe_many(time.perf_counter() - started, durable)
        return outcome

    async def compact(self, doc_id: str) -> bool:
        started = time.perf_counter()
        try:
            return await self.inner.compact(doc_id)
        finally:
            metrics.SNAPSHOT_SECONDS.observe(time.perf_counter() - started)

    def subscribe(self, doc_id: str, listener: RemoteListener) -> None:
        if doc_id not in self._subscribed:
            self._subscribed.add(doc_id)
            metrics.ROOMS.inc()
        self.inner.subscribe(doc_id, _CountingListener(listener))

    def unsubscribe(self, doc_id: str) -> None:
        if doc_id in self._subscribed:
            self._subscribed.discard(doc_id)
            metrics.ROOMS.dec()
        self.inner.unsubscribe(doc_id)

    def publish_awareness(self, doc_id: str, payload: bytes) -> None:
        self.inner.publish_awareness(doc_id, payload)
