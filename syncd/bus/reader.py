"""One `XREAD BLOCK` loop per instance over the streams of every loaded doc.

A doc joins the read set once its room has loaded and knows the last stream id it holds;
the blocked read is then cut short (`CLIENT UNBLOCK`) so the new stream is read at once.
Entries this instance wrote itself are skipped: their updates are in the room already.
On a single Redis the appender tells (`syncd.bus.appender`), per run it appended, the ids of
the run and the id of the entry right before it (`own`): a stream whose read position is
that entry is moved past the run without reading it (nothing else can be inside a run: its
`MULTI` block is atomic), and a run read back anyway (another instance appended before it)
is dropped by its exact ids. Since a blocked read is woken by every append to the streams it
names, this instance's own included, the reader polls instead (`XREAD` without `BLOCK`, each
sent right after an own append's reply) while its own appends are recent (`POLL_WINDOW`): it
is not woken for them, and its polls step over them. It polls only when told that another
instance appended (its appender publishes on its `Keys.appended` channel once per turn,
once Redis answered its appends, so the poll finds them; an instance's reader subscribes
to the channels of the instances whose entries it has read, so it is never told of its own
turns), or `POLL_FALLBACK` after the last read (entries of
an instance not seen yet, of anything that does not publish, and any notice lost with the
pub/sub connection): a busy instance alone on its docs then reads a few times a second
instead of naming every loaded stream each millisecond (a poll of 100 streams cost Redis
~120 us). Each notice names the docs its turn appended to, and a poll names only those
streams (XREAD costs Redis per stream named, entries or not); every loaded stream is read
on the fallback, after the notices' connection or the reader's was lost, at a
subscription's confirmation (notices before it are gone) and at a notice naming no doc (an
instance of an older version). A named stream is still read from the id its room holds,
so no entry of it can be skipped; one whose read came back full (`READ_COUNT` entries) is
named again for the next read, sent at once, rather than left to the next notice. It is
subscribed to the notices while its own instance appends, or other instances' entries or
notices of loaded docs come (`NOTICE_HOLD`), and a reader that does not write polls too
while such notices come (`POLL_FALLBACK` after the last): a blocked read over every loaded
stream would be woken, and cost Redis every stream, at each append. Otherwise it blocks,
and is not woken by other instances' turns on docs it has not loaded. Entries no run
covers (read before the script's reply came, or appended by `XADD` on a cluster) are
judged by their origin field: the reply is taken as Redis sent it (no per-entry dict), an
entry is judged by its first field (the origin, written first) with one bytes compare
before anything else is looked at, and the stream names are encoded once per loaded doc,
not per read.
A notice may also carry, per doc, the run its turn appended: the id of the entry right
before the run, the run's ids and its updates, as Redis answered the atomic block that
appended them (`syncd.bus.appender`), so it states exactly what the stream holds after
that id. A room whose position is that id (after stepping over this
instance's own runs from there) takes the updates straight from the notice and moves to the
run's last id: no XREAD. A run it already holds (a read got there first, the same notice
twice) is dropped; any other position (a notice lost, entries no notice carried, a run too
big to be carried, a room still loading) is a gap, and the doc is named for a read from its
position as before. A read in flight while a notice moved a room on drops what the room
holds already (`_deliver`). So no entry is skipped or applied twice, and the stream stays
the only record (the entries are in it before any notice is sent).
On a lost connection the loop retries with capped exponential backoff and resumes from the
last id of each doc, so nothing appended meanwhile is missed.

On a Redis Cluster, `XREAD` may name streams of one hash slot only, so `ClusterStreamReader`
runs one such loop per slot that holds loaded docs, each connected to the master that
serves the slot at the time (looked up again after every lost connection: a failover or a
resharding moves it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import hiredis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection
from redis.crc import key_slot
from redis.exceptions import RedisError

from syncd import metrics
from syncd.backoff import Backoff
from syncd.bus.keys import Keys, id_order, key_part
from syncd.room.backend import RemoteListener

log = logging.getLogger(__name__)

MAX_BACKOFF = 5.0
#: seconds a blocked read may take beyond its BLOCK before the connection counts as dead
READ_MARGIN = 5.0
#: entries per stream one read may return (the rest comes with the next read)
READ_COUNT = 1000
#: seconds between the starts of two reads that returned entries (a bound on the hop's
#: added latency; a blocked read that had nothing to return is sent again at once)
READ_INTERVAL = 0.001
#: for this long after this instance's last own append, the reader polls instead of
#: blocking (a blocked read would wake for each of its appends): READ_INTERVAL after the
#: previous read, then at the next own append's reply or READ_INTERVAL later (so a poll adds
#: at most 2 * READ_INTERVAL to a remote update). 10 ms, not less: a turn of 100 busy rooms
#: on a loaded machine takes several ms, and with 2 ms a third of an instance's own entries
#: were still read back (bus_bench, 100 rooms: 0.34 per append; 0.04 with 10 ms).
POLL_WINDOW = 0.010
#: while polling, seconds after the last read that the next one is sent even if no other
#: instance said it appended: the latency of entries from a writer that does not publish
#: (an instance of an older version during a rolling upgrade, a lost pub/sub notice)
POLL_FALLBACK = 0.050
#: seconds after this instance's last own append that it stays subscribed to the notices
NOTICE_HOLD = 1.0
#: other instances' notice channels subscribed at most (then forgotten, and seen again)
MAX_ORIGINS = 256
#: the remote hop's latency histogram, batched (py-spy: `labels()` per read, then
#: prometheus-client's locks per observation, 6% of the reader's samples in bus_bench)
_FANOUT_REMOTE = metrics.FANOUT_REMOTE


@dataclass(slots=True)
class _Subscription:
    listener: RemoteListener
    #: the doc's stream name, as sent to Redis
    stream: bytes
    #: the doc's key part, as notices name it
    member: bytes
    #: last stream id this room holds; None while the room is loading
    last_id: bytes | None = None
    #: runs this instance appended and has not read past: (id before the run, last id of
    #: the run, its order, its ids), oldest first
    runs: deque[tuple[bytes, bytes, tuple[int, int], Sequence[bytes]]] = field(
        default_factory=deque
    )
    #: the ids of `runs`
    own: set[bytes] = field(default_factory=set)

    def passed(self, last: bytes) -> None:
        """The room holds everything up to `last`: forget the runs up to it."""
        self.last_id = last
        runs = self.runs
        if runs:
            order = id_order(last)
            while runs and runs[0][2] <= order:
                self.own.difference_update(runs.popleft()[3])


class StreamReader:
    """Delivers other instances' updates to loaded rooms."""

    def __init__(
        self,
        redis_url: str,
        instance_id: bytes,
        keys: Keys,
        *,
        block_ms: int = 5000,
        on_reconnect: Callable[[], Awaitable[None]] | None = None,
        locate: Callable[[bool], Awaitable[str]] | None = None,
        notices: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self._url = redis_url
        #: an instance id -> the channel its append block publishes on (None: no notices,
        #: as on a cluster, whose appends are plain XADDs and whose reader never polls)
        self._notices = notices
        #: other instances seen appending to loaded docs: whose notices to take
        self._origins: set[bytes] = set()
        #: the connection the notices come on, while subscribed
        self._notice_link: Connection | None = None
        #: set when another instance said it appended (or notices may have been lost)
        self._foreign = asyncio.Event()
        #: loaded docs a notice named (or whose room just told its position) since the
        #: last read: a poll reads their streams only, unless `_everything`
        self._named: set[str] = set()
        #: the next read is of every loaded stream (notices may have been missed, or one
        #: named no docs: an instance of an older version)
        self._everything = True
        #: `time.monotonic()` of the last read of every loaded stream
        self._full_at = 0.0
        #: a doc's key part (as notices name it) -> its id, for the loaded docs
        self._members: dict[bytes, str] = {}
        self._notice_task: asyncio.Task[None] | None = None
        #: set while the notices are wanted (own appends, or another instance's entries
        #: or notices of loaded docs, within NOTICE_HOLD)
        self._writing = asyncio.Event()
        #: `time.monotonic()` of the last notice naming a loaded doc (-inf: none yet; 0.0
        #: would read as recent while the machine's uptime is under the window)
        self._noticed_at = -math.inf
        #: `time.monotonic()` of the last notice naming a loaded doc or entry of another
        #: instance read: the notices are wanted for NOTICE_HOLD after it
        self._met_at = 0.0
        #: the URL to (re)connect to, asked before every connect (a cluster slot's master);
        #: its argument says the last connection failed (the answer may have changed)
        self._locate = locate
        self._keys = keys
        self._instance_id = instance_id
        self._block_ms = block_ms
        self._subs: dict[str, _Subscription] = {}
        self._changed = asyncio.Event()
        self._conn: Redis | None = None
        self._conn_id: int | None = None
        #: the connection under `_conn`, which each read uses directly
        self._link: Connection | None = None
        self._control: Redis | None = None
        self._blocked = False
        self._task: asyncio.Task[None] | None = None
        self.connected = False
        self.errors = 0
        #: own entries read back (and dropped), and own entries stepped over unread
        self.own_read = 0
        self.own_skipped = 0
        #: XREADs sent (blocked or not), and the streams they named in all
        self.reads = 0
        self.streams_read = 0
        #: updates taken from notices (no read), and runs a notice carried that a room could
        #: not take (a gap: read instead)
        self.noticed = 0
        self.notice_gaps = 0
        #: `time.monotonic()` of the last own run told, and set when one is told
        self._own_at = -math.inf
        self._told = asyncio.Event()
        #: own appends sent and not answered yet (counted by the bus)
        self.appending = 0
        #: called after the reader reconnected, before it reads again (gap checks)
        self._on_reconnect = on_reconnect

    async def __aenter__(self) -> StreamReader:
        self.start()
        return self

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run())
        if self._notices is not None:
            self._notice_task = loop.create_task(self._listen_notices(self._notices))

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for task in (self._task, self._notice_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for conn in (self._conn, self._control):
            if conn is not None:
                with contextlib.suppress(RedisError, OSError):
                    await conn.aclose()

    def subscribe(self, doc_id: str, listener: RemoteListener) -> None:
        member = key_part(doc_id).encode()
        self._subs[doc_id] = _Subscription(listener, self._keys.updates(doc_id).encode(), member)
        self._members[member] = doc_id

    def unsubscribe(self, doc_id: str) -> None:
        sub = self._subs.pop(doc_id, None)
        if sub is not None:
            self._members.pop(sub.member, None)

    @property
    def empty(self) -> bool:
        return not self._subs

    def positions(self) -> dict[str, bytes]:
        """The last stream id each loaded room holds."""
        return {doc_id: s.last_id for doc_id, s in self._subs.items() if s.last_id}

    def start_at(self, doc_id: str, last_id: bytes) -> None:
        """The room holds everything up to `last_id`: read its stream from there."""
        sub = self._subs.get(doc_id)
        if sub is not None:
            sub.passed(last_id)
            self._named.add(doc_id)
            self._wake()

    def own(self, doc_id: str, prev: bytes, ids: Sequence[bytes]) -> None:
        """This instance appended `ids` to the doc's stream, right after entry `prev`
        (b"" when unknown): step over them rather than reading them back."""
        self._own_at = time.monotonic()
        self._told.set()
        if not self._writing.is_set():
            self._writing.set()
        sub = self._subs.get(doc_id)
        if sub is None or sub.last_id is None or not ids:
            return
        order = id_order(ids[-1])
        if order <= id_order(sub.last_id):
            return  # read back already (the read came before the script's reply)
        runs = sub.runs
        runs.append((prev, ids[-1], order, ids))
        if len(runs) > 1 and runs[-2][2] > order:
            # two turns' appends in flight at once, their replies in the other order
            sub.runs = deque(sorted(runs, key=lambda run: run[2]))
        sub.own.update(ids)

    def _wake(self) -> None:
        self._changed.set()
        # a polling reader reads the new stream now too, not at the next notice: one
        # another instance sent before the room told its position would find it unread
        self._foreign.set()
        if self._blocked and self._control is not None and self._conn_id is not None:
            task = asyncio.get_running_loop().create_task(
                self._control.client_unblock(self._conn_id)
            )
            task.add_done_callback(_log_failure)

    async def _connect(self) -> Redis:
        url = self._url if self._locate is None else await self._locate(self.errors > 0)
        if self._control is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._control.aclose()
        self._control = Redis.from_url(url)
        conn = _dedicated(url)
        async with asyncio.timeout(READ_MARGIN):
            self._conn_id = int(await conn.client_id())
        assert conn.connection is not None  # a single-connection client holds it from now
        self._link = conn.connection
        return conn

    async def _run(self) -> None:
        backoff = Backoff(0.05, MAX_BACKOFF)
        while True:
            try:
                if self._conn is None:
                    self._conn = await self._connect()
                    if self.errors and self._on_reconnect is not None:
                        await self._on_reconnect()
                self.connected = True
                started = time.monotonic()
                interval = await self._read_once()
                if interval:
                    # Every append to a read stream (this instance's own too) ends a blocked
                    # read, and each read is a send to Redis, the dearest part of a read:
                    # at most one read per READ_INTERVAL, so a busy instance reads a few
                    # turns' appends at once rather than one read per appending turn.
                    rest = interval - (time.monotonic() - started)
                    if rest > 0:
                        await asyncio.sleep(rest)
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self.errors += 1
                metrics.ERRORS.labels("bus_reader").inc()
                self.connected = False
                self._everything = True
                delay = backoff.next()
                log.warning("stream reader: %s; retrying in %.2fs", exc, delay)
                if self._conn is not None:
                    with contextlib.suppress(RedisError, OSError):
                        await self._conn.aclose()
                    self._conn = self._link = None
                await asyncio.sleep(delay)

    async def _listen_notices(self, channel_of: Callable[[bytes], bytes]) -> None:
        """Subscribed, while this instance appends (its own appends within `NOTICE_HOLD`),
        to the notices of the instances seen appending to loaded docs; an instance that only
        reads blocks instead, and is not woken by every other one's turn. Each notice, and
        each subscription's confirmation (notices sent before it are gone), sets `_foreign`."""
        backoff = Backoff(0.05, MAX_BACKOFF)
        while True:
            await self._writing.wait()
            conn: Redis | None = None
            try:
                url = self._url if self._locate is None else await self._locate(False)
                conn = _dedicated(url)
                async with asyncio.timeout(READ_MARGIN):
                    await conn.ping()
                link = conn.connection
                assert link is not None
                # from here on `_discover` subscribes on this link; these are the ones before
                self._notice_link = link
                if self._origins:
                    channels = [channel_of(origin) for origin in self._origins]
                    await link.send_packed_command(
                        hiredis.pack_command((b"SUBSCRIBE", *channels)),  # type: ignore[arg-type]
                        check_health=False,
                    )
                listening = asyncio.get_running_loop().create_task(self._take_notices(link))
                try:
                    while (
                        not listening.done()
                        and time.monotonic() - max(self._own_at, self._met_at) < NOTICE_HOLD
                    ):
                        await asyncio.wait((listening,), timeout=NOTICE_HOLD)
                    if listening.done():
                        listening.result()  # it only ends by its connection's error
                finally:
                    self._notice_link = None
                    if not listening.done():
                        listening.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await listening
                self._writing.clear()  # unsubscribed (closed below) until the next append
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self._everything = True
                self._foreign.set()
                delay = backoff.next()
                log.warning("stream reader notices: %s; retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
            finally:
                self._notice_link = None
                if conn is not None:
                    with contextlib.suppress(RedisError, OSError):
                        await conn.aclose()

    async def _take_notices(self, link: Connection) -> None:
        """Each notice names the docs its instance's turn appended to; a subscription's
        confirmation, or a notice naming none, asks for a read of every loaded stream."""
        members = self._members
        while True:
            notice = await link.read_response(push_request=True)
            named = notice[2] if isinstance(notice, list) and len(notice) == 3 else None
            if named and isinstance(named, bytes) and notice[0] == b"message":
                # "<member> <member> ..." (an older version), or that, " \0" and the runs
                head, cut, body = named.partition(b"\0")
                taken: set[str] = set()
                if cut and body:
                    try:
                        taken = self._take_runs(body)
                    except (ValueError, hiredis.ProtocolError) as exc:
                        metrics.ERRORS.labels("bus_reader").inc()
                        log.error("a malformed append notice (its docs are read): %s", exc)
                read = False
                for member in head.split():
                    doc_id = members.get(member)
                    if doc_id is not None:
                        self._noticed_at = self._met_at = time.monotonic()
                        if doc_id not in taken:
                            self._named.add(doc_id)
                            read = True
                if read:
                    self._foreign.set()
            else:
                self._everything = True
                self._foreign.set()

    def _discover(self, origin: bytes) -> None:
        """Another instance appended to a loaded doc: take its notices from now on."""
        if len(self._origins) >= MAX_ORIGINS:
            self._origins.clear()  # instances long gone; the live ones are seen again
        self._origins.add(origin)
        link = self._notice_link
        if link is not None and self._notices is not None:
            command = hiredis.pack_command((b"SUBSCRIBE", self._notices(origin)))  # type: ignore[arg-type]
            task = asyncio.get_running_loop().create_task(
                link.send_packed_command(command, check_health=False)
            )
            task.add_done_callback(_log_failure)

    async def _read_once(self) -> float:
        """One XREAD over the loaded docs' streams; how long after its start the next one
        may start (0: at once, after a blocked read that returned nothing)."""
        # Polling while this instance's own appends are recent, and while other instances'
        # notices come (POLL_FALLBACK after the last): a blocked read over every loaded
        # stream is woken by each append and costs Redis per stream named, each time.
        until = max(self._own_at + POLL_WINDOW, self._noticed_at + POLL_FALLBACK)
        poll = time.monotonic() < until
        if poll and self._notices is not None and not self._foreign.is_set():
            # Nothing to read but this instance's own entries, unless another instance
            # said it appended: wait for that, the fallback, or the end of the poll window
            # (then a blocked read takes over).
            deadline = self._full_at + POLL_FALLBACK
            while not self._foreign.is_set():
                now = time.monotonic()
                until = max(self._own_at + POLL_WINDOW, self._noticed_at + POLL_FALLBACK)
                rest = min(deadline, until) - now
                if rest <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(rest):
                        await self._foreign.wait()
            until = max(self._own_at + POLL_WINDOW, self._noticed_at + POLL_FALLBACK)
            poll = self._foreign.is_set() or time.monotonic() < until
        if poll and time.monotonic() - self._own_at < POLL_WINDOW:
            # Sent right after the next own append's reply (before the rooms, woken by the
            # same reply, append again): Redis has then appended nothing of this instance
            # that the runs told do not cover, and the poll steps over all of it.
            self._told.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(READ_INTERVAL):
                    await self._told.wait()
            if self.appending and not self._told.is_set():
                # an append on its way: a poll now would read its entries back before its
                # reply tells their ids
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_WINDOW):
                        await self._told.wait()
        # A poll reads the streams the notices named, every loaded one only when notices may
        # have been missed or POLL_FALLBACK after the last such read (the entries of an
        # instance that does not publish, or whose notices this reader does not take yet).
        # Redis's XREAD costs per stream named (~1.2 us each, entries or not).
        now = time.monotonic()
        subs = self._subs
        full = not poll or self._everything or now - self._full_at >= POLL_FALLBACK
        chosen: Iterable[tuple[str, _Subscription]]
        if full:
            self._everything = False
            self._full_at = now
            self._named.clear()
            chosen = subs.items()
        else:
            named, self._named = self._named, set()
            chosen = [(doc_id, subs[doc_id]) for doc_id in named if doc_id in subs]
        # Stream name -> doc id, built from the names this read asks for: a reply's stream
        # is mapped back exactly, never by parsing the id out of the name.
        # The position each stream is read from: a notice may move a room on meanwhile.
        docs: dict[bytes, tuple[str, bytes]] = {}
        names: list[bytes] = []
        ids: list[bytes] = []
        for doc_id, sub in chosen:
            if sub.last_id:
                if sub.runs:
                    self._step_own(sub)
                docs[sub.stream] = (doc_id, sub.last_id)
                names.append(sub.stream)
                ids.append(sub.last_id)
        if not names:
            if not full:
                self._foreign.clear()  # the notices named no doc loaded here: nothing to read
                return 0.0
            self._changed.clear()
            await self._changed.wait()
            return 0.0
        self._changed.clear()
        assert self._link is not None
        # Packed and read straight on the connection: the reply as Redis sent it, so
        # `_deliver` skips this instance's own entries before building anything for them
        # (redis-py's XREAD parser makes a dict per entry), and none of the client's
        # per-command layers (retry, callbacks, timing) for a command sent at every wake.
        if poll:
            args: tuple[bytes | int, ...] = (b"XREAD", b"COUNT", READ_COUNT, b"STREAMS")
        else:
            args = (b"XREAD", b"COUNT", READ_COUNT, b"BLOCK", self._block_ms, b"STREAMS")
        command = hiredis.pack_command((*args, *names, *ids))  # type: ignore[arg-type]
        # Notices that came before this read are of appends it will find; any later one
        # asks for another read.
        self._foreign.clear()
        self.reads += 1
        self.streams_read += len(names)
        self._blocked = not poll
        try:
            await self._link.send_packed_command(command, check_health=False)
            async with asyncio.timeout(self._block_ms / 1000 + READ_MARGIN):
                response = await self._link.read_response()
        finally:
            self._blocked = False
        if not response:
            return READ_INTERVAL if poll else 0.0
        now = time.time()  # one clock read for the whole reply
        # RESP3 answers a map of stream -> entries, RESP2 a list of [stream, entries]
        for key, entries in response.items() if isinstance(response, dict) else response:
            asked = docs.get(key.encode() if isinstance(key, str) else key)
            if asked is None:
                metrics.ERRORS.labels("bus_reader").inc()
                log.error("XREAD answered for stream %r, which it was not asked for", key)
                continue
            self._deliver(asked[0], entries, now, asked[1])
        return READ_INTERVAL

    def _step_own(self, sub: _Subscription) -> None:
        """Move the room past this instance's own runs that follow what it holds."""
        runs = sub.runs
        while runs and runs[0][0] == sub.last_id:
            # nothing but this run after what the room holds: step over it
            _, sub.last_id, _, run = runs.popleft()
            sub.own.difference_update(run)
            self.own_skipped += len(run)

    def _take_runs(self, body: bytes) -> set[str]:
        """Apply the runs a notice carries (see the module docstring) to the rooms whose
        position is right before them; the docs it leaves nothing to read for."""
        parser = hiredis.Reader()
        parser.feed(body)
        records = parser.gets()
        if not isinstance(records, list):
            raise ValueError("a notice's runs are not one whole RESP array")
        done: set[str] = set()
        members, subs = self._members, self._subs
        newest = b""
        for record in records:
            if not isinstance(record, list) or len(record) < 4 or len(record) % 2:
                raise ValueError("a notice's run is not [member, id before, id, update, ...]")
            doc_id = members.get(record[0])
            if doc_id is None:
                continue  # not loaded here
            sub = subs.get(doc_id)
            if sub is None or sub.last_id is None:
                continue  # not loaded here (or loading: its load reads the stream)
            if sub.runs:
                self._step_own(sub)
            last = record[-2]
            if record[1] != sub.last_id:
                if id_order(last) <= id_order(sub.last_id):
                    done.add(doc_id)  # the room holds the run already
                else:
                    self.notice_gaps += 1
                continue
            done.add(doc_id)
            updates = record[3::2]
            sub.passed(last)
            self.noticed += len(updates)
            newest = last
            try:
                sub.listener.apply_remote(updates)
            except Exception:
                metrics.ERRORS.labels("bus_apply").inc()
                log.exception("applying remote updates to doc %s failed", doc_id)
        if newest:
            # the hop's latency, once per notice as once per read (the ids' clock, in ms)
            sent_ms = int(newest.split(b"-", 1)[0])
            _FANOUT_REMOTE.observe(max(0.0, time.time() - sent_ms / 1000))
        return done

    def _deliver(
        self, doc_id: str, entries: list[list[object]], now: float, start: bytes = b""
    ) -> None:
        """Hand a stream's new entries to the room; `entries` as Redis sent them: each an
        id and the flat field list `[b"o", origin, b"u", update]` (the order `append`
        writes; any other order is read too, just not on the fast path). `start`: the id
        the read asked for entries after; a room a notice moved past it meanwhile takes only
        what it does not hold yet."""
        sub = self._subs.get(doc_id)
        if sub is None or not entries:
            return
        if start and sub.last_id is not None and sub.last_id != start:
            held = id_order(sub.last_id)
            entries = [e for e in entries if id_order(e[0]) > held]  # type: ignore[arg-type]
            if not entries:
                return
        origin = self._instance_id
        own = sub.own
        updates: list[bytes] = []
        for entry in entries:
            if own and entry[0] in own:
                self.own_read += 1
                continue  # a run this instance appended (its ids, told by the appender)
            fields = entry[1]
            if isinstance(fields, list) and len(fields) == 4 and fields[0] == b"o":
                if fields[1] == origin:
                    self.own_read += 1
                    continue  # this instance's own entry: its update is in the room already
                if fields[1] not in self._origins:
                    self._discover(fields[1])
                if fields[2] == b"u":
                    updates.append(fields[3])
                    continue
            # any other layout: by name (a map, should a protocol ever send one)
            if isinstance(fields, list):
                named = dict(zip(fields[::2], fields[1::2], strict=False))
            elif isinstance(fields, dict):
                named = fields
            else:
                continue
            update = named.get(b"u")
            if named.get(b"o") != origin and isinstance(update, bytes):
                updates.append(update)
        last = entries[-1][0]
        assert isinstance(last, bytes)
        sub.passed(last)
        if len(entries) >= READ_COUNT:
            # the read stopped at its COUNT: the rest is in the stream now, and a polling
            # reader would otherwise leave it to the next notice or POLL_FALLBACK
            self._named.add(doc_id)
            self._foreign.set()
        # Stream ids start with the appending instance's clock in ms: the hop's latency.
        sent_ms = int(last.split(b"-", 1)[0])
        _FANOUT_REMOTE.observe(max(0.0, now - sent_ms / 1000))
        if updates:
            self._met_at = time.monotonic()
            if not self._writing.is_set():
                self._writing.set()  # another instance writes to a loaded doc: take its notices
            try:
                sub.listener.apply_remote(updates)
            except Exception:
                metrics.ERRORS.labels("bus_apply").inc()
                log.exception("applying remote updates to doc %s failed", doc_id)


def _log_failure(task: asyncio.Task[object]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("stream reader: CLIENT UNBLOCK or SUBSCRIBE failed: %s", task.exception())


class ClusterStreamReader:
    """`StreamReader`'s interface over a Redis Cluster: one reader per hash slot with loaded
    docs (their streams share the slot by their `{doc:<id>}` hash tag only when they are
    one doc's, so in practice one blocked connection per loaded doc's slot)."""

    def __init__(
        self,
        cluster: RedisCluster,
        redis_url: str,
        instance_id: bytes,
        keys: Keys,
        *,
        on_reconnect: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._cluster = cluster
        self._url = redis_url
        self._instance_id = instance_id
        self._keys = keys
        self._on_reconnect = on_reconnect
        self._readers: dict[int, StreamReader] = {}
        self._slots: dict[str, int] = {}
        self._closing: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> ClusterStreamReader:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        readers, self._readers = list(self._readers.values()), {}
        for reader in readers:
            await reader.aclose()
        for task in list(self._closing):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def connected(self) -> bool:
        return all(reader.connected for reader in self._readers.values())

    @property
    def errors(self) -> int:
        return sum(reader.errors for reader in self._readers.values())

    def subscribe(self, doc_id: str, listener: RemoteListener) -> None:
        slot = key_slot(self._keys.updates(doc_id).encode())
        self._slots[doc_id] = slot
        reader = self._readers.get(slot)
        if reader is None:
            reader = StreamReader(
                self._url,
                self._instance_id,
                self._keys,
                on_reconnect=self._on_reconnect,
                locate=lambda refresh: self._master_of(slot, refresh=refresh),
            )
            self._readers[slot] = reader
            reader.start()
        reader.subscribe(doc_id, listener)

    def unsubscribe(self, doc_id: str) -> None:
        slot = self._slots.pop(doc_id, None)
        reader = self._readers.get(slot) if slot is not None else None
        if reader is None:
            return
        reader.unsubscribe(doc_id)
        if reader.empty:
            del self._readers[slot]  # type: ignore[arg-type]
            task = asyncio.get_running_loop().create_task(reader.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def positions(self) -> dict[str, bytes]:
        merged: dict[str, bytes] = {}
        for reader in self._readers.values():
            merged.update(reader.positions())
        return merged

    def start_at(self, doc_id: str, last_id: bytes) -> None:
        slot = self._slots.get(doc_id)
        reader = self._readers.get(slot) if slot is not None else None
        if reader is not None:
            reader.start_at(doc_id, last_id)

    async def _master_of(self, slot: int, *, refresh: bool) -> str:
        """The URL of the master serving `slot`; the slot map is read from the cluster
        again first when the reader lost its connection (a failover or a resharding may
        have moved the slot) or the client has not loaded it yet."""
        manager = self._cluster.nodes_manager
        if refresh or not manager.slots_cache.get(slot):
            await manager.initialize()
        node = manager.get_node_from_slot(slot)
        parts = urlsplit(self._url)
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth}@{node.host}:{node.port}" if auth else f"{node.host}:{node.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _dedicated(url: str) -> Redis:
    """A client holding one connection of its own (a blocked read, a subscription).

    No socket timeout on it (None, explicitly: redis-py's default is 5 s, which an idle
    XREAD BLOCK 5000 runs into first, every time, sending the reader into backoff): the
    reader bounds each read itself, by more than the server-side BLOCK; and with a socket
    timeout redis-py would wrap every send in a task too."""
    return Redis.from_url(
        url,
        single_connection_client=True,
        socket_timeout=None,
        socket_connect_timeout=READ_MARGIN,
    )
