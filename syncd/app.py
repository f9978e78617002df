"""The ASGI application: long-lived parts composed in one `AsyncExitStack` at lifespan."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, WebSocketRoute

from syncd.api import health, notes
from syncd.api.errors import ApiError, handle_api_error, handle_http_exception, handle_unexpected
from syncd.auth import TokenVerifier, load_or_create_secret
from syncd.bus import LocalBus
from syncd.notes import NoteService
from syncd.room import RoomLimits, RoomRegistry
from syncd.settings import Settings
from syncd.storage import Store, open_store
from syncd.transport.websocket import SyncEndpoint

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Services:
    """Everything a request handler may reach, built once per process."""

    settings: Settings
    store: Store
    rooms: RoomRegistry
    notes: NoteService
    sync: SyncEndpoint


def jwt_secret(settings: Settings) -> str:
    """The configured secret, or one generated in the data folder: never an open server."""
    if settings.jwt_secret:
        return settings.jwt_secret
    return load_or_create_secret(settings.data_dir, "jwt-secret")


@contextlib.asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    if not settings.embedded:
        # Instances without the Redis bus would not see each other's edits: refuse to start.
        raise RuntimeError("REDIS_URL is set, but scaled mode is not in this build yet")
    async with contextlib.AsyncExitStack() as stack:
        store = await stack.enter_async_context(open_store(settings.database_url, migrate=True))
        verifier = TokenVerifier(jwt_secret(settings))
        backend = LocalBus(store)
        limits = RoomLimits(
            max_awareness_bytes=settings.limits.max_awareness_bytes,
            max_awareness_ids=settings.limits.max_awareness_clients_per_connection,
        )
        rooms = await stack.enter_async_context(
            RoomRegistry(backend, limits=limits, checkpoint_interval=settings.compact_interval)
        )
        note_service = NoteService(
            store,
            rooms,
            verifier,
            field=settings.prosemirror_field,
            auto_create=settings.auto_create_notes,
        )
        rooms.on_checkpoint = note_service.on_checkpoint
        sync = SyncEndpoint(
            note_service, rooms, max_message_bytes=settings.limits.max_message_bytes
        )
        # Registered last so it runs first on exit: close connections (1001), then store rooms.
        stack.push_async_callback(sync.shutdown)
        yield Services(settings, store, rooms, note_service, sync)


class _SyncDispatch:
    """Routes the WebSocket to the endpoint built at lifespan (an ASGI app, not a view)."""

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        await scope["app"].state.services.sync(scope, receive, send)


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
            yield

    routes: list[BaseRoute] = [
        WebSocketRoute("/ws/notes/{note_id:path}", _SyncDispatch()),
        *health.routes(),
        *notes.routes(),
    ]
    middleware = []
    if settings.frontend_url:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=[settings.frontend_url],
                allow_methods=["GET", "POST", "PUT", "DELETE"],
                allow_headers=["authorization", "content-type"],
                allow_credentials=True,
            )
        )
    return Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            ApiError: handle_api_error,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
    )
