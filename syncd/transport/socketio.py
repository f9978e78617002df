"""The Socket.IO gateway (python-socketio, ASGI, mounted at `/socket.io`).

Clients authenticate in the handshake (`io(url, {auth: {token}})`); each socket joins the
room `user:<id>` (notifications reach every tab, on every instance through the Redis
manager in scaled mode) and, with `note:join`, the room `note:<id>` of notes it may view.
Acks answer `{ok: true, ...}` or `{ok: false, error: {code, message}}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import socketio
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from socketio.async_pubsub_manager import AsyncPubSubManager

from syncd import metrics
from syncd.auth import Access, AuthError, Principal
from syncd.auth.bearer import query_or_bearer
from syncd.bus.keys import Keys
from syncd.ids import is_note_id
from syncd.services.events import NoteDeleted, PermissionsChanged, UserJoined, UserLeft
from syncd.services.notes import NoteNotFound, NoteService
from syncd.services.presence.hub import CollaborationHub
from syncd.services.presence.presence import Connection, merge_by_user
from syncd.services.presence.redis_state import RedisOnline
from syncd.storage import StorageError, Store, UserRecord
from syncd.transport.socketio_cluster import ClusterSocketManager

log = logging.getLogger(__name__)

MAX_NOTES_PER_SOCKET = 50
MAX_CURSOR_BYTES = 4096


@dataclass(slots=True)
class _Socket:
    principal: Principal
    notes: dict[str, Connection] = field(default_factory=dict)
    expiry: asyncio.TimerHandle | None = None


def _error(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}


BAD_NOTE_ID = "noteId must be a note id: 1 to 128 of A-Z a-z 0-9 _ -"


def _note_id(data: Any) -> str | None:
    note_id = data.get("noteId") if isinstance(data, dict) else None
    return note_id if is_note_id(note_id) else None


def _token(environ: dict[str, Any], auth: Any) -> str | None:
    """`auth.token` (what socket.io-client sends), else `?token=` or a Bearer header."""
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return auth["token"]
    return query_or_bearer(environ.get("QUERY_STRING", ""), environ.get("HTTP_AUTHORIZATION"))


class SocketGateway:
    """One per process; an async context manager around the Socket.IO server."""

    def __init__(
        self,
        notes: NoteService,
        hub: CollaborationHub,
        users: Store,
        *,
        redis_url: str | None = None,
        cluster: RedisCluster | None = None,
        prefix: str = "syncd",
        online: RedisOnline | None = None,
        instance_id: str = "",
    ) -> None:
        """`redis_url` (a single Redis) or `cluster` (the shared Redis Cluster client)
        carries events between instances; neither: this instance alone."""
        self._notes = notes
        self._hub = hub
        self._users = users
        self._online = online
        self._instance_id = instance_id
        self._redis_manager = socket_manager(redis_url, cluster, prefix)
        # CORS is Starlette's job (FRONTEND_URL); tokens, not cookies, authenticate here.
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            client_manager=self._redis_manager,
            cors_allowed_origins=[],
            logger=False,
            engineio_logger=False,
        )
        self.app = socketio.ASGIApp(self.sio, socketio_path="socket.io")
        self._sockets: dict[str, _Socket] = {}
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)
        self.sio.on("note:join", self._join)
        self.sio.on("note:leave", self._leave)
        self.sio.on("note:cursor", self._cursor)

    async def __aenter__(self) -> SocketGateway:
        manager = self._redis_manager
        if manager is not None:
            # Subscribe now rather than at the first connection, so an event emitted on
            # another instance right after this one is ready is not missed.
            self.sio.manager_initialized = True
            manager.initialize()
            async with asyncio.timeout(10):
                if isinstance(manager, ClusterSocketManager):
                    await manager.subscribed.wait()
                    return self
                # python-socketio offers no event for this; a bounded start-up poll
                while manager.pubsub is None or not manager.pubsub.subscribed:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            async with asyncio.timeout(5):
                await self.sio.shutdown()
        except Exception:
            log.exception("closing Socket.IO connections at shutdown failed")
            metrics.ERRORS.labels("socketio").inc()
        manager = self._redis_manager
        thread = getattr(manager, "thread", None)
        if manager is not None and thread is not None:
            thread.cancel()
            await asyncio.wait([thread], timeout=2.0)
        if isinstance(manager, socketio.AsyncRedisManager) and manager.redis is not None:
            # its own connection (a cluster manager borrows the shared client instead)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(manager.redis.aclose(), 2.0)

    # -- emitting ------------------------------------------------------------------------

    async def emit_to_note(
        self, note_id: str, event: str, data: dict[str, Any], *, skip_sid: str | None = None
    ) -> None:
        await self.sio.emit(event, data, room=f"note:{note_id}", skip_sid=skip_sid)

    async def emit_to_user(self, user_id: str, event: str, data: dict[str, Any]) -> None:
        await self.sio.emit(event, data, room=f"user:{user_id}")

    async def is_online(self, user_id: str) -> bool:
        return await self._hub.is_online(user_id)

    # -- stats ---------------------------------------------------------------------------

    def local_stats(self) -> dict[str, Any]:
        return self._hub.sockets.stats()

    # -- subscribers (registered in syncd.wiring) ---------------------------------------

    async def user_joined(self, event: UserJoined) -> None:
        await self.emit_to_note(
            event.note_id, "note:user-joined", presence_payload(event), skip_sid=event.sid
        )

    async def user_left(self, event: UserLeft) -> None:
        await self.emit_to_note(
            event.note_id, "note:user-left", presence_payload(event), skip_sid=event.sid
        )

    # -- handlers ------------------------------------------------------------------------

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        try:
            principal = self._notes.verify_token(_token(environ, auth))
        except AuthError as exc:
            raise socketio.exceptions.ConnectionRefusedError(
                {"code": "unauthorized", "message": str(exc)}
            ) from None
        state = _Socket(principal)
        self._sockets[sid] = state
        self._hub.sockets.connected(sid, principal.user_id)
        loop = asyncio.get_running_loop()
        state.expiry = loop.call_later(
            max(0.0, principal.expires_at - time.time()),
            lambda: loop.create_task(self.sio.disconnect(sid)),
        )
        await self.sio.enter_room(sid, f"user:{principal.user_id}")
        user = UserRecord(principal.user_id, principal.name, principal.email, principal.roles)
        try:
            await self._users.upsert_user(user)
            if self._online is not None:
                count = self._hub.sockets.users().get(principal.user_id, 0)
                await self._online.put(
                    principal.user_id, self._instance_id, count, self._hub.board.ttl
                )
        except (StorageError, OSError, ConnectionError) as exc:
            log.warning("recording socket user %s failed: %s", principal.user_id, exc)
            metrics.ERRORS.labels("socketio").inc()

    async def _disconnect(self, sid: str, reason: Any = None) -> None:
        state = self._sockets.pop(sid, None)
        if state is None:
            return
        self._hub.sockets.disconnected(sid)
        if state.expiry is not None:
            state.expiry.cancel()
        for conn in list(state.notes.values()):
            await self._hub.leave(conn.conn_id)
        user_id = state.principal.user_id
        if self._online is not None and not await self._hub.is_online_here(user_id):
            try:
                await self._online.drop(user_id, self._instance_id)
            except (OSError, ConnectionError) as exc:
                log.warning("clearing the online marker of %s failed: %s", user_id, exc)
                metrics.ERRORS.labels("socketio").inc()

    async def _join(self, sid: str, data: Any = None) -> dict[str, Any]:
        state = self._sockets.get(sid)
        note_id = _note_id(data)
        if state is None or note_id is None:
            return _error("invalid", BAD_NOTE_ID)
        if note_id not in state.notes and len(state.notes) >= MAX_NOTES_PER_SOCKET:
            return _error("limit", f"a socket joins at most {MAX_NOTES_PER_SOCKET} notes")
        try:
            access, _ = await self._notes.access(state.principal, note_id)
        except NoteNotFound:
            access = Access.NONE
        except StorageError:
            log.exception("access check for note %s failed", note_id)
            metrics.ERRORS.labels("socketio").inc()
            return _error("unavailable", "storage unavailable, try again later")
        if access < Access.VIEW:
            # as over REST: no view right looks like no note, so ids do not leak
            return _error("not_found", "note not found")
        if note_id not in state.notes:
            conn = Connection(
                conn_id=f"sio:{sid}:{note_id}",
                note_id=note_id,
                user_id=state.principal.user_id,
                name=state.principal.name,
                source="socket.io",
                can_edit=access >= Access.EDIT,
                sid=sid,
            )
            state.notes[note_id] = conn
            self._hub.sockets.joined(sid, note_id)
            await self.sio.enter_room(sid, f"note:{note_id}")
            await self._hub.join(conn)
        users = merge_by_user(await self._hub.presence(note_id))
        return {"ok": True, "noteId": note_id, "users": users}

    async def _leave(self, sid: str, data: Any = None) -> dict[str, Any]:
        state = self._sockets.get(sid)
        note_id = _note_id(data)
        if state is None or note_id is None:
            return _error("invalid", BAD_NOTE_ID)
        conn = state.notes.pop(note_id, None)
        if conn is not None:
            self._hub.sockets.left(sid, note_id)
            await self.sio.leave_room(sid, f"note:{note_id}")
            await self._hub.leave(conn.conn_id)
        return {"ok": True, "noteId": note_id}

    async def rights_changed(self, event: PermissionsChanged) -> None:
        """Sockets that lost view permission leave the note (as `note:leave` would); those
        that keep it have their edit right updated."""
        note_id = event.note_id
        for sid, state in list(self._sockets.items()):
            conn = state.notes.get(note_id)
            if conn is None:
                continue
            try:
                access, _ = await self._notes.access(state.principal, note_id)
            except NoteNotFound:
                access = Access.NONE
            if access < Access.VIEW:
                await self._leave(sid, {"noteId": note_id})
            else:
                conn.can_edit = access >= Access.EDIT

    async def note_deleted(self, event: NoteDeleted) -> None:
        for sid, state in list(self._sockets.items()):
            if event.note_id in state.notes:
                await self._leave(sid, {"noteId": event.note_id})

    async def _cursor(self, sid: str, data: Any = None) -> dict[str, Any]:
        state = self._sockets.get(sid)
        note_id = _note_id(data)
        if note_id is None:
            return _error("invalid", BAD_NOTE_ID)
        conn = state.notes.get(note_id) if state is not None else None
        if conn is None:
            return _error("not_joined", "join the note (note:join) before moving a cursor")
        position, selection = data.get("position"), data.get("selection")
        if len(json.dumps([position, selection], default=str)) > MAX_CURSOR_BYTES:
            return _error("too_large", f"cursor data over {MAX_CURSOR_BYTES} bytes")
        self._hub.moved(conn, position, selection)
        update = {
            "noteId": note_id,
            "userId": conn.user_id,
            "user": {"id": conn.user_id, "name": conn.name},
            "position": position,
            "selection": selection,
        }
        await self.emit_to_note(note_id, "note:cursor-update", update, skip_sid=sid)
        return {"ok": True}


def socket_manager(
    redis_url: str | None, cluster: RedisCluster | None, prefix: str, *, write_only: bool = False
) -> AsyncPubSubManager | None:
    """The client manager that carries Socket.IO events between instances: sharded pub/sub
    on a Redis Cluster, python-socketio's Redis manager on a single Redis, else none."""
    channel = Keys(prefix).socketio_channel
    if cluster is not None:
        return ClusterSocketManager(cluster, channel=channel, write_only=write_only)
    if redis_url:
        return socketio.AsyncRedisManager(redis_url, channel=channel, write_only=write_only)
    return None


def presence_payload(event: UserJoined | UserLeft) -> dict[str, Any]:
    """The body of `note:user-joined` / `note:user-left`."""
    return {
        "noteId": event.note_id,
        "userId": event.user_id,
        "user": {"id": event.user_id, "name": event.name},
        "source": event.source,
    }


class RedisDeliverer:
    """`Deliverer` for a process without a Socket.IO server (`syncd worker`): emits through
    the Redis manager's channel (every instance relays to its sockets) and reads the online
    markers."""

    def __init__(self, redis: Redis, redis_url: str, prefix: str) -> None:
        cluster = redis if isinstance(redis, RedisCluster) else None
        manager = socket_manager(redis_url, cluster, prefix, write_only=True)
        assert manager is not None
        self._manager = manager
        self._online = RedisOnline(redis, prefix)

    async def emit_to_user(self, user_id: str, event: str, data: dict[str, Any]) -> None:
        await self._manager.emit(event, data, room=f"user:{user_id}", namespace="/")

    async def is_online(self, user_id: str) -> bool:
        return await self._online.online(user_id)

    async def close(self) -> None:
        redis = getattr(self._manager, "redis", None)  # the cluster manager's is shared
        if isinstance(self._manager, socketio.AsyncRedisManager) and redis is not None:
            await redis.aclose()
