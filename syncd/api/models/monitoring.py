"""Bodies of the monitoring routes: job queues, Socket.IO, health."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from syncd.api.models._base import Body, Out, Timestamp
from syncd.api.models.notifications import Cursor

JobQueue = Literal["critical", "default", "bulk"]
JobState = Literal["queued", "scheduled", "active", "complete", "failed", "aborted"]
JobId = Annotated[
    str,
    Field(
        pattern=r"^(critical|default|bulk)\.[A-Za-z0-9_\-]{1,120}$",
        max_length=129,
        description="`<queue>.<token>`, as returned where the job was queued",
    ),
]
MAX_JOBS_PAGE = 200


class QueueCounts(Out):
    queued: int = Field(ge=0)
    active: int = Field(ge=0)
    scheduled: int = Field(ge=0)
    complete: int = Field(ge=0)
    failed: int = Field(ge=0)
    retried: int = Field(ge=0)


class WorkerState(Out):
    running: bool
    concurrency: int = Field(ge=0)
    inFlight: int = Field(ge=0)


class AmqpStatus(Out):
    """RabbitMQ (`RABBITMQ_URL`): this instance's connection and the shared outbox."""

    connected: bool
    publisher: bool = Field(description="this instance holds the lease and publishes")
    outboxDepth: int | None = Field(
        description="messages waiting for the broker's confirm (null: could not be read)"
    )
    exchange: str
    error: str | None = Field(description="why publishing is paused, while it is")


class QueueStats(Out):
    amqp: AmqpStatus | None = Field(description="null: RABBITMQ_URL is not set")
    mode: Literal["embedded", "redis"]
    queues: dict[str, QueueCounts]
    worker: WorkerState
    jobs: list[str]


class Job(Out):
    id: str
    function: str
    queue: JobQueue
    status: JobState = Field(
        description="`scheduled`: waiting for its retry delay (or a periodic job for its time)"
    )
    attempts: int = Field(ge=0)
    maxAttempts: int = Field(ge=1)
    enqueuedAt: Timestamp
    startedAt: Timestamp | None
    finishedAt: Timestamp | None
    nextAttemptAt: Timestamp | None
    error: str | None
    result: Any


class JobListQuery(Body):
    status: JobState | None = None
    queue: JobQueue | None = None
    limit: int = Field(default=50, ge=1, le=MAX_JOBS_PAGE)
    cursor: Cursor | None = None


class JobList(Out):
    jobs: list[Job]
    nextCursor: str | None = Field(description="`cursor` of the next page; null: no more")


class InstanceStats(Out):
    model_config = ConfigDict(extra="allow")

    id: str


class ClusterStats(Out):
    known: bool
    instances: int = Field(ge=1)
    connections: int = Field(ge=0)
    websocketConnections: int = Field(ge=0)


class SocketStats(Out):
    instance: InstanceStats
    cluster: ClusterStats


class SocketStatus(Out):
    status: str
    mode: Literal["embedded", "scaled"]
    path: str
    connections: int = Field(ge=0)


class Live(Out):
    status: str


class Ready(Out):
    status: Literal["ready", "not ready"]
    checks: dict[str, str]
    amqp: AmqpStatus | None = Field(
        default=None,
        description="present with RABBITMQ_URL; a broker away is degraded, not unready",
    )
