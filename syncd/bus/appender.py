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

On a single Redis the appends of a turn are one `MULTI` ... `EXEC` block (`_pack_turn`),
written in one send on a connection of the appender's own: per doc `XREVRANGE + - COUNT 1`
(the entry right before its run: atomic, so nothing else is between it and the run) and its
`XADD`s, then one `ZADD NX` for the turn's docs (a doc a compaction just unlisted is listed
again by the very turn that appended to it), a plain `ZADD` for those whose score this
appender last wrote over a second ago.
Once Redis answered, the notice (`PUBLISH` on the instance's `appended` channel) names the
turn's docs and, after a NUL, carries per doc whose run is small enough (`NOTICE_RUN_BYTES`,
`NOTICE_RUN_ENTRIES`, `NOTICE_BYTES`) the id of the entry right before the run (its
`XREVRANGE`) and the run's ids (its `XADD`s) and updates: inside the atomic block, so it
states exactly what the stream holds after that id, and a reader whose room holds that id
applies the run with no XREAD (`syncd.bus.reader`). It goes at the head of the next turn's
block when that one is sent right away (a busy instance: no write of its own), else alone
at the next loop iteration. The entries are in the stream (and acknowledged by the
replicas asked for) before it is sent. A reader of an older version splits it on spaces
and finds the docs' names first, as before. (A script publishing from inside the block
cost Redis ~90,000 instructions a turn of one doc, callgrind: six XREADs' worth.)
Not a Lua script: Redis's `redis.pcall` costs ~2.5 us a call on top of the command (a
script doing the same per doc cost Redis 12-14 us per append; this block ~7 us, plain XADDs
~3.3 us; 100 docs a turn, bench numbers in the commit). A cluster master gets the plain
`XADD`s instead (a block may touch one slot only there).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import hiredis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import RedisError, ResponseError

from syncd import metrics
from syncd.bus.connect import split_seeds
from syncd.bus.keys import Keys, key_part
from syncd.bus.link import RawLink
from syncd.bus.link import usable as link_usable

log = logging.getLogger(__name__)

#: seconds a single Redis may take to take a turn's appends and answer (beyond any `WAIT`)
SEND_TIMEOUT = 5.0

#: one command's arguments, as `hiredis.pack_command` packs them
_Command = tuple[bytes | str | float | int, ...]
#: (doc id, updates) of one turn
Batch = Sequence[tuple[str, Sequence[bytes]]]

#: seconds after which a doc's index score is written again: the index only finds streams
#: idle for a whole compaction interval, and a score written per doc per turn is a write the
#: AOF and the replicas get (the turn's `ZADD NX` changes nothing for a listed doc)
INDEX_REFRESH = 1.0
#: a turn's `MULTI`, packed once
_MULTI = hiredis.pack_command((b"MULTI",))
_EXEC = hiredis.pack_command((b"EXEC",))
_REPLY_OFF = hiredis.pack_command((b"CLIENT", b"REPLY", b"OFF"))  # type: ignore[arg-type]
_REPLY_ON = hiredis.pack_command((b"CLIENT", b"REPLY", b"ON"))  # type: ignore[arg-type]

#: a doc's run is carried in the notice only up to this many bytes of updates, and entries:
#: keystrokes are tens of bytes; a bigger run (a paste, an import) is rare and worth its
#: reader's XREAD, and every byte carried is copied into each subscriber's output buffer
#: (Redis drops a subscriber past `client-output-buffer-limit pubsub`, 8 MB for 60 s by
#: default: a notice stays far below that)
NOTICE_RUN_BYTES = 4096
NOTICE_RUN_ENTRIES = 64
#: updates' bytes one notice carries in all (the rest of its docs are named only)
NOTICE_BYTES = 65536

#: (doc id, id of the entry before the run or b"", the run's ids): told for every run
#: appended on a single Redis, before `append` returns; with them the stream reader steps
#: over this instance's own entries instead of reading them back
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
        #: a single Redis's appends on `RawLink`s when the URL allows (`syncd.bus.link`),
        #: idle ones kept for the next turn
        self._raw = link_usable(self._url)
        self._idle: list[RawLink] = []
        #: doc-index member -> `now` of the turn that last wrote its score (a single Redis)
        self._indexed_at: dict[str, float] = {}
        #: `_indexed_at`'s size at which entries too old to matter are dropped
        self._indexed_bound = 1024
        #: stream name -> its packed `XREVRANGE` and `XADD` head (`_packs`)
        self._packed: dict[str, tuple[bytes, bytes]] = {}
        #: the last turn's notice (a packed `PUBLISH`), until sent (`_notice_alone`)
        self._notice: bytes | None = None
        self._publishing: set[asyncio.Task[None]] = set()
        #: a connection told `CLIENT REPLY OFF` that notices sent alone are written to:
        #: one write each, no reply for Redis to write nor for this instance to wait for
        self._notice_link: RawLink | None = None
        self._notice_opening = False
        #: False once Redis refused `CLIENT REPLY` (the notices then go as exchanges)
        self._quiet = True

    async def aclose(self) -> None:
        self._notice = None  # a notice not sent by now is not sent (no link opened for it)
        for task in list(self._publishing):
            with contextlib.suppress(Exception):
                await task
        if self._notice_link is not None:
            self._notice_link.close()
            self._notice_link = None
        nodes, self._nodes = list(self._nodes.values()), {}
        for link in self._idle:
            link.close()
        self._idle.clear()
        if self._links is not None:
            nodes.append(self._links)
            self._links = None
        for client in nodes:
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    async def append(self, batch: Batch, now: float) -> dict[str, Exception | None]:
        if not isinstance(self._redis, RedisCluster):
            if not batch and not self._unindexed:
                return {}
            return await self._append_single(batch, now)
        names = self._names
        index = {names(doc_id)[1]: now for doc_id in {*self._unindexed, *(d for d, _ in batch)}}
        self._unindexed.clear()
        outcome, indexed = await self._append_on_cluster(self._redis, batch, index)
        if not indexed:
            self._unindexed.update(doc_id for doc_id, error in outcome.items() if error is None)
        return outcome

    # -- a single Redis ------------------------------------------------------------------

    def _packs(self, stream: str) -> tuple[bytes, bytes]:
        """The doc's `XREVRANGE <stream> + - COUNT 1` and the head of its `XADD` up to the
        update (`u`'s value), packed once per stream rather than per turn."""
        packs = self._packed.get(stream)
        if packs is None:
            if len(self._packed) >= 4096:
                self._packed.clear()  # docs long unloaded; the loaded ones are packed again
            last = hiredis.pack_command((b"XREVRANGE", stream, b"+", b"-", b"COUNT", 1))  # type: ignore[arg-type]
            # the XADD with an empty update, cut before that last argument
            head = hiredis.pack_command((b"XADD", stream, b"*", b"o", self._origin, b"u", b""))  # type: ignore[arg-type]
            packs = self._packed[stream] = (last, head[: -len(b"$0\r\n\r\n")])
        return packs

    async def _append_single(self, batch: Batch, now: float) -> dict[str, Exception | None]:
        """The turn as one `MULTI` block (see the module docstring), then `WAIT` and `ROLE`
        when replicas must acknowledge it."""
        names = self._names
        indexed_at = self._indexed_at
        # the last turn's notice ahead of this turn's block, when not sent yet
        lead, self._notice = self._notice, None
        parts: list[bytes] = [lead, _MULTI] if lead else [_MULTI]
        #: replies before `EXEC`'s: `MULTI`'s, then one per queued command
        queued = 1
        listed: list[str] = []  # in the index unless a compaction just took them out
        due: list[str] = []  # their score is over INDEX_REFRESH old (or never written here)
        for doc_id, updates in batch:
            stream, member = names(doc_id)
            last, head = self._packs(stream)
            parts.append(last)
            for update in updates:
                parts += (head, b"$%d\r\n" % len(update), update, b"\r\n")
            queued += 1 + len(updates)
            written = indexed_at.get(member)
            (listed if written is not None and now - written <= INDEX_REFRESH else due).append(
                member
            )
        if self._unindexed:
            batched = {doc_id for doc_id, _ in batch}
            due += (names(doc_id)[1] for doc_id in self._unindexed if doc_id not in batched)
        unindexed, self._unindexed = self._unindexed, set()
        index = self._keys.doc_index
        stamp = repr(now)
        for flags, members in (((b"NX",), listed), ((), due)):
            if members:
                pairs = [part for member in members for part in (stamp, member)]
                parts.append(hiredis.pack_command((b"ZADD", index, *flags, *pairs)))
                queued += 1
        parts.append(_EXEC)
        asked = min(self._replicas, self._attached.get("", self._replicas))
        count = queued + 1
        if self._replicas:
            if asked:
                parts.append(hiredis.pack_command((b"WAIT", asked, self._wait_ms)))  # type: ignore[arg-type]
                count += 1
            parts.append(hiredis.pack_command((b"ROLE",)))
            count += 1
        try:
            results = await self._send(b"".join(parts), count + 1 if lead else count)
        except (RedisError, OSError) as exc:
            # the last turn's notice too, maybe: its readers find a gap at the next one
            self._unindexed = unindexed | self._unindexed
            return {doc_id: exc for doc_id, _ in batch}
        if lead:
            del results[0]  # the notice's `PUBLISH`
        shortfall = self._shortfall("", results, asked) if self._replicas else None
        block = results[queued]
        if not isinstance(block, list):  # EXECABORT (a command refused when queued), ...
            error = block if isinstance(block, Exception) else ResponseError(f"{block!r:.200}")
            self._unindexed = unindexed | self._unindexed
            return {doc_id: error for doc_id, _ in batch}
        outcome: dict[str, Exception | None] = {}
        told = self._on_appended
        position = 0
        turn: list[bytes] = []  # the docs appended, as the notice names them
        runs: list[bytes] = []  # the runs it carries
        budget = NOTICE_BYTES
        for doc_id, updates in batch:
            last, *ids = block[position : position + 1 + len(updates)]
            position += 1 + len(updates)
            failed = next((r for r in ids if isinstance(r, Exception)), None)
            if failed is not None:
                outcome[doc_id] = failed
                continue
            outcome[doc_id] = shortfall
            # `last` an error (a key of another type fails the XADDs too) or no entry:
            # the run's predecessor is unknown, and the readers read it back
            prev = last[0][0] if isinstance(last, list) and last else b""
            if told is not None and ids:
                told(doc_id, prev, ids)
            named = names(doc_id)[1].encode()
            turn.append(named)
            size = sum(map(len, updates))
            if (
                prev
                and shortfall is None
                and size <= NOTICE_RUN_BYTES
                and size <= budget
                and len(updates) <= NOTICE_RUN_ENTRIES
            ):
                budget -= size
                run = [part for pair in zip(ids, updates, strict=True) for part in pair]
                runs.append(hiredis.pack_command((named, prev, *run)))  # type: ignore[arg-type]
        if turn:
            # the docs' key parts (no space in them), then the runs: RESP arrays of
            # [member, id before the run, id, update, ...]
            notice = b" ".join(turn)
            if runs:
                notice += b" \0*%d\r\n%b" % (len(runs), b"".join(runs))
            self._notice = hiredis.pack_command((b"PUBLISH", self._notices, notice))  # type: ignore[arg-type]
            asyncio.get_running_loop().call_soon(self._notice_alone)
        failed_index = [r for r in block[position:] if isinstance(r, Exception)]
        if failed_index:
            self._unindexed.update(doc_id for doc_id, error in outcome.items() if error is None)
            self._unindexed |= unindexed
            metrics.ERRORS.labels("bus_index").inc()
            log.warning(
                "adding docs to the doc index failed (again next turn): %s", failed_index[0]
            )
        else:
            for member in due:
                indexed_at[member] = now
            if len(indexed_at) > self._indexed_bound:
                for member in [m for m, t in indexed_at.items() if now - t > INDEX_REFRESH]:
                    del indexed_at[member]
                self._indexed_bound = 2 * len(indexed_at) + 1024
        return outcome

    def _notice_alone(self) -> None:
        """The turn's notice, if no next turn took it ahead of its block: written to the
        notice link when one is open, else sent as an exchange (opening the link meanwhile).
        A notice lost with a connection costs its readers a read at the next one (a gap)
        or at their timed fallback, nothing more."""
        packed, self._notice = self._notice, None
        if packed is None:
            return
        link = self._notice_link
        if link is not None and link.alive:
            link.write(packed)
            return
        self._notice_link = None
        task = asyncio.get_running_loop().create_task(self._publish(packed))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def _publish(self, packed: bytes) -> None:
        try:
            await self._send(packed, 1)
            if self._raw and self._quiet and not self._notice_opening:
                self._notice_opening = True
                try:
                    link = await RawLink.open(self._url)
                    # `ON` answers only if `OFF` was taken (an ACL may refuse `CLIENT`): then
                    # off for good; else the notices stay exchanges, their replies read
                    (answer,) = await link.exchange(_REPLY_OFF + _REPLY_ON, 1)
                finally:
                    self._notice_opening = False
                if isinstance(answer, Exception):
                    link.close()
                    self._quiet = False
                    log.info("notices stay exchanges: CLIENT REPLY refused: %s", answer)
                    return
                link.write(_REPLY_OFF)
                if self._notice_link is not None:
                    self._notice_link.close()
                self._notice_link = link
        except (RedisError, OSError) as exc:
            # readers read the turn's streams at the next notice (a gap) or their fallback
            log.debug("publishing an append notice failed: %s", exc)

    def _shortfall(self, name: str, results: list[Any], asked: int) -> Exception | None:
        """From the `WAIT` (when asked) and `ROLE` replies at the end of `results` (taken off
        it): why the appends are not durable yet, or None."""
        role = results.pop()
        acked = results.pop() if asked else 0
        if isinstance(role, Exception):
            return role
        if isinstance(acked, Exception):
            return acked
        # replicas attached now: a replica that left meanwhile is not waited for
        attached = len(role[2]) if len(role) > 2 and isinstance(role[2], list) else 0
        self._attached[name] = attached
        needed = min(self._replicas, attached)
        if int(acked) < needed:
            return NotReplicated(
                f"{acked} of {needed} replicas acknowledged within {self._wait_ms} ms"
            )
        return None

    async def _send(self, packed: bytes, count: int) -> list[Any]:
        """The replies of `count` commands packed in `packed` (an error reply as its
        exception), written at once and read straight off a connection of the appender's
        own: py-spy (bus_bench.py) put over half of the appender's samples in redis-py's
        pipeline (its per-argument encoder, its per-command layers, and a task per send
        from `asyncio.wait_for`, the client's socket timeout). A `RawLink` where the URL
        allows one (its replies parsed in bulk), else a redis-py connection without socket
        timeout. The whole exchange is bounded here."""
        limit = SEND_TIMEOUT + self._wait_ms / 1000
        if self._raw:
            link = None
            while self._idle and link is None:
                link = self._idle.pop()
                if not link.alive:
                    link.close()
                    link = None
            if link is None:
                async with asyncio.timeout(limit):
                    link = await RawLink.open(self._url)
            # bounded by the link's own timer (one per link, not one per turn)
            replies = await link.exchange(packed, count, limit)  # closed on any failure
            self._idle.append(link)
            return replies
        if self._links is None:
            self._links = Redis.from_url(
                self._url, socket_timeout=None, socket_connect_timeout=SEND_TIMEOUT
            )
        pool = self._links.connection_pool
        conn = await pool.get_connection()
        replies = []
        try:
            async with asyncio.timeout(limit):
                await conn.send_packed_command(packed, check_health=False)
                for _ in range(count):
                    try:
                        replies.append(await conn.read_response())
                    except ResponseError as exc:  # that command's error; the rest follow
                        replies.append(exc)
        except BaseException:
            # replies left unread (or half read) would answer the next turn's commands
            await conn.disconnect(nowait=True)
            raise
        finally:
            await pool.release(conn)
        return replies

    # -- a Redis Cluster -------------------------------------------------------------------

    async def _append_on(
        self, name: str, client: Redis, batch: Batch, index: dict[str, float]
    ) -> tuple[dict[str, Exception | None], bool]:
        """One cluster master's pipeline on a connection of its own: the plain `XADD`s, the
        doc index (`index`: on the master serving it), `WAIT`, `ROLE`."""
        commands: list[_Command] = []
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
            pipe = client.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            results = list(await pipe.execute(raise_on_error=False))
        except (RedisError, OSError) as exc:
            return {doc_id: exc for doc_id, _ in batch}, False
        shortfall = self._shortfall(name, results, asked) if self._replicas else None
        indexed = True
        if index:
            result = results.pop()
            if isinstance(result, Exception):
                indexed = False
                metrics.ERRORS.labels("bus_index").inc()
                log.warning("adding docs to the doc index failed (again next turn): %s", result)
        outcome: dict[str, Exception | None] = {}
        position = 0
        for doc_id, updates in batch:
            mine = results[position : position + len(updates)]
            position += len(updates)
            failed = next((r for r in mine if isinstance(r, Exception)), None)
            outcome[doc_id] = failed or shortfall
        return outcome, indexed

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
