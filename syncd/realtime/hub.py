"""Presence and sessions for every connection to a note, whatever its transport.

y-websocket peers arrive through `NoteListener` hooks (synchronous, on the connection's
path), Socket.IO sockets through `join`/`leave`. Their bookkeeping (the presence board
at once; Redis, sessions and `note:user-joined` / `note:user-left` events in order) runs in
one consumer task, so a leave is never processed before its join. A ticker keeps the
Redis mirror, the online markers and the sessions' activity fresh; what an instance that
died leaves behind expires (presence, online) or is ended by the cleanup job (sessions).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

from syncd import metrics
from syncd.note_events import NoteListener
from syncd.realtime.presence import Connection, PresenceBoard
from syncd.realtime.redis_state import RedisInstances, RedisOnline
from syncd.room import Peer, Room
from syncd.sessions import SessionService
from syncd.storage import StorageError

log = logging.getLogger(__name__)


class NoteEmitter(Protocol):
    async def emit_to_note(
        self, note_id: str, event: str, data: dict[str, Any], *, skip_sid: str | None = None
    ) -> None: ...


class CollaborationHub(NoteListener):
    """One per process; an async context manager (runs the consumer and the ticker)."""

    def __init__(
        self,
        board: PresenceBoard,
        sessions: SessionService,
        *,
        online: RedisOnline | None = None,
        instances: RedisInstances | None = None,
        refresh_interval: float = 10.0,
    ) -> None:
        self.board = board
        self.sessions = sessions
        self.emitter: NoteEmitter | None = None
        #: this instance's counts for `/socket-stats` (set by the Socket.IO gateway)
        self.instance_stats: Callable[[], dict[str, Any]] = dict
        #: users with a Socket.IO socket here, with how many (set by the gateway)
        self.socket_users: Callable[[], dict[str, int]] = dict
        self._online = online
        self._instances = instances
        self._refresh = refresh_interval
        self._by_peer: dict[Peer, Connection] = {}
        self._here: Counter[tuple[str, str]] = Counter()
        self._queue: asyncio.Queue[tuple[str, Connection, asyncio.Future[None] | None]]
        self._queue = asyncio.Queue()
        self._dirty: set[str] = set()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> CollaborationHub:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._consume(), name="presence-consumer"),
            loop.create_task(self._tick_forever(), name="presence-ticker"),
        ]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stop.set()
        # The consumer finishes what is queued; the loops stop at their next pause (not
        # cancelled in the middle of a Redis command, see syncd.jobs.worker).
        await self._queue.put(("stop", _NOBODY, None))
        _, late = await asyncio.wait(self._tasks, timeout=10.0)
        for task in late:
            log.warning("presence task %s did not stop in time; cancelling it", task)
            task.cancel()
        await self._retract_all()

    # -- y-websocket peers (NoteListener) ------------------------------------------------

    def peer_joined(self, room: Room, peer: Peer) -> None:
        conn = Connection(
            conn_id=f"ws:{uuid.uuid4().hex}",
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
        self._queue.put_nowait(("join", conn, None))

    def peer_left(self, room: Room, peer: Peer) -> None:
        conn = self._by_peer.pop(peer, None)
        if conn is not None and self.board.remove(conn.conn_id) is not None:
            self._queue.put_nowait(("leave", conn, None))

    # -- Socket.IO sockets -------------------------------------------------------------

    async def join(self, conn: Connection) -> None:
        """A socket joined a note (`note:join`); returns once others were told."""
        self.board.add(conn)
        await self._submit("join", conn)

    async def leave(self, conn_id: str) -> Connection | None:
        conn = self.board.remove(conn_id)
        if conn is not None:
            await self._submit("leave", conn)
        return conn

    def moved(self, conn: Connection, position: Any, selection: Any) -> None:
        """A socket's cursor moved (`note:cursor`)."""
        conn.cursor = position
        conn.selection = selection
        conn.last_active = time.time()
        self._dirty.add(conn.note_id)

    async def _submit(self, kind: str, conn: Connection) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((kind, conn, done))
        await done

    # -- queries -------------------------------------------------------------------------

    async def presence(self, note_id: str) -> list[dict[str, Any]]:
        return await self.board.entries(note_id)

    async def is_online_here(self, user_id: str) -> bool:
        return user_id in self.board.users() or user_id in self.socket_users()

    async def is_online(self, user_id: str) -> bool:
        """Connected here or, scaled, on any instance."""
        if await self.is_online_here(user_id):
            return True
        return self._online is not None and await self._online.online(user_id)

    # -- the consumer ----------------------------------------------------------------------

    async def _consume(self) -> None:
        while True:
            kind, conn, done = await self._queue.get()
            if kind == "stop":
                return
            try:
                if kind == "join":
                    await self._joined(conn)
                else:
                    await self._left(conn)
            except Exception:
                log.exception("presence bookkeeping (%s of %s) failed", kind, conn.conn_id)
                metrics.ERRORS.labels("presence").inc()
            finally:
                if done is not None and not done.done():
                    done.set_result(None)

    async def _joined(self, conn: Connection) -> None:
        key = (conn.note_id, conn.user_id)
        first_here = self._here[key] == 0
        self._here[key] += 1
        await self.board.publish(conn.note_id)
        if not first_here:
            return  # already a participant of the session; `refresh` keeps it alive
        if not await self.board.elsewhere(conn.note_id, conn.user_id):
            await self._emit(conn, "note:user-joined")
        await self._session(conn.note_id, (conn.user_id,))

    async def _left(self, conn: Connection) -> None:
        key = (conn.note_id, conn.user_id)
        self._here[key] -= 1
        if self._here[key] <= 0:
            del self._here[key]
        await self.board.retract(conn.note_id, conn.conn_id)
        updates, size = _unreported(conn)
        if key not in self._here and not await self.board.elsewhere(conn.note_id, conn.user_id):
            await self._emit(conn, "note:user-left")
        if self.board.local(conn.note_id) or await self.board.elsewhere(conn.note_id):
            await self._session(conn.note_id, (), updates, size)
            return
        if updates:
            await self._session(conn.note_id, (), updates, size)
        try:
            await self.sessions.end(conn.note_id)
        except StorageError as exc:
            log.warning("ending the session of note %s failed: %s", conn.note_id, exc)
            metrics.ERRORS.labels("sessions").inc()

    async def _session(
        self, note_id: str, users: tuple[str, ...], updates: int = 0, size: int = 0
    ) -> None:
        try:
            await self.sessions.start(note_id, users, updates=updates, size=size)
        except StorageError as exc:  # e.g. the note was deleted meanwhile
            log.warning("recording the session of note %s failed: %s", note_id, exc)
            metrics.ERRORS.labels("sessions").inc()

    async def _emit(self, conn: Connection, event: str) -> None:
        if self.emitter is None:
            return
        data = {
            "noteId": conn.note_id,
            "userId": conn.user_id,
            "user": {"id": conn.user_id, "name": conn.name},
            "source": conn.source,
        }
        await self.emitter.emit_to_note(conn.note_id, event, data, skip_sid=conn.sid)

    # -- the ticker ----------------------------------------------------------------------

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _tick_forever(self) -> None:
        step = min(1.0, self._refresh)
        last_full = time.monotonic()
        while not self._stop.is_set():
            await self._pause(step)
            if self._stop.is_set():
                return
            try:
                if time.monotonic() - last_full >= self._refresh:
                    last_full = time.monotonic()
                    await self.refresh()
                else:
                    dirty, self._dirty = self._dirty, set()
                    for note_id in dirty:
                        await self.board.publish(note_id)
            except Exception:
                log.exception("presence refresh failed")
                metrics.ERRORS.labels("presence").inc()

    async def refresh(self) -> None:
        """Mirror presence, mark users online, keep sessions alive with their statistics."""
        self._dirty.clear()
        touches: list[tuple[str, tuple[str, ...], int, int]] = []
        for note_id in self.board.notes():
            conns = self.board.local(note_id)
            updates = size = 0
            for conn in conns:
                more, extra = _unreported(conn)
                updates, size = updates + more, size + extra
            await self.board.publish(note_id)
            touches.append((note_id, tuple({c.user_id for c in conns}), updates, size))
        try:  # every note's session in one transaction (a note deleted meanwhile: logged)
            await self.sessions.touch_many(touches)
        except StorageError as exc:
            log.warning("keeping %d sessions alive failed: %s", len(touches), exc)
            metrics.ERRORS.labels("sessions").inc()
        ttl = self.board.ttl
        if self._online is not None:
            counts = Counter(self.socket_users())
            counts.update(conn_user for conn_user in _users_of(self.board))
            for user_id, count in counts.items():
                await self._online.put(user_id, self.board.instance_id, count, ttl)
        if self._instances is not None:
            sockets = sum(
                conn.source == "websocket"
                for note in self.board.notes()
                for conn in self.board.local(note)
            )
            stats = {**self.instance_stats(), "websocket": {"connections": sockets}}
            await self._instances.put(self.board.instance_id, stats, ttl)

    async def _retract_all(self) -> None:
        """At shutdown: take this instance's entries out of Redis at once."""
        try:
            for note_id in self.board.notes():
                for conn in self.board.local(note_id):
                    await self.board.retract(note_id, conn.conn_id)
            if self._instances is not None:
                await self._instances.drop(self.board.instance_id)
        except Exception:
            log.exception("retracting presence at shutdown failed; it expires on its own")
            metrics.ERRORS.labels("presence").inc()


def _users_of(board: PresenceBoard) -> list[str]:
    return [conn.user_id for note in board.notes() for conn in board.local(note)]


def _unreported(conn: Connection) -> tuple[int, int]:
    """The peer's updates and bytes not yet added to the session's statistics."""
    peer = conn.peer
    if peer is None:
        return 0, 0
    updates, size = peer.updates_in - conn.reported_updates, peer.bytes_in - conn.reported_bytes
    conn.reported_updates, conn.reported_bytes = peer.updates_in, peer.bytes_in
    return updates, size


_NOBODY = Connection("", "", "", None, "", False)
