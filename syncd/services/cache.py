"""Caches of note metadata and permission look-ups, invalidated on every write.

Embedded: in this process. Scaled: in Redis, one hash per note (`Keys.cache`: `{doc:<id>}`,
sharing the doc's cluster slot) that every instance reads, so an invalidation is seen by
every instance at once: there is no per-instance copy that could serve a stale grant.

The race every such cache has (a reader loads the old row, a writer commits and
invalidates, the reader then stores the old row) is closed with a generation: a reader
remembers the note's generation before loading and stores only if it is unchanged;
invalidation moves it. Every entry expires (`ttl`), so Redis may evict them
(`volatile-lru`) and nothing lingers.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar

from redis.asyncio import Redis

from syncd import metrics
from syncd.bus.keys import Keys
from syncd.services.events import NoteEvent
from syncd.storage import NoteAccess, NoteMetadata, NoteRecord, Permissions

log = logging.getLogger(__name__)

T = TypeVar("T")
_NOTE = "n"


class CacheStore(Protocol):
    async def get(self, note_id: str, field: str) -> tuple[str, str | None]:
        """(generation, cached value or None)."""
        ...

    async def put(self, note_id: str, field: str, generation: str, value: str) -> None:
        """Store `value` unless the note was invalidated since `generation` was read."""
        ...

    async def invalidate(self, note_id: str) -> None: ...


class MemoryCache:
    """In-process, LRU-bounded; generations are a counter kept per recently written note."""

    def __init__(self, *, ttl: float = 60.0, max_entries: int = 10_000) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, str], tuple[float, str]] = OrderedDict()
        self._generations: OrderedDict[str, int] = OrderedDict()
        self._clock = 0
        #: the newest generation forgotten by the LRU bound: older reads can no longer prove
        #: they are current, so they are not stored
        self._floor = 0

    def _generation(self, note_id: str) -> int:
        return self._generations.get(note_id, self._floor)

    async def get(self, note_id: str, field: str) -> tuple[str, str | None]:
        generation = str(self._generation(note_id))
        entry = self._entries.get((note_id, field))
        if entry is None:
            return generation, None
        expires, value = entry
        if expires < time.monotonic():
            del self._entries[(note_id, field)]
            return generation, None
        self._entries.move_to_end((note_id, field))
        return generation, value

    async def put(self, note_id: str, field: str, generation: str, value: str) -> None:
        if str(self._generation(note_id)) != generation:
            return
        self._entries[(note_id, field)] = (time.monotonic() + self._ttl, value)
        self._entries.move_to_end((note_id, field))
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    async def invalidate(self, note_id: str) -> None:
        self._clock += 1
        self._generations[note_id] = self._clock
        self._generations.move_to_end(note_id)
        while len(self._generations) > self._max:
            _, forgotten = self._generations.popitem(last=False)
            self._floor = max(self._floor, forgotten)
        for key in [k for k in self._entries if k[0] == note_id]:
            del self._entries[key]


# KEYS[1] the note's hash; ARGV generation read, field, value, ttl ms.
_PUT = """
local generation = redis.call('HGET', KEYS[1], 'gen') or ''
if generation ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""
# KEYS[1] the note's hash; ARGV new generation, ttl ms.
_INVALIDATE = """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'gen', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


class RedisCache:
    """Shared by every instance; one round trip per read, one script per write."""

    def __init__(self, redis: Redis, *, prefix: str = "syncd", ttl: float = 60.0) -> None:
        self._redis = redis
        self._keys = Keys(prefix)
        self._ttl_ms = max(1, int(ttl * 1000))
        # An invalidation marker outlives entries by far: a reader that started before it
        # could otherwise store an old row once the marker had expired.
        self._marker_ms = max(self._ttl_ms, 600_000)
        self._put = redis.register_script(_PUT)
        self._invalidate = redis.register_script(_INVALIDATE)

    def _key(self, note_id: str) -> str:
        return self._keys.cache(note_id)

    async def get(self, note_id: str, field: str) -> tuple[str, str | None]:
        generation, value = await self._redis.hmget(self._key(note_id), ["gen", field])
        return (
            generation.decode() if generation is not None else "",
            value.decode() if value is not None else None,
        )

    async def put(self, note_id: str, field: str, generation: str, value: str) -> None:
        await self._put(keys=[self._key(note_id)], args=[generation, field, value, self._ttl_ms])

    async def invalidate(self, note_id: str) -> None:
        await self._invalidate(keys=[self._key(note_id)], args=[uuid.uuid4().hex, self._marker_ms])


#: `CACHE_REQUESTS` children by (cache, result), bound once: `labels()` on every look-up
#: (every connect reads the access cache) was 1% of the server's connect path (py-spy)
_children: dict[tuple[str, str], Any] = {}


def _counter(cache: str, result: str) -> Any:
    child = _children.get((cache, result))
    if child is None:
        child = _children[(cache, result)] = metrics.CACHE_REQUESTS.labels(cache, result)
    return child


class _Abandoned(Exception):
    """The look-up others waited on was cancelled: each of them loads on its own."""


class NoteCache:
    """Read-through cache of `get_note` and `get_access` results (absent notes uncached).

    Misses of one entry under one generation share one load: the connects of a join
    storm on a note not yet cached (every client of a fresh room at once) each read the
    database otherwise (and each of them but one, with auto-create, then tried to create
    the note too): a read is a few million instructions, a whole connect about three
    (bench/connect_cost.py). A look-up that starts after an invalidation reads another
    generation, so it never shares a load begun before it.
    """

    def __init__(self, backend: CacheStore | None) -> None:
        #: None: caching off, every look-up goes to the loader
        self._backend = backend
        #: loads under way, by (note, field, generation read before the load)
        self._loading: dict[tuple[str, str, str], asyncio.Future[Any]] = {}

    async def access(
        self,
        note_id: str,
        user_id: str,
        load: Callable[[], Awaitable[NoteAccess | None]],
        *,
        create: Callable[[], Awaitable[NoteAccess | None]] | None = None,
    ) -> NoteAccess | None:
        """The user's grant on the note (None: no such note).

        `create`: called when `load` finds no note (WebSocket auto-create); it creates the
        note and answers the grant (the creator's, known without a read, or read when
        another connection created it first). That grant is stored under the generation
        read before `load`, as a loaded row is: a write to the note since (its rights, its
        trash, its deletion) moved the generation and the grant is not stored. One
        database read fewer per note created by a connect (bench/connect_cost.py).
        """
        return await self._through(
            "access", note_id, f"a:{user_id}", load, _dump_access, _load_access, create
        )

    async def note(
        self, note_id: str, load: Callable[[], Awaitable[NoteRecord | None]]
    ) -> NoteRecord | None:
        return await self._through("note", note_id, _NOTE, load, _dump_note, _load_note)

    async def forget(self, event: NoteEvent) -> None:
        """Subscriber (`syncd.wiring`) to the events that change a note's row or existence."""
        await self.invalidate(event.note_id)

    async def invalidate(self, note_id: str) -> None:
        """Call after every committed write to the note's row, rights or existence."""
        if self._backend is None:
            return
        try:
            await self._backend.invalidate(note_id)
        except Exception:
            # The write is committed; entries still expire after the ttl. Count it loudly.
            metrics.ERRORS.labels("cache").inc()
            log.exception("invalidating the cache of note %s failed", note_id)

    async def _through(
        self,
        cache: str,
        note_id: str,
        field: str,
        load: Callable[[], Awaitable[T | None]],
        dump: Callable[[T], str],
        parse: Callable[[str], T],
        create: Callable[[], Awaitable[T | None]] | None = None,
    ) -> T | None:
        backend = self._backend
        if backend is None:
            value = await load()
            return value if value is not None or create is None else await create()
        try:
            generation, raw = await backend.get(note_id, field)
        except Exception:
            metrics.ERRORS.labels("cache").inc()
            log.exception("cache read failed; reading the database")
            value = await load()
            return value if value is not None or create is None else await create()
        if raw is not None:
            _counter(cache, "hit").inc()
            return parse(raw)
        key = (note_id, field, generation)
        pending = self._loading.get(key)
        if pending is not None:
            _counter(cache, "shared").inc()
            try:
                shared: T | None = await asyncio.shield(pending)
                return shared
            except _Abandoned:
                pass  # the one loading was cancelled: load here, as a miss
        _counter(cache, "miss").inc()
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._loading[key] = done
        try:
            value = await load()
            if value is None and create is not None:
                value = await create()
            if value is not None:
                try:
                    await backend.put(note_id, field, generation, dump(value))
                except Exception:
                    metrics.ERRORS.labels("cache").inc()
                    log.exception("cache write failed")
        except BaseException as exc:
            done.set_exception(_Abandoned() if isinstance(exc, asyncio.CancelledError) else exc)
            done.exception()  # retrieved: no "never retrieved" log when nobody waited
            raise
        else:
            done.set_result(value)
        finally:
            if self._loading.get(key) is done:  # not yet taken over by another load
                del self._loading[key]
        return value


def open_cache(ttl: float, redis: Redis | None, *, prefix: str = "syncd") -> NoteCache:
    """In Redis when scaled, in process when embedded; `ttl` 0 turns caching off."""
    if ttl <= 0:
        return NoteCache(None)
    if redis is None:
        return NoteCache(MemoryCache(ttl=ttl))
    return NoteCache(RedisCache(redis, prefix=prefix, ttl=ttl))


def _dump_access(access: NoteAccess) -> str:
    return json.dumps([access.owner, access.can_view, access.can_edit, access.can_delete])


@functools.lru_cache(maxsize=1024)
def _load_access(raw: str) -> NoteAccess:
    """Parsed once per distinct grant: a grant is one of a few shapes (`NoteAccess` is
    frozen, so sharing one is safe), and every connect reads one."""
    owner, view, edit, delete = json.loads(raw)
    return NoteAccess(owner=owner, can_view=view, can_edit=edit, can_delete=delete)


def _dump_note(record: NoteRecord) -> str:
    shape: dict[str, Any] = {
        "id": record.id,
        "title": record.title,
        "lead_id": record.lead_id,
        "created_by": record.created_by,
        "updated_by": record.updated_by,
        "permissions": [
            list(p)
            for p in (
                record.permissions.can_view,
                record.permissions.can_edit,
                record.permissions.can_delete,
            )
        ],
        "metadata": [
            list(record.metadata.tags),
            record.metadata.category,
            record.metadata.priority,
            record.metadata.due_date,
        ],
        "content_text": record.content_text,
        "version": record.version,
        "created_at": record.created_at.isoformat(),
        "last_modified": record.last_modified.isoformat(),
    }
    return json.dumps(shape)


def _load_note(raw: str) -> NoteRecord:
    shape = json.loads(raw)
    view, edit, delete = shape["permissions"]
    tags, category, priority, due_date = shape["metadata"]
    return NoteRecord(
        id=shape["id"],
        title=shape["title"],
        lead_id=shape["lead_id"],
        created_by=shape["created_by"],
        updated_by=shape["updated_by"],
        permissions=Permissions(tuple(view), tuple(edit), tuple(delete)),
        metadata=NoteMetadata(tuple(tags), category, priority, due_date),
        content_text=shape["content_text"],
        version=shape["version"],
        created_at=datetime.fromisoformat(shape["created_at"]),
        last_modified=datetime.fromisoformat(shape["last_modified"]),
    )
