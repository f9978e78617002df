"""Writes one event-loop turn's stream appends and tells, per doc, whether they are durable.

Per doc, because one master failing must fail only the docs it serves: the room retries a
failed append, and re-appending docs whose entries are already in their streams would
store them twice. (An entry whose reply was lost with the connection may still be stored
twice; a Yjs update applied twice changes nothing.)

Durable means in the stream and, with `SYNCD_REDIS_WAIT_REPLICAS=n`, acknowledged by the
replicas attached to the master, up to `n` (`WAIT` on the connection that made the
appends, right after them): replication is asynchronous, so without it a `kill -9` of a
master can lose appends it acknowledged that its promoted replica never got. A doc whose
append is not acknowledged so is reported failed, and the room keeps it and does not fan
it out until a retry succeeds. "Attached" is read with `ROLE` after the `WAIT` in the same
pipeline: a master left without a replica (the one just promoted, its old master dead)
goes on taking appends, as durable as a single Redis (its AOF), instead of refusing every
write until a replica returns; the next turn waits for none, and for one again once one
has attached. (Redis's own `min-replicas-to-write` would refuse them instead.)

On a Redis Cluster the appends are grouped by the master that serves each doc's slot (per
the client's slot map), one pipeline per master on a connection of its own, so the `WAIT`
follows the appends it vouches for. A `MOVED`, `CLUSTERDOWN` or lost connection fails
that master's docs and has the slot map read again before the next turn.

On a single Redis the appends of a turn are one script call (`_APPEND`): one command to
pack and one reply to read for the whole turn, and every instance's blocked stream read is
woken once per turn rather than once per room. A script may touch one slot only, so a
cluster master gets the plain `XADD`s instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import hiredis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import NoScriptError, RedisError, ResponseError

from syncd import metrics
from syncd.bus.connect import split_seeds
from syncd.bus.keys import Keys, key_part

log = logging.getLogger(__name__)

#: seconds a single Redis may take to take a turn's appends and answer (beyond any `WAIT`)
SEND_TIMEOUT = 5.0

#: one command's arguments, as `hiredis.pack_command` packs them
_Command = tuple[bytes | str | float | int, ...]
#: (doc id, updates) of one turn
Batch = Sequence[tuple[str, Sequence[bytes]]]

#: Appends of one turn: KEYS = [doc index, stream per doc...]; ARGV = [origin, now, its
#: `appended` channel, then per doc: its doc-index member, its update count n, its n
#: updates]. The same entries (`o` first, then `u`, the layout the stream reader's fast
#: path expects) as the plain `XADD`s, in one command. Each doc succeeds or fails on its
#: own (`pcall`, as the pipeline's replies do): the reply has, per doc, the error of its
#: append, or `{status, prev, id...}`: status "" when appended and indexed, "!" + the error
#: when appended but not indexed; `prev` the id of the entry right before the run (atomic,
#: so nothing else is between it and the run), "" when the stream had none; then the ids
#: of the run. With them the stream reader
#: steps over this instance's own entries instead of reading them back.
#: The doc index is written only when its score is over a second old (`ZSCORE` first, in
#: the script so a compaction's `ZREM` is seen): it only finds streams idle for a whole
#: compaction interval, and a `ZADD` per doc per turn is a write the AOF and replicas get.
#: Last, a notice on the instance's `appended` channel (once per turn, after the appends,
#: so a reader told finds them): other instances' readers read when told, rather than
#: polling every loaded stream while their own instance writes.
_APPEND = """
local origin, now, a = ARGV[1], ARGV[2], 4
local stale = tonumber(now) - 1
local out = {}
for k = 2, #KEYS do
  local stream, member, n = KEYS[k], ARGV[a], tonumber(ARGV[a + 1])
  a = a + 2
  local last = redis.pcall('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  local reply = {'', ''}
  if type(last) == 'table' and not last.err and last[1] then reply[2] = last[1][1] end
  local failed = nil
  for _ = 1, n do
    if not failed then
      local r = redis.pcall('XADD', stream, '*', 'o', origin, 'u', ARGV[a])
      if type(r) == 'table' and r.err then failed = r.err else reply[#reply + 1] = r end
    end
    a = a + 1
  end
  if failed then
    out[k - 1] = failed
  else
    local score = redis.pcall('ZSCORE', KEYS[1], member)
    if type(score) ~= 'string' or tonumber(score) < stale then
      local r = redis.pcall('ZADD', KEYS[1], now, member)
      if type(r) == 'table' and r.err then reply[1] = '!' .. r.err end
    end
    out[k - 1] = reply
  end
end
redis.pcall('PUBLISH', ARGV[3], '')
return out
"""
_APPEND_SHA = hashlib.sha1(_APPEND.encode()).hexdigest()

#: (doc id, id of the entry before the run or b"", the run's ids): told for every run the
#: script appended, before `append` returns
OnAppended = Callable[[str, bytes, Sequence[bytes]], None]


class NotReplicated(Exception):
    """Appended, but fewer replicas than required acknowledged it in time."""


class StreamAppender:
    """`append(batch, now)` -> {doc id: None if durable, else the error}."""

    def __init__(
        self,
        redis: Redis,
        redis_url: str,
        keys: Keys,
        origin: bytes,
        *,
        replicas: int = 0,
        wait_ms: int = 1000,
        names: Callable[[str], tuple[str, str]] | None = None,
        on_appended: OnAppended | None = None,
    ) -> None:
        self._redis = redis
        #: doc id -> (stream name, doc-index member); the bus caches them per loaded doc
        self._names = names or (lambda doc_id: (keys.updates(doc_id), key_part(doc_id)))
        self._scripted = not isinstance(redis, RedisCluster)
        self._on_appended = on_appended
        self._url = split_seeds(redis_url)[0]
        self._keys = keys
        self._origin = origin
        self._notices = keys.appended(origin.decode())
        self._replicas = replicas
        self._wait_ms = wait_ms
        #: docs appended whose entry in the doc index failed: added again next turn
        self._unindexed: set[str] = set()
        self._nodes: dict[str, Redis] = {}
        #: replicas each master had attached after its last append (node name, "" for one
        #: Redis): how many the next `WAIT` asks for
        self._attached: dict[str, int] = {}
        self._refresh = False
        #: a single Redis's appends go out on connections of their own (`_send`)
        self._links: Redis | None = None

    async def aclose(self) -> None:
        nodes, self._nodes = list(self._nodes.values()), {}
        if self._links is not None:
            nodes.append(self._links)
            self._links = None
        for client in nodes:
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    async def append(self, batch: Batch, now: float) -> dict[str, Exception | None]:
        names = self._names
        index = {names(doc_id)[1]: now for doc_id in {*self._unindexed, *(d for d, _ in batch)}}
        self._unindexed.clear()
        if not isinstance(self._redis, RedisCluster):
            outcome, indexed = await self._append_on("", self._redis, batch, index, now)
        else:
            outcome, indexed = await self._append_on_cluster(self._redis, batch, index)
        if not indexed:
            self._unindexed.update(doc_id for doc_id, error in outcome.items() if error is None)
        return outcome

    async def _append_on(
        self,
        name: str,
        client: Redis,
        batch: Batch,
        index: dict[str, float],
        now: float | None = None,
        *,
        loaded: bool = False,
    ) -> tuple[dict[str, Exception | None], bool]:
        """One pipeline on one connection: the appends, the doc index, `WAIT`, `ROLE`.
        With `now` (a single Redis), the appends and their doc-index entries are the
        `_APPEND` script; `index` then only adds the docs left out of the index before."""
        scripted = now is not None and self._scripted and bool(batch)
        commands: list[_Command] = []
        if scripted:
            keys: list[str] = [self._keys.doc_index]
            args: list[bytes | str | float | int] = [self._origin, now or 0.0, self._notices]
            for doc_id, updates in batch:
                stream, member = self._names(doc_id)
                keys.append(stream)
                args += (member, len(updates), *updates)
                index.pop(member, None)
            # EVALSHA sent as is: redis-py's scripts on a pipeline ask `SCRIPT EXISTS`
            # first, a round trip per turn; a Redis without it (restarted, SCRIPT FLUSH)
            # answers NOSCRIPT, having run nothing, and the turn is sent again once loaded.
            commands.append((b"EVALSHA", _APPEND_SHA, len(keys), *keys, *args))
        else:
            for doc_id, updates in batch:
                stream = self._names(doc_id)[0]
                for update in updates:
                    commands.append((b"XADD", stream, b"*", b"o", self._origin, b"u", update))
        if index:
            pairs = [part for member, score in index.items() for part in (score, member)]
            commands.append((b"ZADD", self._keys.doc_index, *pairs))
        asked = min(self._replicas, self._attached.get(name, self._replicas))
        if self._replicas:
            if asked:
                commands.append((b"WAIT", asked, self._wait_ms))
            commands.append((b"ROLE",))
        try:
            if scripted:
                results = await self._send(commands)
            else:
                pipe = client.pipeline(transaction=False)
                for command in commands:
                    pipe.execute_command(*command)
                results = list(await pipe.execute(raise_on_error=False))
        except (RedisError, OSError) as exc:
            return {doc_id: exc for doc_id, _ in batch}, False
        shortfall: Exception | None = None
        if self._replicas:
            role = results.pop()
            acked = results.pop() if asked else 0
            if isinstance(role, Exception):
                shortfall = role
            elif isinstance(acked, Exception):
                shortfall = acked
            else:
                # replicas attached now: a replica that left meanwhile is not waited for
                attached = len(role[2]) if len(role) > 2 and isinstance(role[2], list) else 0
                self._attached[name] = attached
                needed = min(self._replicas, attached)
                if int(acked) < needed:
                    shortfall = NotReplicated(
                        f"{acked} of {needed} replicas acknowledged within {self._wait_ms} ms"
                    )
        indexed = True
        if index:
            result = results.pop()
            if isinstance(result, Exception):
                indexed = False
                metrics.ERRORS.labels("bus_index").inc()
                log.warning("adding docs to the doc index failed (again next turn): %s", result)
        outcome: dict[str, Exception | None] = {}
        if scripted:
            if isinstance(results[0], NoScriptError) and not loaded:
                try:
                    await client.script_load(_APPEND)
                except (RedisError, OSError) as exc:
                    return {doc_id: exc for doc_id, _ in batch}, False
                return await self._append_on(name, client, batch, index, now, loaded=True)
            return self._script_outcome(batch, results[0], shortfall), indexed
        position = 0
        for doc_id, updates in batch:
            mine = results[position : position + len(updates)]
            position += len(updates)
            failed = next((r for r in mine if isinstance(r, Exception)), None)
            outcome[doc_id] = failed or shortfall
        return outcome, indexed

    async def _send(self, commands: Sequence[_Command]) -> list[Any]:
        """The commands' replies (an error reply as its exception), packed by hiredis in one
        write and read straight off a connection: py-spy (bus_bench.py) put over half of
        the appender's samples in redis-py's pipeline (its per-argument encoder, its
        per-command layers, and a task per send from `asyncio.wait_for`, the client's
        socket timeout). The connections have no socket timeout; the whole exchange is
        bounded here instead."""
        if self._links is None:
            self._links = Redis.from_url(
                self._url, socket_timeout=None, socket_connect_timeout=SEND_TIMEOUT
            )
        pool = self._links.connection_pool
        link = await pool.get_connection()
        packed = [hiredis.pack_command(command) for command in commands]  # type: ignore[arg-type]
        replies: list[Any] = []
        try:
            async with asyncio.timeout(SEND_TIMEOUT + self._wait_ms / 1000):
                await link.send_packed_command(packed, check_health=False)
                for _ in packed:
                    try:
                        replies.append(await link.read_response())
                    except ResponseError as exc:  # that command's error; the rest follow
                        replies.append(exc)
        except BaseException:
            # replies left unread (or half read) would answer the next turn's commands
            await link.disconnect(nowait=True)
            raise
        finally:
            await pool.release(link)
        return replies

    def _script_outcome(
        self, batch: Batch, reply: object, shortfall: Exception | None
    ) -> dict[str, Exception | None]:
        """Per doc, from the `_APPEND` reply (or the error of the whole script)."""
        if isinstance(reply, Exception) or not isinstance(reply, list) or len(reply) != len(batch):
            error = reply if isinstance(reply, Exception) else ResponseError(f"{reply!r:.200}")
            return {doc_id: error for doc_id, _ in batch}
        outcome: dict[str, Exception | None] = {}
        told = self._on_appended
        for (doc_id, _), raw in zip(batch, reply, strict=True):
            if isinstance(raw, list) and len(raw) >= 2:
                status, prev, *ids = raw
                if told is not None and ids:
                    told(doc_id, prev, ids)
                raw = status
            text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
            if text.startswith("!"):
                # appended; its doc-index entry is added again next turn
                self._unindexed.add(doc_id)
                metrics.ERRORS.labels("bus_index").inc()
                log.warning(
                    "adding doc %s to the doc index failed (again next turn): %s", doc_id, text[1:]
                )
                text = ""
            outcome[doc_id] = ResponseError(text) if text else shortfall
        return outcome

    async def _append_on_cluster(
        self, cluster: RedisCluster, batch: Batch, index: dict[str, float]
    ) -> tuple[dict[str, Exception | None], bool]:
        manager = cluster.nodes_manager
        if self._refresh or not manager.slots_cache:
            self._refresh = False
            with contextlib.suppress(RedisError, OSError):
                await manager.initialize()
        groups: dict[str, tuple[str, int, list[tuple[str, Sequence[bytes]]]]] = {}
        try:
            for doc_id, updates in batch:
                node = manager.get_node_from_slot(key_slot(self._keys.updates(doc_id).encode()))
                group = groups.setdefault(node.name, (node.host, node.port, []))
                group[2].append((doc_id, updates))
            index_node = manager.get_node_from_slot(key_slot(self._keys.doc_index.encode()))
        except RedisError as exc:  # a slot no master serves (mid-failover)
            self._refresh = True
            return {doc_id: exc for doc_id, _ in batch}, False
        groups.setdefault(index_node.name, (index_node.host, index_node.port, []))
        runs = [
            self._append_on(
                name,
                self._node(name, host, port),
                docs,
                index if name == index_node.name else {},
            )
            for name, (host, port, docs) in groups.items()
        ]
        outcome: dict[str, Exception | None] = {}
        indexed = True
        for (name, _), (part, part_indexed) in zip(
            groups.items(), await asyncio.gather(*runs), strict=True
        ):
            outcome.update(part)
            indexed = indexed and part_indexed
            if not part_indexed or any(error is not None for error in part.values()):
                self._refresh = True  # a failover or a resharding may have moved slots
                log.warning("appends on Redis node %s failed; reading the slot map again", name)
        return outcome, indexed

    def _node(self, name: str, host: str, port: int) -> Redis:
        client = self._nodes.get(name)
        if client is None:
            parts = urlsplit(self._url)
            auth, at, _ = parts.netloc.rpartition("@")
            url = urlunsplit(parts._replace(netloc=f"{auth}{at}{host}:{port}"))
            client = self._nodes[name] = Redis.from_url(url)
        return client
