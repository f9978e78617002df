"""Presence, sessions, notifications and background jobs, composed for one process.

`open_collaboration` is what `syncd serve` adds to its services (Socket.IO gateway,
presence hub, notification service, job queues and, by default, a worker);
`open_worker` is `syncd worker`: the same job catalog on the shared SAQ queues, with no
HTTP server. Embedded (no Redis) everything stays in the process; scaled, presence, the
online markers, Socket.IO fan-out and the job queues go through Redis.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import socketio
from redis.asyncio import Redis

from syncd.bus.keys import Keys
from syncd.jobs.backend import JobBackend
from syncd.jobs.catalog import Cleanup, register_jobs, standard_cleanup
from syncd.jobs.mailer import Mailer
from syncd.jobs.memory import MemoryBackend
from syncd.jobs.worker import JobRegistry, Jobs, Worker
from syncd.notes import NoteService
from syncd.notifications import NotificationService
from syncd.realtime.gateway import SocketGateway
from syncd.realtime.hub import CollaborationHub
from syncd.realtime.list_events import ListEvents
from syncd.realtime.presence import PresenceBoard
from syncd.realtime.redis_state import RedisInstances, RedisOnline, RedisPresence
from syncd.sessions import SessionService, TakeVersion
from syncd.settings import Settings, SettingsError
from syncd.storage import NotificationStore, SessionStore, Store
from syncd.versions import VersionService

log = logging.getLogger(__name__)

ExtraJobs = Callable[[JobRegistry, Jobs], None]


@dataclass(slots=True)
class Collaboration:
    hub: CollaborationHub
    gateway: SocketGateway
    sessions: SessionService
    notifications: NotificationService
    jobs: Jobs
    worker: Worker | None
    cleanup: Cleanup
    instance_id: str
    redis: Redis | None = None


def _automatic_version(versions: VersionService) -> TakeVersion:
    async def take(note_id: str) -> None:
        await versions.take_version(note_id, automatic=True)

    return take


def _backend(settings: Settings) -> JobBackend:
    if settings.redis_url is None:
        return MemoryBackend()
    from syncd.jobs.redis_queue import SaqBackend  # SAQ only in scaled mode

    return SaqBackend(settings.redis_url, prefix=settings.redis_prefix)


def _mailer(settings: Settings) -> Mailer | None:
    if not settings.smtp_url:
        return None
    try:
        return Mailer(settings.smtp_url, settings.collab.mail_from)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


@contextlib.asynccontextmanager
async def open_collaboration(
    settings: Settings,
    store: Store,
    notes: NoteService,
    *,
    redis: Redis | None,
    instance_id: str,
    versions: VersionService | None = None,
    extra_jobs: ExtraJobs | None = None,
) -> AsyncIterator[Collaboration]:
    """Everything of this module for `syncd serve`; registers its note listeners.
    `versions` takes the version of a session found stale (see `syncd.sessions`)."""
    collab = settings.collab
    prefix = settings.redis_prefix
    ttl = 3 * collab.presence_refresh
    online = RedisOnline(redis, prefix) if redis is not None else None
    board = PresenceBoard(
        instance_id,
        remote=RedisPresence(redis, prefix) if redis is not None else None,
        ttl=ttl,
        idle_after=collab.presence_idle,
    )
    sessions = SessionService(
        SessionStore(store.engine),
        take_version=_automatic_version(versions) if versions is not None else None,
    )
    hub = CollaborationHub(
        board,
        sessions,
        online=online,
        instances=RedisInstances(redis, prefix) if redis is not None else None,
        refresh_interval=collab.presence_refresh,
    )
    gateway = SocketGateway(
        notes,
        hub,
        store,
        redis_url=settings.redis_url,
        prefix=prefix,
        online=online,
        instance_id=instance_id,
    )
    async with contextlib.AsyncExitStack() as stack:
        backend = _backend(settings)
        stack.push_async_callback(backend.close)
        registry = JobRegistry()
        jobs = Jobs(backend, registry, mode="embedded" if redis is None else "redis")
        notifications = NotificationService(
            NotificationStore(store.engine), store, jobs, field=settings.prosemirror_field
        )
        cleanup = standard_cleanup(settings, store, sessions, redis)
        register_jobs(
            registry,
            jobs,
            settings=settings,
            store=store,
            deliverer=gateway,
            mailer=_mailer(settings),
            cleanup=cleanup,
        )
        if extra_jobs is not None:
            extra_jobs(registry, jobs)
        await stack.enter_async_context(hub)
        await stack.enter_async_context(gateway)
        notes.listeners += [hub, notifications, gateway, ListEvents(gateway)]
        worker = None
        if collab.run_worker:
            worker = Worker(
                jobs, concurrency=collab.worker_concurrency, poll_interval=collab.job_poll_interval
            )
            await stack.enter_async_context(worker)
        yield Collaboration(
            hub, gateway, sessions, notifications, jobs, worker, cleanup, instance_id, redis
        )


class RedisDeliverer:
    """`Deliverer` for a process without a Socket.IO server: emits through the Redis
    manager's channel (every instance relays to its sockets) and reads online markers."""

    def __init__(self, redis: Redis, redis_url: str, prefix: str) -> None:
        self._manager = socketio.AsyncRedisManager(
            redis_url, channel=Keys(prefix).socketio_channel, write_only=True
        )
        self._online = RedisOnline(redis, prefix)

    async def emit_to_user(self, user_id: str, event: str, data: dict[str, Any]) -> None:
        await self._manager.emit(event, data, room=f"user:{user_id}", namespace="/")

    async def is_online(self, user_id: str) -> bool:
        return await self._online.online(user_id)

    async def close(self) -> None:
        redis = getattr(self._manager, "redis", None)
        if redis is not None:
            await redis.aclose()


@contextlib.asynccontextmanager
async def open_worker(
    settings: Settings, store: Store, *, extra_jobs: ExtraJobs | None = None
) -> AsyncIterator[Worker]:
    """`syncd worker`: run the job catalog on the shared queues (scaled mode only)."""
    if settings.redis_url is None:
        raise RuntimeError(
            "syncd worker needs REDIS_URL: embedded, jobs run inside `syncd serve` itself"
        )
    async with contextlib.AsyncExitStack() as stack:
        redis = Redis.from_url(settings.redis_url)
        stack.push_async_callback(redis.aclose)
        deliverer = RedisDeliverer(redis, settings.redis_url, settings.redis_prefix)
        stack.push_async_callback(deliverer.close)
        backend = _backend(settings)
        stack.push_async_callback(backend.close)
        registry = JobRegistry()
        jobs = Jobs(backend, registry, mode="redis")
        sessions = SessionService(SessionStore(store.engine))
        register_jobs(
            registry,
            jobs,
            settings=settings,
            store=store,
            deliverer=deliverer,
            mailer=_mailer(settings),
            cleanup=standard_cleanup(settings, store, sessions, redis),
        )
        if extra_jobs is not None:
            extra_jobs(registry, jobs)
        collab = settings.collab
        worker = Worker(
            jobs, concurrency=collab.worker_concurrency, poll_interval=collab.job_poll_interval
        )
        log.info("syncd worker %s ready (jobs: %s)", uuid.uuid4().hex[:8], registry.names())
        async with worker:
            yield worker


async def run_worker_process(settings: Settings, *, extra_jobs: ExtraJobs | None = None) -> None:
    """`syncd worker` until SIGTERM / SIGINT: running jobs finish, then it exits."""
    import asyncio
    import signal

    from syncd.storage import open_store

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with (
        open_store(settings.database_url, migrate=True) as store,
        open_worker(settings, store, extra_jobs=extra_jobs),
    ):
        await stop.wait()
        log.info("syncd worker stopping")
