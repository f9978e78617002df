"""The periodic refresh of what this instance keeps alive elsewhere.

Every `SYNCD_PRESENCE_REFRESH` seconds: each note's presence entries are mirrored to Redis
again (scaled; they expire after three refreshes if this instance dies), every note's
session is touched in one transaction with the statistics its connections gathered (a
session nobody touches for three refreshes is stale, see `syncd.services.sessions`), and the
online markers and this instance's stats are renewed.
"""

from __future__ import annotations

import logging
from collections import Counter

from syncd import metrics
from syncd.services.presence.backlog import Backlog
from syncd.services.presence.presence import PresenceBoard
from syncd.services.presence.redis_state import RedisInstances, RedisOnline
from syncd.services.presence.sockets import SocketDirectory
from syncd.services.sessions import SessionService
from syncd.storage import SessionActivity, StorageError

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(
        self,
        board: PresenceBoard,
        sessions: SessionService,
        backlog: Backlog,
        *,
        online: RedisOnline | None,
        instances: RedisInstances | None,
        sockets: SocketDirectory,
    ) -> None:
        self._board = board
        self._sessions = sessions
        self._backlog = backlog
        self._online = online
        self._instances = instances
        self._sockets = sockets

    async def beat(self) -> bool:
        """One refresh; False if the sessions could not be touched (their statistics
        were put in the backlog, for the next pass)."""
        activity: list[SessionActivity] = []
        failed = 0
        for note_id in self._board.notes():
            conns = self._board.local(note_id)
            updates = size = 0
            for conn in conns:
                more, extra = conn.unreported()
                updates, size = updates + more, size + extra
            users = tuple(sorted({conn.user_id for conn in conns}))
            activity.append(SessionActivity(note_id, users, updates, size))
            try:
                await self._board.publish(note_id)
            except Exception:
                failed += 1
        if failed:
            log.warning("mirroring presence of %d notes failed; it expires on its own", failed)
            metrics.ERRORS.labels("presence").inc(failed)
        touched = True
        try:  # every note's session in one transaction (notes deleted meanwhile: left out)
            await self._sessions.record(activity)
        except StorageError as exc:
            log.warning("keeping %d sessions alive failed: %s", len(activity), exc)
            metrics.ERRORS.labels("sessions").inc()
            for item in activity:
                self._backlog.counted(item.note_id, item.updates, item.size)
            touched = False
        await self._mark_online()
        return touched

    async def _mark_online(self) -> None:
        board, ttl = self._board, self._board.ttl
        if self._online is not None:
            counts = Counter(self._sockets.users())
            counts.update(conn.user_id for note in board.notes() for conn in board.local(note))
            for user_id, count in counts.items():
                await self._online.put(user_id, board.instance_id, count, ttl)
        if self._instances is not None:
            sockets = sum(
                conn.source == "websocket" for note in board.notes() for conn in board.local(note)
            )
            stats = {**self._sockets.stats(), "websocket": {"connections": sockets}}
            await self._instances.put(board.instance_id, stats, ttl)

    async def retract_all(self) -> None:
        """At shutdown: take this instance's entries out of Redis at once."""
        board = self._board
        try:
            for note_id in board.notes():
                await board.retract(note_id, [c.conn_id for c in board.local(note_id)])
            if self._instances is not None:
                await self._instances.drop(board.instance_id)
        except Exception:
            log.exception("retracting presence at shutdown failed; it expires on its own")
            metrics.ERRORS.labels("presence").inc()
