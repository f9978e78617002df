"""The rooms loaded on this instance: single-flight loading, checkpoints and unloading.

Ten clients opening a cold doc at the same instant cause one load; the others wait for it.
A room unloads only when nothing holds it and its state is stored (log flushed, snapshot
compacted); if storing fails the room stays in memory and is retried on the next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from syncd.room.backend import DocBackend, DocGone
from syncd.room.room import Room, RoomLimits

log = logging.getLogger(__name__)

Checkpoint = Callable[[Room], Awaitable[None]]


class RoomLoadError(Exception):
    """The doc could not be loaded; it is never served empty (close 1013, try again)."""


class RoomRegistry:
    """Owns every `Room` of this instance; an async context manager."""

    def __init__(
        self,
        backend: DocBackend,
        *,
        limits: RoomLimits | None = None,
        checkpoint_interval: float = 30.0,
        on_checkpoint: Checkpoint | None = None,
        on_unloaded: Callable[[Room], None] | None = None,
    ) -> None:
        self._backend = backend
        self._limits = limits or RoomLimits()
        #: told after each stored checkpoint (moves the note's version and text); if it
        #: raises, the checkpoint counts as failed and is retried
        self._on_checkpoint = on_checkpoint
        self._on_unloaded = on_unloaded
        self._interval = checkpoint_interval
        self._rooms: dict[str, Room] = {}
        self._loading: dict[str, asyncio.Future[Room]] = {}
        self._unloading: dict[str, asyncio.Task[None]] = {}
        self._ticker: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RoomRegistry:
        self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await self.store_all()

    # -- access ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rooms)

    def get(self, doc_id: str) -> Room | None:
        """The loaded room of `doc_id`, if any (never loads)."""
        return self._rooms.get(doc_id)

    def rooms(self) -> list[Room]:
        return list(self._rooms.values())

    async def acquire(self, doc_id: str) -> Room:
        """Return the loaded room, loading it once however many callers ask at once.

        The caller holds the room until `release`; raises `RoomLoadError`.
        """
        room = self._rooms.get(doc_id)
        if room is None:
            pending = self._loading.get(doc_id)
            if pending is None:
                pending = asyncio.get_running_loop().create_future()
                self._loading[doc_id] = pending
                try:
                    room = await self._load(doc_id)
                except BaseException as exc:
                    error = exc if isinstance(exc, RoomLoadError) else RoomLoadError(str(exc))
                    pending.set_exception(error)
                    pending.exception()  # mark retrieved: waiters may be none
                    raise error from exc
                finally:
                    self._loading.pop(doc_id, None)
                pending.set_result(room)
            else:
                room = await asyncio.shield(pending)
        room.holds += 1
        return room

    def release(self, room: Room) -> None:
        """Drop a hold; the last one out starts the unload."""
        room.holds -= 1
        if room.holds == 0 and not room.peers:
            self._start_unload(room)

    @contextlib.asynccontextmanager
    async def borrow(self, doc_id: str) -> AsyncIterator[Room]:
        """Hold a room for the duration of a server-side operation (REST read or edit)."""
        room = await self.acquire(doc_id)
        try:
            yield room
        finally:
            self.release(room)

    # -- load / store / unload -----------------------------------------------------------

    async def _load(self, doc_id: str) -> Room:
        unloading = self._unloading.get(doc_id)
        if unloading is not None:
            await asyncio.shield(unloading)
            if doc_id in self._rooms:
                return self._rooms[doc_id]
        room = Room(doc_id, self._backend, self._limits)
        # Subscribe before loading so nothing another instance appends in between is missed;
        # updates are idempotent, so seeing one twice is harmless.
        self._backend.subscribe(doc_id, room)
        try:
            updates = await self._backend.load(doc_id)
            room.load(updates)
        except Exception as exc:
            self._backend.unsubscribe(doc_id)
            log.exception("loading doc %s failed", doc_id)
            raise RoomLoadError(f"doc {doc_id} could not be loaded") from exc
        self._rooms[doc_id] = room
        return room

    async def checkpoint(self, room: Room) -> bool:
        """Store the room's state as a snapshot and tell the metadata hook; False on failure."""
        await room.drain()
        if not room.dirty or room.gone:
            return True
        room.dirty = False
        try:
            if not await self._backend.compact(room.doc_id):
                room.dirty = True  # deferred (lease held elsewhere): retried next tick
                return False
            if self._on_checkpoint is not None:
                await self._on_checkpoint(room)
        except DocGone:
            room.gone = True  # the note was deleted: nothing left to store
        except Exception:
            room.dirty = True
            log.exception("checkpoint of doc %s failed; the room stays loaded", room.doc_id)
            return False
        return True

    def _start_unload(self, room: Room) -> None:
        if room.doc_id in self._unloading:
            return
        task = asyncio.get_running_loop().create_task(self._unload(room))
        self._unloading[room.doc_id] = task
        task.add_done_callback(lambda _: self._unloading.pop(room.doc_id, None))

    async def _unload(self, room: Room) -> None:
        stored = await self.checkpoint(room)
        if not stored or room.holds or room.peers or not room.idle:
            return
        if self._rooms.get(room.doc_id) is room:
            del self._rooms[room.doc_id]
            self._backend.unsubscribe(room.doc_id)
            if self._on_unloaded is not None:
                self._on_unloaded(room)

    async def store_all(self) -> None:
        """Checkpoint every room (graceful shutdown)."""
        for room in list(self._rooms.values()):
            await self.checkpoint(room)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.tick()
            except Exception:
                log.exception("room registry tick failed")

    async def tick(self) -> None:
        """One pass: checkpoint dirty rooms, retry unloading idle ones."""
        for room in list(self._rooms.values()):
            if room.holds == 0 and not room.peers:
                self._start_unload(room)
            elif room.dirty:
                await self.checkpoint(room)
