"""Every long-lived part of a syncd process, built in one `AsyncExitStack` and connected.

This is the one place that knows which part talks to which: parts receive what they need
as arguments, and every reaction to a note event is a subscription below (`_subscribe`).
Adding a subscriber (a webhook sender, an AMQP publisher, another protocol) is one line
there; see `syncd.services.events.bus` for the three kinds and when to use each.

Exit runs in reverse: connections close first (1001), then the job worker, Socket.IO and
the presence bookkeeping finish, rooms are stored, the queued event subscribers drain, and
the bus and the store close last.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from syncd import metrics
from syncd.api.models.note_views import note_json
from syncd.auth import TokenVerifier
from syncd.auth.configured import jwt_secret, refresh_service
from syncd.auth.refresh import RefreshService
from syncd.bus import LocalBus, RedisBus
from syncd.bus.connect import open_redis
from syncd.bus.events import RedisEvents
from syncd.bus.instrumented import InstrumentedBackend
from syncd.bus.keys import Keys
from syncd.jobs.backend import JobBackend
from syncd.jobs.memory import MemoryBackend
from syncd.jobs.worker import JobRegistry, Jobs, Worker
from syncd.room import RoomLimits, RoomRegistry
from syncd.services.amqp import (
    AmqpPublisher,
    OutboxRelay,
    RedisLease,
    SoleLease,
    StreamOutbox,
    TableOutbox,
)
from syncd.services.cache import NoteCache, open_cache
from syncd.services.events import (
    ALL_KINDS,
    ContentChanged,
    ContentEdited,
    EventBus,
    Mention,
    NoteCreated,
    NoteDeleted,
    NoteEvent,
    NoteRestored,
    NoteShared,
    NoteUpdated,
    NotificationCreated,
    PeerJoined,
    PeerLeft,
    PermissionsChanged,
    SessionEnded,
    SessionStarted,
    UserJoined,
    UserLeft,
    VersionTaken,
)
from syncd.services.events.outgoing import RedisWindow
from syncd.services.job_catalog import Cleanup, Deliverer, register_jobs, standard_cleanup
from syncd.services.mailer import Mailer
from syncd.services.notes import ContentRecorder, NoteService
from syncd.services.notifications import NotificationService, notify_users
from syncd.services.presence.hub import CollaborationHub
from syncd.services.presence.presence import PresenceBoard
from syncd.services.presence.redis_state import RedisInstances, RedisOnline, RedisPresence
from syncd.services.ratelimit import RateLimiter
from syncd.services.sessions import SessionService
from syncd.services.versions import VersionService
from syncd.services.webhooks import (
    WebhookDispatcher,
    WebhookEndpoints,
    WebhookPublisher,
    WebhookSender,
)
from syncd.settings import Settings, SettingsError
from syncd.storage import (
    NewNotification,
    NoteRecord,
    NotificationStore,
    SessionStore,
    SqlOutbox,
    Store,
    VersionStore,
    WebhookStore,
    open_store,
)
from syncd.transport.hocuspocus import HocuspocusEndpoint
from syncd.transport.list_events import ListEvents
from syncd.transport.socketio import RedisDeliverer, SocketGateway
from syncd.transport.websocket import SyncEndpoint

log = logging.getLogger(__name__)

#: note events that every instance acts on, by their name on the Redis events channel
_ClusterEvent = PermissionsChanged | NoteDeleted | NoteRestored
_CLUSTER_EVENTS: dict[str, type[_ClusterEvent]] = {
    "access": PermissionsChanged,
    "deleted": NoteDeleted,
    "restored": NoteRestored,
}


@dataclass(slots=True)
class Collaboration:
    """Socket.IO, presence, sessions, notifications and jobs (what `/api/sessions`,
    `/api/notifications` and the monitoring routes reach)."""

    hub: CollaborationHub
    gateway: SocketGateway
    sessions: SessionService
    notifications: NotificationService
    jobs: Jobs
    worker: Worker | None
    cleanup: Cleanup
    instance_id: str
    redis: Redis | None = None


@dataclass(slots=True)
class Services:
    """Everything a request handler may reach, built once per process."""

    settings: Settings
    store: Store
    rooms: RoomRegistry
    notes: NoteService
    sync: SyncEndpoint
    #: this process, as other instances see it in stream entries and events
    instance_id: str
    events: EventBus
    #: None in the embedded mode
    redis: Redis | None = None
    bus: RedisBus | LocalBus | None = None
    versions: VersionService = field(kw_only=True)
    tokens: RefreshService = field(kw_only=True)
    limiter: RateLimiter = field(kw_only=True)
    collab: Collaboration = field(kw_only=True)
    #: Tiptap's `@hocuspocus/provider` on the same rooms
    hocuspocus: HocuspocusEndpoint = field(kw_only=True)
    #: webhook endpoints and their delivery log (`/api/webhooks`)
    webhooks: WebhookEndpoints = field(kw_only=True)
    webhook_dispatcher: WebhookDispatcher = field(kw_only=True)
    #: the AMQP outbox's publisher (None: `RABBITMQ_URL` unset)
    amqp: OutboxRelay | None = field(default=None, kw_only=True)


# -- parts chosen by the mode ------------------------------------------------------------


async def _open_bus(
    settings: Settings,
    store: Store,
    events: EventBus,
    instance_id: str,
    stack: contextlib.AsyncExitStack,
) -> tuple[LocalBus | RedisBus, Redis | None]:
    """The embedded bus, or Redis streams when `REDIS_URL` is set (whose events channel
    relays rights changes, deletions and restores between instances)."""
    if settings.redis_url is None:
        return LocalBus(store), None
    if store.dialect == "sqlite":
        raise SettingsError(
            "REDIS_URL (scaled mode) needs a shared postgresql:// DATABASE_URL, not SQLite"
        )
    redis = open_redis(settings.redis_url, cluster=settings.redis_cluster)
    stack.push_async_callback(redis.aclose)

    async def from_other_instance(kind: str, note_id: str) -> None:
        event = _CLUSTER_EVENTS.get(kind)
        if event is None:
            log.warning("ignoring unknown note event %r", kind)
            return
        await events.publish(event(note_id, remote=True))

    bus = await stack.enter_async_context(
        RedisBus(
            redis,
            settings.redis_url,
            store,
            instance_id,
            orphan_interval=settings.compact_interval,
            keys=Keys(settings.redis_prefix),
            on_event=from_other_instance,
            wait_replicas=settings.redis_wait_replicas,
            wait_ms=settings.redis_wait_ms,
        )
    )
    return bus, redis


def _job_backend(settings: Settings) -> JobBackend:
    if settings.redis_url is None:
        return MemoryBackend()
    from syncd.jobs.redis_queue import SaqBackend  # SAQ only in scaled mode

    return SaqBackend(settings.jobs_redis_url or settings.redis_url, prefix=settings.redis_prefix)


def _mailer(settings: Settings) -> Mailer | None:
    if not settings.smtp_url:
        return None
    try:
        return Mailer(settings.smtp_url, settings.collab.mail_from)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def _jobs(
    settings: Settings,
    store: Store,
    sessions: SessionService,
    deliverer: Deliverer,
    redis: Redis | None,
    stack: contextlib.AsyncExitStack,
) -> tuple[Jobs, Cleanup, WebhookDispatcher]:
    backend = _job_backend(settings)
    stack.push_async_callback(backend.close)
    registry = JobRegistry()
    jobs = Jobs(backend, registry, mode="embedded" if redis is None else "redis")
    cleanup = standard_cleanup(settings, store, sessions, redis)
    dispatcher = WebhookDispatcher(WebhookStore(store.engine), jobs)
    notifications = NotificationStore(store.engine)

    async def notify(user_ids: Iterable[str], new: NewNotification) -> None:
        await notify_users(notifications, jobs, user_ids, new)

    sender = WebhookSender(settings.webhooks, dispatcher, notify)
    stack.push_async_callback(sender.close)
    register_jobs(
        registry,
        jobs,
        settings=settings,
        store=store,
        deliverer=deliverer,
        mailer=_mailer(settings),
        cleanup=cleanup,
        webhooks=sender,
    )
    return jobs, cleanup, dispatcher


# -- the process -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    """`syncd serve`: every part, connected; closed in reverse order on exit."""
    instance_id = uuid.uuid4().hex
    collab_settings = settings.collab
    prefix = settings.redis_prefix
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(metrics.frame_flusher())
        store = await stack.enter_async_context(open_store(settings.database_url, migrate=True))
        events = EventBus()
        backend, redis = await _open_bus(settings, store, events, instance_id, stack)
        # entered after the bus and store it may use, so its queues drain before they close
        await stack.enter_async_context(events)
        cache = open_cache(settings.cache_ttl, redis, prefix=prefix)
        rooms = await stack.enter_async_context(
            RoomRegistry(
                InstrumentedBackend(backend),
                limits=RoomLimits(
                    max_awareness_bytes=settings.limits.max_awareness_bytes,
                    max_awareness_ids=settings.limits.max_awareness_clients_per_connection,
                    send_timeout=settings.limits.send_timeout,
                    max_message_bytes=settings.limits.max_message_bytes,
                    pass_interval=settings.limits.pass_interval_us / 1e6,
                ),
                checkpoint_interval=settings.compact_interval,
                on_checkpoint=ContentRecorder(
                    store, cache, events, field=settings.prosemirror_field
                ),
            )
        )
        versions = await stack.enter_async_context(
            VersionService(
                VersionStore(store.engine),
                rooms,
                events,
                field=settings.prosemirror_field,
                policy=settings.versions,
            )
        )
        notes = NoteService(
            store,
            rooms,
            TokenVerifier(jwt_secret(settings)),
            events,
            field=settings.prosemirror_field,
            auto_create=settings.auto_create_notes,
            cache=cache,
        )
        limiter = RateLimiter(
            settings.rate_limits,
            redis_url=settings.redis_url,
            redis_cluster=settings.redis_cluster,
            prefix=prefix,
        )
        sync = SyncEndpoint(
            notes,
            rooms,
            events,
            max_message_bytes=settings.limits.max_message_bytes,
            limiter=limiter,
        )
        hocuspocus = HocuspocusEndpoint(
            notes, rooms, events, limits=settings.limits, limiter=limiter, bus=backend
        )
        if isinstance(backend, RedisBus):
            backend.on_stateless = hocuspocus.receive_remote_stateless
        online = RedisOnline(redis, prefix) if redis is not None else None
        sessions = SessionService(SessionStore(store.engine), events)
        hub = CollaborationHub(
            PresenceBoard(
                instance_id,
                remote=RedisPresence(redis, prefix) if redis is not None else None,
                ttl=3 * collab_settings.presence_refresh,
                idle_after=collab_settings.presence_idle,
            ),
            sessions,
            events,
            online=online,
            instances=RedisInstances(redis, prefix) if redis is not None else None,
            refresh_interval=collab_settings.presence_refresh,
        )
        gateway = SocketGateway(
            notes,
            hub,
            store,
            redis_url=settings.redis_url,
            cluster=redis if isinstance(redis, RedisCluster) else None,
            prefix=prefix,
            online=online,
            instance_id=instance_id,
        )
        jobs, cleanup, dispatcher = _jobs(settings, store, sessions, gateway, redis, stack)
        endpoints = WebhookEndpoints(dispatcher, settings.webhooks)
        await endpoints.sync_configured()
        notifications = NotificationService(
            NotificationStore(store.engine),
            store,
            jobs,
            events,
            sockets=gateway,
            field=settings.prosemirror_field,
        )
        cluster = backend.events if isinstance(backend, RedisBus) else None
        lists = ListEvents(gateway, _listed)
        _subscribe(events, notes, cache, versions, hub, gateway, notifications, lists, cluster)
        # entered after the jobs it enqueues: on exit, pending `note.updated` go out first
        hooks = await stack.enter_async_context(
            WebhookPublisher(
                settings.webhooks,
                dispatcher.dispatch,
                store.get_note,
                field=settings.prosemirror_field,
                window=RedisWindow(redis, prefix) if redis is not None else None,
                active=dispatcher.any_enabled,
            )
        )
        _subscribe_webhooks(events, hooks)
        amqp = await _open_amqp(settings, store, events, redis, instance_id, stack)
        await stack.enter_async_context(hub)
        await stack.enter_async_context(gateway)
        worker = None
        if collab_settings.run_worker:
            worker = Worker(
                jobs,
                concurrency=collab_settings.worker_concurrency,
                poll_interval=collab_settings.job_poll_interval,
            )
            await stack.enter_async_context(worker)
        await dispatcher.resume()
        # Registered last so it runs first on exit: close connections (1001), then store rooms.
        stack.push_async_callback(sync.shutdown)
        stack.push_async_callback(hocuspocus.shutdown)
        yield Services(
            settings,
            store,
            rooms,
            notes,
            sync,
            instance_id=instance_id,
            events=events,
            redis=redis,
            bus=backend,
            versions=versions,
            tokens=refresh_service(settings, store, redis),
            limiter=limiter,
            hocuspocus=hocuspocus,
            webhooks=endpoints,
            webhook_dispatcher=dispatcher,
            amqp=amqp,
            collab=Collaboration(
                hub, gateway, sessions, notifications, jobs, worker, cleanup, instance_id, redis
            ),
        )


def _subscribe(
    events: EventBus,
    notes: NoteService,
    cache: NoteCache,
    versions: VersionService,
    hub: CollaborationHub,
    gateway: SocketGateway,
    notifications: NotificationService,
    lists: ListEvents,
    cluster: RedisEvents | None,
) -> None:
    """Who reacts to what. Per kind, subscribers run in the order registered here."""
    for kind in ALL_KINDS:
        events.subscribe(kind, _count, name="metrics")
    # a connection joins or leaves (inline: on the connection's path)
    events.subscribe(PeerJoined, hub.peer_joined)
    events.subscribe(PeerLeft, hub.peer_left)
    events.subscribe(PeerLeft, versions.peer_left)  # after the hub: the room may be empty
    # the note's row changes: the cache first, so everything after reads the new row
    events.subscribe(NoteUpdated, cache.forget)
    events.subscribe(NoteDeleted, cache.forget)
    events.subscribe(NoteRestored, cache.forget)
    events.subscribe(NoteShared, notifications.note_shared)
    events.subscribe(PermissionsChanged, notes.reauthorize)
    events.subscribe(PermissionsChanged, gateway.rights_changed)
    events.subscribe(NoteDeleted, notes.close_deleted)
    events.subscribe(NoteDeleted, gateway.note_deleted)
    events.subscribe(NoteRestored, notes.reopen)
    # list views (queued: a REST call does not wait for one emit per viewer; one queue for
    # the three kinds keeps a note's events in order)
    events.subscribe(NoteCreated, lists.note_changed, queued=True)
    events.subscribe(NoteUpdated, lists.note_changed, queued=True)
    events.subscribe(NoteDeleted, lists.note_changed, queued=True)
    events.subscribe(NoteRestored, lists.note_changed, queued=True)
    # content
    events.subscribe(ContentEdited, versions.edited)
    events.subscribe(ContentChanged, notifications.content_changed)
    # presence and sessions
    events.subscribe(UserJoined, gateway.user_joined)
    events.subscribe(UserLeft, gateway.user_left)
    events.subscribe(SessionEnded, versions.session_ended)
    if cluster is not None:  # last: this instance has acted before the others hear of it
        relay = _ClusterRelay(cluster)
        events.subscribe(PermissionsChanged, relay.forward)
        events.subscribe(NoteDeleted, relay.forward)
        events.subscribe(NoteRestored, relay.forward)


#: what webhooks are made of (`note.updated` from the first two, debounced)
_WEBHOOK_KINDS: tuple[type[NoteEvent], ...] = (
    NoteUpdated,
    ContentChanged,
    NoteCreated,
    NoteShared,
    PermissionsChanged,
    NoteDeleted,
    NoteRestored,
    VersionTaken,
    SessionStarted,
    SessionEnded,
    Mention,
)


def _subscribe_webhooks(events: EventBus, hooks: WebhookPublisher) -> None:
    """One queued handler for every kind: one FIFO, so a note's messages keep their order."""
    for kind in _WEBHOOK_KINDS:
        events.subscribe(kind, hooks.on_event, queued=True, name="webhooks")


#: what AMQP carries: the webhooks' kinds and the users' notifications
_AMQP_KINDS: tuple[type[NoteEvent], ...] = (*_WEBHOOK_KINDS, NotificationCreated)


async def _open_amqp(
    settings: Settings,
    store: Store,
    events: EventBus,
    redis: Redis | None,
    instance_id: str,
    stack: contextlib.AsyncExitStack,
) -> OutboxRelay | None:
    """With `RABBITMQ_URL`: the outbox (a table embedded, the shared Redis stream scaled),
    its relay to the broker, and the queued subscriber that fills it. Entered after the
    store and Redis it uses: on exit the pending `note.updated` reach the outbox first."""
    config = settings.amqp
    if not config.enabled:
        return None
    prefix = settings.redis_prefix
    if redis is None:
        outbox: TableOutbox | StreamOutbox = TableOutbox(SqlOutbox(store.engine), config.outbox_max)
        lease: SoleLease | RedisLease = SoleLease()
    else:
        outbox = StreamOutbox(redis, prefix, config.outbox_max)
        lease = RedisLease(redis, prefix, instance_id)
    relay = await stack.enter_async_context(
        OutboxRelay(
            config,
            outbox,
            lease,
            name=f"syncd {instance_id[:8]}",
            # scaled, the lease holder also publishes what other instances appended
            idle=1.0 if redis is None else 0.25,
        )
    )
    publisher = await stack.enter_async_context(
        AmqpPublisher(
            outbox,
            relay.wake,
            settings.webhooks.debounce,
            store.get_note,
            limit=config.outbox_max,
            field=settings.prosemirror_field,
            window=RedisWindow(redis, prefix, "amqp") if redis is not None else None,
        )
    )
    # one queued handler for every kind: one FIFO, so a note's messages keep their order
    for kind in _AMQP_KINDS:
        events.subscribe(kind, publisher.on_event, queued=True, name="amqp")
    return relay


#: `metrics.EVENTS`' child per event kind: `labels()` is a lock and a tuple key per call,
#: once per event (several per connect) without this
_event_counters: dict[type[NoteEvent], Any] = {}


def _count(event: NoteEvent) -> None:
    kind = type(event)
    counter = _event_counters.get(kind)
    if counter is None:
        counter = _event_counters[kind] = metrics.EVENTS.labels(kind.__name__)
    counter.inc()


def _listed(record: NoteRecord) -> dict[str, Any]:
    """A note in list events, as `GET /api/collaborative-notes` lists it."""
    return note_json(record, content=record.content_text)


class _ClusterRelay:
    """Tells the other instances about this instance's rights changes, deletions and
    restores (what arrives from them is published with `remote=True` and not sent back)."""

    _NAMES = {kind: name for name, kind in _CLUSTER_EVENTS.items()}

    def __init__(self, cluster: RedisEvents) -> None:
        self._cluster = cluster

    async def forward(self, event: _ClusterEvent) -> None:
        if not event.remote:
            await self._cluster.publish(self._NAMES[type(event)], event.note_id)


# -- `syncd worker` ----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_worker(settings: Settings, store: Store) -> AsyncIterator[Worker]:
    """`syncd worker`: the job catalog on the shared queues (scaled mode only), with no
    HTTP server and no rooms (stale sessions it ends get no version)."""
    if settings.redis_url is None:
        raise RuntimeError(
            "syncd worker needs REDIS_URL: embedded, jobs run inside `syncd serve` itself"
        )
    async with contextlib.AsyncExitStack() as stack:
        redis = open_redis(settings.redis_url, cluster=settings.redis_cluster)
        stack.push_async_callback(redis.aclose)
        deliverer = RedisDeliverer(redis, settings.redis_url, settings.redis_prefix)
        stack.push_async_callback(deliverer.close)
        events = await stack.enter_async_context(EventBus())
        sessions = SessionService(SessionStore(store.engine), events)
        jobs, _, _ = _jobs(settings, store, sessions, deliverer, redis, stack)
        collab = settings.collab
        worker = await stack.enter_async_context(
            Worker(
                jobs, concurrency=collab.worker_concurrency, poll_interval=collab.job_poll_interval
            )
        )
        log.info("syncd worker %s ready (jobs: %s)", uuid.uuid4().hex[:8], jobs.registry.names())
        yield worker


async def run_worker_process(settings: Settings) -> None:
    """`syncd worker` until SIGTERM / SIGINT: running jobs finish, then it exits."""
    import asyncio
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with (
        open_store(settings.database_url, migrate=True) as store,
        open_worker(settings, store),
    ):
        await stop.wait()
        log.info("syncd worker stopping")
