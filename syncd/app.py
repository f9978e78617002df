"""The ASGI application: long-lived parts composed in one `AsyncExitStack` at lifespan."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Mount, WebSocketRoute

from syncd import metrics
from syncd.api import auth, export, health, monitoring, notes, openapi, sessions
from syncd.api import metrics as metrics_api
from syncd.api import notifications as notifications_api
from syncd.api import versions as versions_api
from syncd.api.errors import (
    ApiError,
    handle_api_error,
    handle_http_exception,
    handle_storage_rejected,
    handle_storage_unavailable,
    handle_unexpected,
)
from syncd.api.middleware import (
    HttpMetricsMiddleware,
    RestRateLimitMiddleware,
    SecurityHeadersMiddleware,
    UrlGuardMiddleware,
)
from syncd.auth import TokenVerifier, load_or_create_secret
from syncd.auth.refresh import RefreshRecords, RefreshService, derive_secret
from syncd.auth.refresh_redis import RedisRefreshRecords
from syncd.bus import LocalBus, LocalEvents, RedisBus
from syncd.bus.keys import Keys
from syncd.cache import open_cache
from syncd.collaboration import Collaboration, open_collaboration
from syncd.instrumented import InstrumentedBackend
from syncd.notes import NoteService
from syncd.ratelimit import RateLimiter
from syncd.room import RoomLimits, RoomRegistry
from syncd.settings import Settings, SettingsError
from syncd.storage import (
    SqlRefreshRecords,
    StorageRejected,
    StorageUnavailable,
    Store,
    VersionStore,
    open_store,
)
from syncd.transport.websocket import PATH_PREFIX, SyncEndpoint
from syncd.versions import VersionService

log = logging.getLogger(__name__)


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
    #: None in the embedded mode
    redis: Redis | None = None
    bus: RedisBus | LocalBus | None = None
    versions: VersionService = field(kw_only=True)
    tokens: RefreshService = field(kw_only=True)
    limiter: RateLimiter = field(kw_only=True)
    #: Socket.IO, presence, sessions, notifications, jobs
    collab: Collaboration = field(kw_only=True)


def jwt_secret(settings: Settings) -> str:
    """The configured secret, or one generated in the data folder: never an open server."""
    if settings.jwt_secret:
        return settings.jwt_secret
    return load_or_create_secret(settings.data_dir, "jwt-secret")


def refresh_service(settings: Settings, store: Store, redis: Redis | None) -> RefreshService:
    """Refresh tokens signed with `JWT_REFRESH_SECRET`, their records in Redis when scaled,
    else in the database. Unset, the secret is derived from a configured `JWT_SECRET` (so
    every instance agrees) or generated in the data folder like it."""
    if settings.jwt_refresh_secret:
        refresh_secret = settings.jwt_refresh_secret
    elif settings.jwt_secret:
        refresh_secret = derive_secret(settings.jwt_secret, "syncd refresh tokens")
    else:
        refresh_secret = load_or_create_secret(settings.data_dir, "jwt-refresh-secret")
    records: RefreshRecords
    if redis is None:
        records = SqlRefreshRecords(store.engine)
    else:
        records = RedisRefreshRecords(
            redis, prefix=settings.redis_prefix, max_ttl=settings.tokens.refresh_ttl
        )
    try:
        return RefreshService(
            records,
            access_secret=jwt_secret(settings),
            refresh_secret=refresh_secret,
            access_ttl=settings.tokens.access_ttl,
            refresh_ttl=settings.tokens.refresh_ttl,
        )
    except ValueError as exc:
        raise SettingsError(f"JWT_REFRESH_SECRET: {exc}") from None


async def _open_bus(
    settings: Settings, store: Store, instance_id: str, stack: contextlib.AsyncExitStack
) -> tuple[LocalBus | RedisBus, LocalEvents, Redis | None]:
    """The embedded bus, or Redis streams when `REDIS_URL` is set."""
    if settings.redis_url is None:
        return LocalBus(store), LocalEvents(), None
    if store.dialect == "sqlite":
        raise SettingsError(
            "REDIS_URL (scaled mode) needs a shared postgresql:// DATABASE_URL, not SQLite"
        )
    redis = Redis.from_url(settings.redis_url)
    stack.push_async_callback(redis.aclose)
    bus = await stack.enter_async_context(
        RedisBus(
            redis,
            settings.redis_url,
            store,
            instance_id,
            orphan_interval=settings.compact_interval,
            keys=Keys(settings.redis_prefix),
        )
    )
    return bus, bus.events, redis


@contextlib.asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    instance_id = uuid.uuid4().hex
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(metrics.frame_flusher())
        store = await stack.enter_async_context(open_store(settings.database_url, migrate=True))
        verifier = TokenVerifier(jwt_secret(settings))
        backend, events, redis = await _open_bus(settings, store, instance_id, stack)
        limits = RoomLimits(
            max_awareness_bytes=settings.limits.max_awareness_bytes,
            max_awareness_ids=settings.limits.max_awareness_clients_per_connection,
            send_timeout=settings.limits.send_timeout,
        )
        rooms = await stack.enter_async_context(
            RoomRegistry(
                InstrumentedBackend(backend),
                limits=limits,
                checkpoint_interval=settings.compact_interval,
            )
        )
        versions = await stack.enter_async_context(
            VersionService(
                VersionStore(store.engine),
                rooms,
                field=settings.prosemirror_field,
                policy=settings.versions,
            )
        )
        note_service = NoteService(
            store,
            rooms,
            verifier,
            events,
            field=settings.prosemirror_field,
            auto_create=settings.auto_create_notes,
            cache=open_cache(settings.cache_ttl, redis, prefix=settings.redis_prefix),
            versions=versions,
        )
        rooms.on_checkpoint = note_service.on_checkpoint
        limiter = RateLimiter(
            settings.rate_limits, redis_url=settings.redis_url, prefix=settings.redis_prefix
        )
        sync = SyncEndpoint(
            note_service,
            rooms,
            max_message_bytes=settings.limits.max_message_bytes,
            limiter=limiter,
        )
        collab = await stack.enter_async_context(
            open_collaboration(
                settings,
                store,
                note_service,
                redis=redis,
                instance_id=instance_id,
                versions=versions,
            )
        )
        # Registered last so it runs first on exit: close connections (1001), then store rooms.
        stack.push_async_callback(sync.shutdown)
        yield Services(
            settings,
            store,
            rooms,
            note_service,
            sync,
            instance_id=instance_id,
            redis=redis,
            bus=backend,
            versions=versions,
            tokens=refresh_service(settings, store, redis),
            collab=collab,
            limiter=limiter,
        )


class _SocketIODispatch:
    """Routes `/socket.io/` to the Socket.IO server built at lifespan."""

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        await scope["app"].state.services.collab.gateway.app(scope, receive, send)


class _SyncDispatch:
    """Routes the WebSocket to the endpoint built at lifespan (an ASGI app, not a view)."""

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        await scope["app"].state.services.sync(scope, receive, send)


class FrontDoor:
    """The ASGI entry `syncd serve` runs: sync WebSockets go straight to the endpoint,
    everything else to the Starlette app.

    Starlette would route them through its middleware stack, whose wrappers of `receive`
    and `send` stay on the stack of every connection for its lifetime: Python frames per
    frame sent and memory per idle connection, for middleware that only concerns HTTP.
    The endpoint does its own metrics and limits, so both routes behave the same.
    """

    def __init__(self, app: Starlette) -> None:
        self.app = app

    @property
    def state(self) -> State:
        """The Starlette app's state (services), for whoever holds the entry point."""
        return self.app.state

    def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        # Returns the chosen app's coroutine rather than awaiting it: no frame of its own
        # stays on every connection's stack.
        if scope["type"] == "websocket" and scope["path"].startswith(PATH_PREFIX):
            services: Services | None = getattr(self.app.state, "services", None)
            if services is not None:
                return services.sync(scope, receive, send)
        return self.app(scope, receive, send)


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_services(settings) as services:
            app.state.services = services
            log.info(
                "syncd ready (%s mode, database %s)",
                "embedded" if settings.embedded else "scaled",
                settings.database_url.split("@")[-1],
            )
            try:
                yield
            finally:
                metrics.process_exited(settings.metrics_dir)

    routes: list[BaseRoute] = [
        WebSocketRoute("/ws/notes/{note_id:path}", _SyncDispatch()),
        Mount("/socket.io", app=_SocketIODispatch()),
        *sessions.routes(),
        *notifications_api.routes(),
        *monitoring.routes(),
        *health.routes(),
        *notes.routes(),
        *versions_api.routes(),
        *export.routes(),
        *auth.routes(),
        *metrics_api.routes(),
        *openapi.routes(),
    ]
    # Outermost first: every response is counted and gets the security headers.
    middleware = [Middleware(HttpMetricsMiddleware), Middleware(SecurityHeadersMiddleware)]
    if settings.frontend_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.frontend_origins),
                allow_methods=["GET", "POST", "PUT", "DELETE"],
                allow_headers=["authorization", "content-type"],
                allow_credentials=True,
                expose_headers=["retry-after"],
            )
        )
    middleware.append(Middleware(RestRateLimitMiddleware))
    middleware.append(Middleware(UrlGuardMiddleware))
    return Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            ApiError: handle_api_error,
            HTTPException: handle_http_exception,
            StorageUnavailable: handle_storage_unavailable,
            StorageRejected: handle_storage_rejected,
            Exception: handle_unexpected,
        },
    )
