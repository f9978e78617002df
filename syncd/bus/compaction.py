"""Folding a doc's Redis stream into its Postgres snapshot, one instance at a time.

The order makes it crash-safe: read the snapshot and the stream after it, merge, write the
snapshot together with the last stream id it holds (refused if it would hold less than the
stored one), and only then trim the stream up to that id. A crash anywhere leaves the
entries in the stream, and merging them again is harmless (CRDT updates are idempotent).
A lease (`SET NX PX`) keeps two instances from compacting one doc at once.
"""

from __future__ import annotations

import logging
import time

from pycrdt import merge_updates
from redis.asyncio import Redis

from syncd.bus.keys import Keys
from syncd.room.backend import DocGone
from syncd.storage import NoteNotFound, Store

log = logging.getLogger(__name__)

LEASE_MS = 30_000

# Delete the lease only if it is still ours (it may have expired and passed on).
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def next_id(stream_id: bytes) -> str:
    """The smallest stream id greater than `stream_id` (XTRIM MINID keeps ids >= it)."""
    ms, _, seq = stream_id.decode().partition("-")
    return f"{ms}-{int(seq or 0) + 1}"


class Compactor:
    """Compaction passes; each is idempotent and can be driven one at a time in tests."""

    def __init__(self, redis: Redis, store: Store, instance_id: str, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._store = store
        self._instance_id = instance_id
        self.compactions = 0
        self.refused = 0

    async def compact(self, doc_id: str) -> int:
        """Fold the stream into the snapshot; return how many entries were folded (0 when
        there was nothing to do or another instance holds the lease)."""
        lease = self._keys.lease(doc_id)
        if not await self._redis.set(lease, self._instance_id, nx=True, px=LEASE_MS):
            return 0
        try:
            return await self._compact_leased(doc_id)
        finally:
            await self._redis.eval(_RELEASE, 1, lease, self._instance_id)

    async def _compact_leased(self, doc_id: str) -> int:
        stream = self._keys.updates(doc_id)
        snapshot = await self._store.load_snapshot(doc_id)
        start = f"({snapshot.position}" if snapshot is not None and snapshot.position else "-"
        entries = await self._redis.xrange(stream, min=start, max="+")
        if not entries:
            await self._unlist_if_empty(doc_id)
            return 0
        parts = [fields[b"u"] for _, fields in entries]
        if snapshot is not None:
            parts.insert(0, snapshot.state)
        state = merge_updates(*parts)
        last_id = entries[-1][0]
        try:
            stored = await self._store.save_snapshot(doc_id, state, position=last_id.decode())
        except NoteNotFound:
            await self._redis.delete(stream)
            await self._redis.zrem(self._keys.doc_index, doc_id)
            raise DocGone(doc_id) from None
        if not stored:
            self.refused += 1
            log.error("doc %s: snapshot refused (would hold less); stream kept", doc_id)
            return 0
        await self._redis.xtrim(stream, minid=next_id(last_id))
        await self._unlist_if_empty(doc_id)
        self.compactions += 1
        return len(entries)

    async def _unlist_if_empty(self, doc_id: str) -> None:
        """Drop the doc from the index once its stream is empty.

        Not one Lua script: the index and the stream live in different cluster slots. An
        append does XADD before ZADD, so if one lands between the checks below, the second
        XLEN sees its entry and the doc goes back into the index.
        """
        stream = self._keys.updates(doc_id)
        if await self._redis.xlen(stream):
            return
        await self._redis.zrem(self._keys.doc_index, doc_id)
        if await self._redis.xlen(stream):
            await self._redis.zadd(self._keys.doc_index, {doc_id: time.time()})

    async def compact_idle(self, *, older_than: float, skip: set[str], limit: int = 100) -> int:
        """Compact docs whose stream saw no append for `older_than` seconds — those of an
        instance that died, whose rooms nobody has open. Returns the docs compacted."""
        cutoff = time.time() - older_than
        doc_ids = await self._redis.zrangebyscore(self._keys.doc_index, "-inf", cutoff, 0, limit)
        done = 0
        for raw in doc_ids:
            doc_id = raw.decode()
            if doc_id in skip:
                continue
            try:
                if await self.compact(doc_id):
                    done += 1
            except DocGone:
                continue
            except Exception:
                log.exception("compacting orphaned doc %s failed", doc_id)
        return done
