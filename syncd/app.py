"""The ASGI application: routes, middleware and error handlers; the parts it serves are
built at lifespan by `syncd.wiring.open_services`."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Mount, WebSocketRoute
from starlette.types import Receive, Scope, Send

from syncd import metrics
from syncd.api import auth, docs, export, health, monitoring, notes, openapi, sessions, webapp
from syncd.api import jobs as jobs_api
from syncd.api import metrics as metrics_api
from syncd.api import notifications as notifications_api
from syncd.api import users as users_api
from syncd.api import versions as versions_api
from syncd.api import webhooks as webhooks_api
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
from syncd.settings import Settings
from syncd.storage import StorageRejected, StorageUnavailable
from syncd.transport.hocuspocus import PATH as HOCUSPOCUS_PATH
from syncd.transport.websocket import PATH_PREFIX
from syncd.wiring import Services, open_services

log = logging.getLogger(__name__)


class _SocketIODispatch:
    """Routes `/socket.io/` to the Socket.IO server built at lifespan."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await scope["app"].state.services.collab.gateway.app(scope, receive, send)


class _SyncDispatch:
    """Routes the WebSocket to the endpoint built at lifespan (an ASGI app, not a view)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await scope["app"].state.services.sync(scope, receive, send)


class _HocuspocusDispatch:
    """Routes `/hocuspocus` to the Hocuspocus endpoint built at lifespan."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await scope["app"].state.services.hocuspocus(scope, receive, send)


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

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Returns the chosen app's coroutine rather than awaiting it: no frame of its own
        # stays on every connection's stack.
        if scope["type"] == "websocket" and scope["path"].startswith(PATH_PREFIX):
            services: Services | None = getattr(self.app.state, "services", None)
            if services is not None:
                return services.sync(scope, receive, send)
        if scope["type"] == "websocket" and scope["path"] == HOCUSPOCUS_PATH:
            services = getattr(self.app.state, "services", None)
            if services is not None:
                return services.hocuspocus(scope, receive, send)
        return self.app(scope, receive, send)


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_services(settings) as services:
            app.state.services = services
            # Everything loaded so far (modules, the app, the services) lives as long as
            # the process: out of the collector's sight, a collection triggered by a
            # connection's allocations no longer walks it (the connect path spent a few
            # percent of its CPU in collections over startup objects; py-spy).
            gc.collect()
            gc.freeze()
            log.info(
                "syncd ready (%s mode, database %s)",
                "embedded" if settings.embedded else "scaled",
                settings.database_url.split("@")[-1],
            )
            try:
                yield
            finally:
                gc.unfreeze()  # an app started again in this process (tests) starts afresh
                metrics.process_exited(settings.metrics_dir)

    routes: list[BaseRoute] = [
        WebSocketRoute("/ws/notes/{note_id:path}", _SyncDispatch()),
        WebSocketRoute(HOCUSPOCUS_PATH, _HocuspocusDispatch()),
        Mount("/socket.io", app=_SocketIODispatch()),
        *sessions.routes(),
        *notifications_api.routes(),
        *monitoring.routes(),
        *webhooks_api.routes(),
        *jobs_api.routes(),
        *health.routes(),
        *notes.routes(),
        *users_api.routes(),
        *versions_api.routes(),
        *export.routes(),
        *auth.routes(),
        *metrics_api.routes(),
        *openapi.routes(),
        *docs.routes(),
        # last: only `/` and `/assets/`, so no API path is shadowed
        *webapp.routes(),
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
