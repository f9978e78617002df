"""Folding a doc's Redis stream into its Postgres snapshot, one instance at a time.

The order makes it crash-safe: read the snapshot and the stream after it, merge them into
one compact update (`compact_state`: re-encoded by a Doc, so loading it is cheap), write the
snapshot together with the last stream id it holds (refused if it would hold less than the
stored one), and only then trim the stream up to that id. A crash anywhere leaves the
entries in the stream, and merging them again is harmless (CRDT updates are idempotent).
A lease (`SET NX PX`) keeps two instances from compacting one doc at once.

Trimming also spares entries younger than `keep_ms` (as y-redis keeps a minimum message
lifetime): another instance with the doc loaded reads the stream from the last id it holds,
and a reader that lags (reconnecting after a Redis restart, a stalled event loop) would
otherwise find entries it never read already trimmed, and its room would silently lack
those updates for good (later updates of the same Yjs client then stay pending behind the
gap). Orphaned docs, idle for a whole compaction interval, are trimmed fully.
"""

from __future__ import annotations

import logging
import time

from redis.asyncio import Redis

from syncd import metrics
from syncd.bus.keys import Keys, id_of_part, id_order, key_part
from syncd.room.backend import DocGone
from syncd.storage import NoteNotFound, Store
from syncd.updates import CompactionError, compact_state

log = logging.getLogger(__name__)

#: a holder that died mid-compaction (or lost Redis before releasing) blocks the doc's
#: compaction this long at most; a pass takes milliseconds, and two overlapping passes are
#: still safe (the dominance check and idempotent merges), just wasted work
LEASE_MS = 10_000
#: entries stay in the stream at least this long, folded into the snapshot or not
KEEP_MS = 60_000

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

    def __init__(
        self,
        redis: Redis,
        store: Store,
        instance_id: str,
        keys: Keys,
        *,
        keep_ms: int = KEEP_MS,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._store = store
        self._instance_id = instance_id
        self._keep_ms = keep_ms
        #: docs whose compaction pycrdt refused, with the last stream id it was tried up
        #: to: logged once, not again every pass until the stream grows
        self._failed: dict[str, bytes] = {}

    async def compact(self, doc_id: str, *, keep_ms: int | None = None) -> int | None:
        """Fold the stream into the snapshot and trim what the snapshot holds, sparing
        entries younger than `keep_ms` (default: the compactor's); return how many entries
        were folded (0: nothing new), or None when another holder has the lease and the
        caller should try again later."""
        lease = self._keys.lease(doc_id)
        if not await self._redis.set(lease, self._instance_id, nx=True, px=LEASE_MS):
            return None
        try:
            keep = self._keep_ms if keep_ms is None else keep_ms
            return await self._compact_leased(doc_id, keep)
        finally:
            await self._redis.eval(_RELEASE, 1, lease, self._instance_id)

    async def _compact_leased(self, doc_id: str, keep_ms: int) -> int:
        stream = self._keys.updates(doc_id)
        snapshot = await self._store.load_snapshot(doc_id)
        position = snapshot.position if snapshot is not None else ""
        start = f"({position}" if position else "-"
        entries = await self._redis.xrange(stream, min=start, max="+")
        if entries:
            parts = [fields[b"u"] for _, fields in entries]
            if snapshot is not None:
                parts.insert(0, snapshot.state)
            try:
                state = compact_state(parts)
            except CompactionError as exc:
                self._compaction_failed(doc_id, entries[-1][0], len(entries), exc)
                return 0
            self._failed.pop(doc_id, None)
            last_id = entries[-1][0].decode()
            try:
                stored = await self._store.save_snapshot(doc_id, state, position=last_id)
            except NoteNotFound:
                await self._redis.delete(stream)
                await self._redis.zrem(self._keys.doc_index, key_part(doc_id))
                raise DocGone(doc_id) from None
            if not stored:
                log.error("doc %s: snapshot refused (would hold less); stream kept", doc_id)
                metrics.ERRORS.labels("compaction").inc()
                return 0
            position = last_id
        if position:
            await self._trim(stream, position, keep_ms)
        await self._unlist_if_empty(doc_id)
        return len(entries)

    def _compaction_failed(
        self, doc_id: str, last_id: bytes, count: int, exc: CompactionError
    ) -> None:
        """Snapshot and stream stay as they are (loading reads both: nothing is lost)."""
        metrics.ERRORS.labels("compaction").inc()
        if self._failed.get(doc_id) == last_id:
            return  # said already, for these very entries
        if len(self._failed) >= 1024:
            self._failed.clear()
        self._failed[doc_id] = last_id
        log.error(
            "doc %s: compaction failed, snapshot and %d stream entries kept: %s",
            doc_id,
            count,
            exc,
        )

    async def _trim(self, stream: str, position: str, keep_ms: int) -> None:
        """Trim entries up to `position` (what the snapshot holds) older than `keep_ms`."""
        minid = next_id(position.encode())
        if keep_ms > 0:
            seconds, micros = await self._redis.time()  # the clock stream ids come from
            cutoff = f"{int(seconds) * 1000 + int(micros) // 1000 - keep_ms}-0"
            minid = min(minid, cutoff, key=id_order)
        await self._redis.xtrim(stream, minid=minid)

    async def _unlist_if_empty(self, doc_id: str) -> None:
        """Drop the doc from the index once its stream is empty.

        Not one Lua script: the index and the stream live in different cluster slots. An
        append does XADD before ZADD, so if one lands between the checks below, the second
        XLEN sees its entry and the doc goes back into the index.
        """
        stream = self._keys.updates(doc_id)
        if await self._redis.xlen(stream):
            return
        await self._redis.zrem(self._keys.doc_index, key_part(doc_id))
        if await self._redis.xlen(stream):
            await self._redis.zadd(self._keys.doc_index, {key_part(doc_id): time.time()})

    async def compact_idle(self, *, older_than: float, skip: set[str], limit: int = 100) -> int:
        """Compact docs whose stream saw no append for `older_than` seconds — those of an
        instance that died, whose rooms nobody has open. Returns the docs compacted.

        Their streams are trimmed of entries older than `older_than` too: an instance that
        has such a doc loaded had that long to read them.
        """
        cutoff = time.time() - older_than
        keep_ms = min(self._keep_ms, int(older_than * 1000))
        doc_ids = await self._redis.zrangebyscore(self._keys.doc_index, "-inf", cutoff, 0, limit)
        done = 0
        for member in doc_ids:
            doc_id = id_of_part(member)
            if doc_id is None:
                metrics.ERRORS.labels("compaction").inc()
                log.error("the doc index holds %r, which names no doc; skipping it", member)
                continue
            if doc_id in skip:
                continue
            try:
                if await self.compact(doc_id, keep_ms=keep_ms):
                    done += 1
            except DocGone:
                continue
            except Exception:
                log.exception("compacting orphaned doc %s failed", doc_id)
        return done
