"""Monitoring: job queues (`/api/queue-stats`, role service/admin; the jobs themselves are
`syncd.api.jobs`) and Socket.IO (`/socket-stats`, `/socket-status`, open like `/healthz`:
counts only)."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd import metrics
from syncd.api.errors import ApiError
from syncd.api.models.monitoring import QueueStats, SocketStats, SocketStatus
from syncd.api.operations import ERROR, operation
from syncd.api.requests import authenticate

log = logging.getLogger(__name__)
TAGS = ["monitoring"]


def _operator(request: Request) -> None:
    if not authenticate(request).privileged:
        raise ApiError(403, "service or admin role required")


@operation(
    "Per-queue job counts (role service or admin)",
    responses={200: QueueStats, 403: ERROR},
    tags=TAGS,
)
async def queue_stats(request: Request) -> Response:
    _operator(request)
    collab = request.app.state.services.collab
    stats = await collab.jobs.stats()
    worker = collab.worker
    amqp = request.app.state.services.amqp
    return JSONResponse(
        {
            "amqp": await amqp.status() if amqp is not None else None,
            "mode": collab.jobs.mode,
            "queues": {name: dataclasses.asdict(s) for name, s in stats.items()},
            "worker": {
                "running": worker is not None,
                "concurrency": worker.concurrency if worker else 0,
                "inFlight": worker.in_flight if worker else 0,
            },
            "jobs": collab.jobs.registry.names(),
        }
    )


async def _cluster(request: Request) -> dict[str, Any]:
    services = request.app.state.services
    collab = services.collab
    here = {
        **collab.gateway.local_stats(),
        "websocket": {"connections": services.sync.connection_count, "rooms": len(services.rooms)},
        "hocuspocus": {"sockets": services.hocuspocus.connection_count},
    }
    instances = {collab.instance_id: here}
    known = True
    if collab.redis is not None:
        from syncd.services.presence.redis_state import RedisInstances

        try:
            others = await RedisInstances(collab.redis, services.settings.redis_prefix).read()
            instances.update({k: v for k, v in others.items() if k != collab.instance_id})
        except Exception:
            log.exception("reading the other instances' socket stats failed")
            metrics.ERRORS.labels("socketio").inc()
            known = False
    return {
        "instance": {"id": collab.instance_id, **here},
        "cluster": {
            "known": known,
            "instances": len(instances),
            "connections": sum(int(s.get("connections", 0)) for s in instances.values()),
            "websocketConnections": sum(
                int((s.get("websocket") or {}).get("connections", 0)) for s in instances.values()
            ),
        },
    }


@operation(
    "Socket.IO and y-websocket connections on this instance and across the cluster",
    responses={200: SocketStats},
    auth=False,
    tags=TAGS,
)
async def socket_stats(request: Request) -> Response:
    return JSONResponse(await _cluster(request))


@operation("Socket.IO health", responses={200: SocketStatus}, auth=False, tags=TAGS)
async def socket_status(request: Request) -> Response:
    services = request.app.state.services
    collab = services.collab
    return JSONResponse(
        {
            "status": "ok",
            "mode": "embedded" if collab.redis is None else "scaled",
            "path": "/socket.io",
            "connections": collab.gateway.local_stats()["connections"],
        }
    )


def routes() -> list[Route]:
    return [
        Route("/api/queue-stats", queue_stats, methods=["GET"]),
        Route("/socket-stats", socket_stats, methods=["GET"]),
        Route("/socket-status", socket_status, methods=["GET"]),
    ]
