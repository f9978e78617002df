"""The embedded bus: one instance, so fan-out stays in the room and the durable log is the
store's update table (SQLite, or Postgres when it runs without Redis)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from syncd.room.backend import DocGone, RemoteListener
from syncd.storage import NoteNotFound, Store

_Pending = tuple[str, Sequence[bytes], asyncio.Future[None]]


def _settle(batch: list[_Pending], error: BaseException | None) -> None:
    for _, _, future in batch:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


class LocalBus:
    """`DocBackend` over the store alone: `append` returns once the batch is committed."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: list[_Pending] = []
        self._flushing = False  # a task is awaiting the store
        self._scheduled = False  # `_commit_now` is due on the next loop turn
        self._tasks: set[asyncio.Task[None]] = set()

    async def load(self, doc_id: str) -> Sequence[bytes]:
        # Compaction deletes exactly the rows it folds, so the log holds only what the
        # snapshot lacks; reading it whole also covers a row committed out of seq order.
        return await self._store.load_doc(doc_id)

    async def append(self, doc_id: str, updates: Sequence[bytes]) -> None:
        """Group commit: the appends of every room made in one event-loop turn share one
        transaction (one SQLite writer, one fsync). Rooms each committing on their own
        connection waited on each other in SQLite's busy handler (1-100 ms sleeps), which
        measured as p99 fan-out latency of a second at 20 rooms x 10 clients.

        Returns only once the group is committed: the room sends nothing before that."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((doc_id, updates, future))
        if not self._flushing and not self._scheduled:
            # Runs on the next loop turn, after every room that flushes on this one has
            # queued its batch; a running flush task takes the queue over instead.
            self._scheduled = True
            loop.call_soon(self._commit_now)
        await future

    async def append_group(
        self, batches: Sequence[tuple[str, Sequence[bytes]]]
    ) -> dict[str, BaseException | None]:
        """The group commit of `syncd.room.passes` when `append_now` could not make it (the
        write lock held by a compaction, a session write or another process; Postgres):
        the turn's rooms wait in one call, queued as `append` calls are, instead of each
        room starting its own task with its own future. Answers, per doc id, None once
        committed or the error (`DocGone` for a deleted note: the others still commit)."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = []
        for doc_id, updates in batches:
            future: asyncio.Future[None] = loop.create_future()
            self._pending.append((doc_id, updates, future))
            futures.append(future)
        if not self._flushing and not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._commit_now)
        results = await asyncio.gather(*futures, return_exceptions=True)
        return {
            doc_id: result if isinstance(result, BaseException) else None
            for (doc_id, _), result in zip(batches, results, strict=True)
        }

    @property
    def groups_appends(self) -> bool:
        """Every pass goes through `append_group` (Postgres: `append_now` never commits);
        on SQLite only those `append_now` could not make."""
        return not self._store.appends_now

    @property
    def appends_now(self) -> bool:
        """`append_now` can commit (a SQLite file); False: it never does (Postgres)."""
        return self._store.appends_now

    def append_now(self, batches: Sequence[tuple[str, Sequence[bytes]]]) -> bool:
        """The group commit of `syncd.room.passes`, made right away: True once `batches`
        (doc id, updates) are committed; False, with nothing written, when it cannot be
        done without awaiting (the write lock is held, or appends of this bus are still
        queued: those go first, so the log keeps the order of the calls). Raises, with
        nothing written, if the commit fails (`NoteNotFound` for a deleted note): the
        caller then appends room by room through `append`."""
        if self._flushing or self._pending:
            return False
        return self._store.append_many_now(batches)

    def _commit_now(self) -> None:
        """Commit the turn's group right in this callback when the store can (a SQLite
        file with its write lock free): no task to create and wake per turn. Otherwise,
        or for a group holding a deleted note, a task awaits the store as before."""
        self._scheduled = False
        if self._flushing or not self._pending:
            return
        batch = self._pending
        try:
            done = self._store.append_many_now([(doc, updates) for doc, updates, _ in batch])
        except NoteNotFound:
            done = False  # nothing written: the task commits the others one by one
        except Exception as exc:
            self._pending = []
            _settle(batch, exc)
            return
        if done:
            self._pending = []
            _settle(batch, None)
            return
        self._flushing = True
        task = asyncio.get_running_loop().create_task(self._flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await self._store.append_many([(doc, updates) for doc, updates, _ in batch])
                except NoteNotFound:
                    await self._append_one_by_one(batch)
                except Exception as exc:
                    _settle(batch, exc)
                else:
                    _settle(batch, None)
        finally:
            self._flushing = False

    async def _append_one_by_one(self, batch: list[_Pending]) -> None:
        """A deleted note failed the group: commit the others, tell its room `DocGone`."""
        for doc_id, updates, future in batch:
            try:
                await self._store.append_updates(doc_id, updates)
            except NoteNotFound:
                _settle([(doc_id, updates, future)], DocGone(doc_id))
            except Exception as exc:
                _settle([(doc_id, updates, future)], exc)
            else:
                _settle([(doc_id, updates, future)], None)

    async def compact(self, doc_id: str) -> bool:
        """Fold the doc's log into its snapshot (the registry's checkpoint), in slices of
        the loop that serves every room: see `Store.compact_doc_in_slices`."""
        try:
            await self._store.compact_doc_in_slices(doc_id)
        except NoteNotFound:
            raise DocGone(doc_id) from None
        return True

    def subscribe(self, doc_id: str, listener: RemoteListener) -> None:
        """Nothing to subscribe to: no other instance writes these docs."""

    def unsubscribe(self, doc_id: str) -> None:
        """See `subscribe`."""

    def publish_awareness(self, doc_id: str, payload: bytes) -> None:
        """No other instance to tell."""

    def publish_stateless(self, doc_id: str, payload: str) -> None:
        """No other instance to tell."""
