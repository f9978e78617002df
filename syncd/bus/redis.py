"""The scaled bus: one Redis stream per doc is the durable log between Postgres snapshots.

`append` returns once the updates are stream entries (Redis runs with appendonly), so a
room fans an update out only after any instance could recover it. Appends of every room
made during one event-loop turn go to Redis together (`syncd.bus.appender`: one `MULTI`
block on a single Redis, one pipeline per master on a cluster): fan-out throughput does not pay a
round trip per update or per room; and on a single Redis, while one append is in flight, the
turns that come go together in the next (`syncd.bus.commit`), not a round trip each.
Loading reads the snapshot, then the stream after the id the snapshot records. Compaction
(`syncd.bus.compaction`) folds the stream into the snapshot and trims only what the
snapshot holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from syncd import metrics
from syncd.backoff import Backoff
from syncd.bus.appender import StreamAppender
from syncd.bus.commit import GroupCommit
from syncd.bus.compaction import Compactor
from syncd.bus.events import EventHandler, RedisEvents
from syncd.bus.keys import Keys, id_order, key_part
from syncd.bus.reader import ClusterStreamReader, StreamReader
from syncd.room.backend import RemoteListener
from syncd.storage import Store

log = logging.getLogger(__name__)

_Pending = tuple[str, Sequence[bytes], asyncio.Future[None]]
LOAD_ATTEMPTS = 5
#: the error of a doc the appender's answer leaves out (it names every doc it was given)
_UNANSWERED = RuntimeError("the append's answer does not name this doc")


class RedisBus:
    """`DocBackend` over Redis streams and a Postgres (or any) store; an async context
    manager that runs the stream reader, the pub/sub listener and orphan compaction."""

    def __init__(
        self,
        redis: Redis,
        redis_url: str,
        store: Store,
        instance_id: str,
        *,
        orphan_interval: float = 30.0,
        keys: Keys | None = None,
        on_event: EventHandler | None = None,
        wait_replicas: int = 0,
        wait_ms: int = 1000,
    ) -> None:
        self._keys = keys or Keys()
        self._redis = redis
        self._store = store
        self.instance_id = instance_id
        self._origin = instance_id.encode()
        self._reader: StreamReader | ClusterStreamReader
        self._cluster = isinstance(redis, RedisCluster)
        #: doc id -> (stream name, doc-index member) of loaded docs, built once per doc
        self._names: dict[str, tuple[str, str]] = {}
        if isinstance(redis, RedisCluster):  # see `syncd.bus.connect.open_redis`
            self._reader = ClusterStreamReader(
                redis, redis_url, self._origin, self._keys, on_reconnect=self._catch_up
            )
        else:
            self._reader = StreamReader(
                redis_url,
                self._origin,
                self._keys,
                on_reconnect=self._catch_up,
                notices=lambda origin: self._keys.appended(origin.decode()).encode(),
            )
        self._appender = StreamAppender(
            redis,
            redis_url,
            self._keys,
            self._origin,
            replicas=wait_replicas,
            wait_ms=wait_ms,
            names=self._names_of,
            on_appended=None if isinstance(self._reader, ClusterStreamReader) else self._reader.own,
        )
        self.compactor = Compactor(redis, store, instance_id, self._keys)
        #: rights changes and deletions to and from the other instances (`on_event`)
        self.events = RedisEvents(redis, instance_id, self._keys, on_event)
        self._orphan_interval = orphan_interval
        self._pending: list[_Pending] = []
        #: on a single Redis, one append in flight at a time; the turns meanwhile go together
        #: in the next. Not on a cluster: there a master failing over holds its appends up
        #: to the appender's timeout, and must not hold back the docs of the other masters.
        self._commit = None if self._cluster else GroupCommit(self._append_now)
        #: loaded docs this instance appended to since their last compaction here
        self._written: set[str] = set()
        self._listeners: dict[str, RemoteListener] = {}
        #: awareness channel name -> doc id, exactly as subscribed (never parsed back)
        self._channels: dict[bytes, str] = {}
        self._pubsub: PubSub | None = None
        #: where stateless messages of loaded docs from other instances go (doc id, payload)
        self.on_stateless: Callable[[str, str], None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> RedisBus:
        self._stack.push_async_callback(self._appender.aclose)
        await self._stack.enter_async_context(self._reader)
        await self._open_pubsub()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._listen()),
            loop.create_task(self._compact_orphans_forever()),
        ]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()
        if self._commit is not None:
            await self._commit.aclose()
        await self._stack.aclose()

    # -- DocBackend ----------------------------------------------------------------------

    async def load(self, doc_id: str) -> Sequence[bytes]:
        # A compaction between reading the snapshot and the stream could trim entries this
        # load has not seen: read again until the snapshot position is stable.
        for _ in range(LOAD_ATTEMPTS):
            snapshot = await self._store.load_snapshot(doc_id)
            position = snapshot.position if snapshot is not None else ""
            start = f"({position}" if position else "-"
            entries = await self._redis.xrange(self._keys.updates(doc_id), min=start, max="+")
            again = await self._store.load_snapshot(doc_id)
            if (again.position if again is not None else "") == position:
                break
        else:
            raise RuntimeError(f"doc {doc_id}: snapshot kept moving while loading")
        last = entries[-1][0] if entries else (position or "0-0").encode()
        self._reader.start_at(doc_id, last)
        updates = [fields[b"u"] for _, fields in entries]
        return [snapshot.state, *updates] if snapshot is not None else updates

    async def append(self, doc_id: str, updates: Sequence[bytes]) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((doc_id, updates, future))
        if len(self._pending) == 1:
            # Its first step runs on the next loop turn and takes every append queued
            # until then: one pipeline for the rooms of a turn.
            task = loop.create_task(self._flush())
            task.add_done_callback(lambda t: None if t.cancelled() else t.exception())
        await future

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        outcome = await self.append_group([(d, u) for d, u, _ in batch])
        for doc_id, _, future in batch:
            if future.done():
                continue
            error = outcome.get(doc_id)
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    #: the pass scheduler sends a turn's rooms to `append_group` (`syncd.room.passes`)
    groups_appends = True

    async def append_group(
        self, batches: Sequence[tuple[str, Sequence[bytes]]]
    ) -> dict[str, Exception | None]:
        """Append the updates of several docs in one pipeline (one round trip on a single
        Redis, one per master on a cluster): {doc id: None once durable, else the error}.
        The pass scheduler calls it once per loop turn for every room with a pass due; while
        an append is in flight the calls wait and go out together (`syncd.bus.commit`; a single
        Redis only)."""
        if self._commit is None:
            return await self._append_now(batches)
        return await self._commit(batches)

    async def _append_now(
        self, batches: Sequence[tuple[str, Sequence[bytes]]]
    ) -> dict[str, Exception | None]:
        reader = self._reader if isinstance(self._reader, StreamReader) else None
        if reader is not None:
            reader.appending += 1  # its poll waits for the reply (see `syncd.bus.reader`)
        try:
            outcome = await self._appender.append(batches, time.time())
        except Exception as exc:
            outcome = {doc_id: exc for doc_id, _ in batches}
        finally:
            if reader is not None:
                reader.appending -= 1
        answer: dict[str, Exception | None] = {}
        written = self._written
        for doc_id, _ in batches:
            error = outcome.get(doc_id, _UNANSWERED)
            answer[doc_id] = error
            if error is None:
                written.add(doc_id)
        return answer

    def _names_of(self, doc_id: str) -> tuple[str, str]:
        names = self._names.get(doc_id)
        if names is None:
            names = (self._keys.updates(doc_id), key_part(doc_id))
        return names

    async def compact(self, doc_id: str) -> bool:
        """Fold the doc's stream into its snapshot, if this instance appended to it since
        it last did: each instance folds what it wrote, and one that only reads a doc
        (its room dirty with other instances' updates) leaves that to the writers, rather
        than every instance with the doc loaded loading, merging and saving the same
        snapshot each checkpoint (py-spy: compaction ~10% of a scaled instance's samples).
        Entries of a writer that died meanwhile stay in the stream (durable, and read by
        every load) until a writer or orphan compaction folds them."""
        if doc_id not in self._written:
            return True
        self._written.discard(doc_id)  # an append while this runs adds it again
        done = False
        try:
            done = await self.compactor.compact(doc_id) is not None
        finally:
            if not done:
                self._written.add(doc_id)
        return done

    def subscribe(self, doc_id: str, listener: RemoteListener) -> None:
        channel = self._keys.awareness(doc_id)
        self._listeners[doc_id] = listener
        self._names[doc_id] = (self._keys.updates(doc_id), key_part(doc_id))
        self._channels[channel.encode()] = doc_id
        self._reader.subscribe(doc_id, listener)
        self._in_background(self._pubsub_call("subscribe", channel))

    def unsubscribe(self, doc_id: str) -> None:
        channel = self._keys.awareness(doc_id)
        self._listeners.pop(doc_id, None)
        self._names.pop(doc_id, None)
        self._written.discard(doc_id)
        self._channels.pop(channel.encode(), None)
        self._reader.unsubscribe(doc_id)
        self._in_background(self._pubsub_call("unsubscribe", channel))

    def publish_awareness(self, doc_id: str, payload: bytes) -> None:
        self._in_background(
            self._redis.publish(self._keys.awareness(doc_id), self._origin + payload)
        )

    def publish_stateless(self, doc_id: str, payload: str) -> None:
        """Send a stateless message to the other instances that have `doc_id` loaded."""
        message = json.dumps({"origin": self.instance_id, "doc": doc_id, "payload": payload})
        self._in_background(self._redis.publish(self._keys.stateless, message))

    def _receive_stateless(self, data: bytes) -> None:
        try:
            message = json.loads(data)
            origin, doc_id, payload = message["origin"], message["doc"], message["payload"]
        except (ValueError, KeyError, TypeError):
            metrics.ERRORS.labels("bus_stateless").inc()
            log.warning("dropping a malformed stateless message from the bus")
            return
        if origin == self.instance_id or doc_id not in self._listeners:
            return
        if self.on_stateless is not None and isinstance(payload, str):
            try:
                self.on_stateless(doc_id, payload)
            except Exception:
                metrics.ERRORS.labels("bus_stateless").inc()
                log.exception("relaying a stateless message of doc %s failed", doc_id)

    async def _catch_up(self) -> None:
        """After the reader was cut off, reload any loaded doc whose stream was trimmed past
        what its room holds: the entries it missed are then only in the snapshot.
        (Compaction keeps entries a minute, so this only matters after long outages.)"""
        for doc_id, last_id in self._reader.positions().items():
            try:
                info = await self._redis.xinfo_stream(self._keys.updates(doc_id))
            except RedisError:
                continue  # no stream: nothing was appended since, nothing was trimmed
            # XTRIM leaves max-deleted-entry-id alone, so judge by what is left: entries were
            # appended after what the room holds, and none of those is still in the stream
            # right after it. (A false alarm only costs a reload; updates are idempotent.)
            first = info.get("first-entry")
            appended_since = id_order(info["last-generated-id"]) > id_order(last_id)
            if not appended_since or (first and id_order(first[0]) <= id_order(last_id)):
                continue
            listener = self._listeners.get(doc_id)
            if listener is None:
                continue
            log.warning("doc %s: stream trimmed past what its room holds; reloading", doc_id)
            try:
                listener.apply_remote(await self.load(doc_id))
            except Exception:
                metrics.ERRORS.labels("bus_catch_up").inc()
                log.exception("reloading doc %s after a reader outage failed", doc_id)

    # -- health --------------------------------------------------------------------------

    async def check(self) -> dict[str, str]:
        """Readiness facts: Redis reachable, reader connected, eviction policy safe."""
        checks = {"redis": "ok", "stream_reader": "ok" if self._reader.connected else "down"}
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            checks["redis"] = f"unavailable: {type(exc).__name__}"
            return checks
        try:
            policy = (await self._redis.config_get("maxmemory-policy")).get("maxmemory-policy")
        except RedisError:
            policy = None  # CONFIG may be disabled on managed Redis: nothing to tell
        if policy is not None and str(policy).startswith("allkeys"):
            checks["redis_eviction"] = f"unsafe maxmemory-policy {policy}: streams may be evicted"
        return checks

    # -- background ----------------------------------------------------------------------

    def _in_background(self, coro: Coroutine[Any, Any, object]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        task.add_done_callback(_log_failure)

    async def _pubsub_call(self, method: str, channel: str) -> None:
        if self._pubsub is not None:
            await getattr(self._pubsub, method)(channel)

    async def _open_pubsub(self) -> None:
        """A pub/sub connection subscribed to the events, stateless and every loaded doc's
        awareness channel. A new one after each failure: on a Redis Cluster the old one stays
        bound to its node, which may be the master that just died (a failover)."""
        old, self._pubsub = self._pubsub, None
        if old is not None:
            with contextlib.suppress(RedisError, OSError):
                await old.aclose()
        if isinstance(self._redis, RedisCluster):
            # the slot map may still name the dead master: read it again first
            await self._redis.nodes_manager.initialize()
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self._keys.events, self._keys.stateless, *self._channels)
        self._pubsub = pubsub

    async def _listen(self) -> None:
        """Awareness of loaded docs and note events, from one pub/sub connection."""
        backoff = Backoff(0.05, 5.0)
        while True:
            try:
                if self._pubsub is None:
                    await self._open_pubsub()
                assert self._pubsub is not None
                message = await self._pubsub.get_message(timeout=1.0)
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                metrics.ERRORS.labels("bus_pubsub").inc()
                delay = backoff.next()
                log.warning("pub/sub listener: %s; retrying in %.2fs", exc, delay)
                if self._pubsub is not None:
                    with contextlib.suppress(RedisError, OSError):
                        await self._pubsub.aclose()
                    self._pubsub = None
                await asyncio.sleep(delay)
                continue
            if message is None or message.get("type") != "message":
                continue
            channel, data = message["channel"], message["data"]
            if channel == self._keys.events.encode():
                await self.events.receive(data)
                continue
            if channel == self._keys.stateless.encode():
                self._receive_stateless(data)
                continue
            if data[: len(self._origin)] == self._origin:
                continue
            doc_id = self._channels.get(channel)
            listener = self._listeners.get(doc_id) if doc_id is not None else None
            if listener is not None:
                listener.apply_remote_awareness(data[len(self._origin) :])

    async def _compact_orphans_forever(self) -> None:
        while True:
            await asyncio.sleep(self._orphan_interval)
            try:
                await self.compactor.compact_idle(
                    older_than=self._orphan_interval, skip=set(self._listeners)
                )
            except Exception:
                metrics.ERRORS.labels("compaction").inc()
                log.exception("orphan compaction pass failed")


def _log_failure(task: asyncio.Task[object]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("bus background call failed: %s", task.exception())
