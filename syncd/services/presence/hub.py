"""Presence and sessions for every connection to a note, whatever its transport.

y-websocket peers arrive as `PeerJoined`/`PeerLeft` events (inline subscribers:
synchronous, on the connection's path), Socket.IO sockets through `join`/`leave`. Both
update the presence board at once and note the change in a backlog coalesced per note
(`backlog.py`); one worker task works it off in passes (`bookkeeping.py`): however many
connections came and went, a pass costs a few Redis round trips per note and two
transactions in all. The worker also runs the periodic refresh (Redis mirror, online
markers, sessions kept alive).

Nothing is lost by a restart: at shutdown the worker finishes the backlog before the
process exits; at start, sessions that no live connection backs are ended and versioned
(`SessionService.end_stale`: all active ones when embedded, those that missed three
refreshes when scaled). A `kill -9` loses only what was still in the backlog (connections
of the last moment that came and went before their pass: no session record).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from typing import Any

from syncd import metrics
from syncd.backoff import Backoff
from syncd.room import Peer
from syncd.services.events import EventBus, PeerJoined, PeerLeft
from syncd.services.presence.backlog import Backlog, NoteChanges
from syncd.services.presence.bookkeeping import Bookkeeper
from syncd.services.presence.heartbeat import Heartbeat
from syncd.services.presence.presence import Connection, PresenceBoard
from syncd.services.presence.redis_state import RedisInstances, RedisOnline
from syncd.services.presence.sockets import SocketDirectory
from syncd.services.sessions import SessionService
from syncd.storage import SessionRecord, StorageError

log = logging.getLogger(__name__)
#: connection ids: random per process, counted per connection (a uuid4 per connection
#: cost a urandom call and 2% of the connect path; ids are still unique across instances)
_CONN_PREFIX = uuid.uuid4().hex[:12]
_conn_numbers = itertools.count(1)

__all__ = ["CollaborationHub"]


class CollaborationHub:
    """One per process; an async context manager (reconciles, then runs the worker)."""

    def __init__(
        self,
        board: PresenceBoard,
        sessions: SessionService,
        events: EventBus,
        *,
        sockets: SocketDirectory | None = None,
        online: RedisOnline | None = None,
        instances: RedisInstances | None = None,
        refresh_interval: float = 10.0,
        drain_timeout: float = 10.0,
        max_backlog: int = 100_000,
        pass_spacing: float = 0.1,
    ) -> None:
        self.board = board
        self.sessions = sessions
        #: this instance's Socket.IO sockets (recorded by the gateway)
        self.sockets = sockets or SocketDirectory()
        self._keeper = Bookkeeper(board, sessions, events)
        self._online = online
        self._refresh = refresh_interval
        self._drain_timeout = drain_timeout
        #: the least time from one pass's start to the next's while changes keep coming
        #: (a join storm): each pass costs a transaction and a few statements whatever it
        #: holds, so back-to-back passes of a handful of joins each cost more than fewer,
        #: fuller ones. A change after a quiet spell is taken at once.
        self._spacing = pass_spacing
        self._backlog = Backlog(max_backlog)
        self._heartbeat = Heartbeat(
            board,
            sessions,
            self._backlog,
            online=online,
            instances=instances,
            sockets=self.sockets,
        )
        self._in_flight = 0
        self._by_peer: dict[Peer, Connection] = {}
        #: notes whose Socket.IO cursors moved (mirrored within a second)
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        #: set while nothing is pending nor under way
        self._idle = asyncio.Event()
        self._idle.set()
        self._stop = asyncio.Event()
        #: resolved when the pass that takes the current backlog is done
        self._upcoming: asyncio.Future[None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._reconciler: asyncio.Task[None] | None = None

    async def __aenter__(self) -> CollaborationHub:
        # Before the server listens: embedded, nothing can be connected yet.
        stale = await self._end_stale(None if self.board.remote is None else self.board.ttl)
        loop = asyncio.get_running_loop()
        self._worker = loop.create_task(self._work(), name="presence-worker")
        self._reconciler = loop.create_task(self._reconcile(stale), name="presence-reconciler")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # The worker finishes the backlog (connections closed at shutdown included); it is
        # cancelled only past the grace period, and what that loses is logged.
        self._stop.set()
        self._wake.set()
        tasks = [task for task in (self._worker, self._reconciler) if task is not None]
        _, late = await asyncio.wait(tasks, timeout=self._drain_timeout)
        for task in late:
            log.error("presence task %s did not finish in time; cancelling it", task.get_name())
            metrics.ERRORS.labels("presence").inc()
            task.cancel()
        if late:
            await asyncio.wait(late)
        if self._backlog:
            log.error("presence bookkeeping of %d notes lost at shutdown", len(self._backlog))
            metrics.ERRORS.labels("presence").inc()
        self._finish_pass(self._upcoming)
        self._keeper.forget()
        await self._heartbeat.retract_all()

    # -- y-websocket peers (inline subscribers): synchronous and cheap ---------------------

    def peer_joined(self, event: PeerJoined) -> None:
        room, peer = event.room, event.peer
        conn = Connection(
            conn_id=f"ws:{_CONN_PREFIX}{next(_conn_numbers):x}",
            note_id=room.doc_id,
            user_id=peer.user_id,
            name=peer.name,
            source="websocket",
            can_edit=peer.can_write,
            peer=peer,
            room=room,
        )
        self._by_peer[peer] = conn
        self.board.add(conn)
        self._backlog.joined(conn)
        self._changed()

    def peer_left(self, event: PeerLeft) -> None:
        conn = self._by_peer.pop(event.peer, None)
        if conn is not None and self.board.remove(conn.conn_id) is not None:
            self._backlog.left(conn, *conn.unreported())
            self._changed()

    # -- Socket.IO sockets -------------------------------------------------------------

    async def join(self, conn: Connection) -> None:
        """A socket joined a note (`note:join`); returns once others were told."""
        self.board.add(conn)
        self._backlog.joined(conn)
        self._changed()
        await self._next_pass()

    async def leave(self, conn_id: str) -> Connection | None:
        conn = self.board.remove(conn_id)
        if conn is not None:
            self._backlog.left(conn)
            self._changed()
            await self._next_pass()
        return conn

    def moved(self, conn: Connection, position: Any, selection: Any) -> None:
        """A socket's cursor moved (`note:cursor`)."""
        conn.cursor = position
        conn.selection = selection
        conn.last_active = time.time()
        self._dirty.add(conn.note_id)

    # -- queries -------------------------------------------------------------------------

    async def presence(self, note_id: str) -> list[dict[str, Any]]:
        return await self.board.entries(note_id)

    async def is_online_here(self, user_id: str) -> bool:
        return user_id in self.board.users() or user_id in self.sockets.users()

    async def is_online(self, user_id: str) -> bool:
        """Connected here or, scaled, on any instance."""
        if await self.is_online_here(user_id):
            return True
        return self._online is not None and await self._online.online(user_id)

    @property
    def backlog(self) -> int:
        """Notes whose bookkeeping is pending or under way."""
        return len(self._backlog) + self._in_flight

    # -- the worker ----------------------------------------------------------------------

    async def drained(self) -> None:
        """Wait until no bookkeeping is pending nor under way."""
        await self._idle.wait()

    def _changed(self) -> None:
        metrics.PRESENCE_BACKLOG.set(self.backlog)
        self._idle.clear()
        self._wake.set()

    async def _next_pass(self) -> None:
        if self._worker is None or self._worker.done():
            return
        if self._upcoming is None:
            self._upcoming = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._upcoming)

    @staticmethod
    def _finish_pass(done: asyncio.Future[None] | None) -> None:
        if done is not None and not done.done():
            done.set_result(None)

    async def _nap(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max(seconds, 0.0))
        self._wake.clear()

    async def _work(self) -> None:
        next_refresh = time.monotonic() + self._refresh
        backoff = Backoff(0.1, 5.0)
        delay = 0.0
        last_pass = -self._spacing
        while not (self._stop.is_set() and not self._backlog):
            if delay:
                await asyncio.sleep(delay)  # a failed pass: let storage recover
            elif not self._backlog:
                await self._nap(min(1.0, self._refresh, next_refresh - time.monotonic()))
            try:
                if self._backlog:
                    await self._space(last_pass)
                    last_pass = time.monotonic()
                    retried = await self._pass()
                    if retried:
                        delay = backoff.next()
                    else:
                        backoff.reset()
                        delay = 0.0
                if self._stop.is_set():
                    continue
                if time.monotonic() >= next_refresh:
                    next_refresh = time.monotonic() + self._refresh
                    await self.refresh()
                elif self._dirty:
                    dirty, self._dirty = self._dirty, set()
                    for note_id in dirty:
                        await self.board.publish(note_id)
            except Exception:
                log.exception("presence bookkeeping failed")
                metrics.ERRORS.labels("presence").inc()

    async def _space(self, last_pass: float) -> None:
        """Let more changes gather before a pass that would follow the last one closer
        than the spacing; not at shutdown (the backlog is finished at once)."""
        wait = last_pass + self._spacing - time.monotonic()
        if wait > 0 and not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), wait)

    async def _pass(self) -> bool:
        """Work off the backlog once; True if some of it must be retried."""
        if self._backlog.dropped:
            log.error("presence backlog full: %d changes dropped", self._backlog.dropped)
            metrics.PRESENCE_DROPPED.inc(self._backlog.dropped)
        changes = self._backlog.take()
        done, self._upcoming = self._upcoming, None
        self._in_flight = len(changes)
        retry: dict[str, NoteChanges] = {}
        try:
            retry = await self._keeper.run(changes)
        finally:
            self._in_flight = 0
            self._backlog.restore(retry)
            self._finish_pass(done)
            metrics.PRESENCE_PASSES.inc()
            metrics.PRESENCE_BACKLOG.set(self.backlog)
            if not self.backlog:
                self._idle.set()
        return bool(retry)

    async def refresh(self) -> None:
        """Mirror presence, mark users online, keep sessions alive with their statistics."""
        self._dirty.clear()
        if not await self._heartbeat.beat():
            self._changed()  # statistics that could not be recorded wait in the backlog

    # -- reconciliation ------------------------------------------------------------------

    async def _end_stale(self, idle_for: float | None) -> list[SessionRecord]:
        try:
            return await self.sessions.end_stale(idle_for)
        except StorageError as exc:
            log.warning("ending stale sessions failed (the cleanup job retries): %s", exc)
            metrics.ERRORS.labels("sessions").inc()
            return []

    async def _reconcile(self, stale: list[SessionRecord]) -> None:
        """Version the sessions ended at start; scaled, look again one TTL later, for
        the sessions of an instance that died just before this one started."""
        await self.sessions.settle(stale)
        if self.board.remote is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), self.board.ttl)
        if not self._stop.is_set():
            await self.sessions.settle(await self._end_stale(self.board.ttl))
