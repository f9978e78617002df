"""Bodies of the monitoring routes: job queues, Socket.IO, health."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from syncd.api.models._base import Out


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


class QueueStats(Out):
    mode: Literal["embedded", "redis"]
    queues: dict[str, QueueCounts]
    worker: WorkerState
    jobs: list[str]


class Job(Out):
    id: str
    function: str
    queue: Literal["critical", "default", "bulk"]
    status: Literal["queued", "scheduled", "active", "complete", "failed", "aborted"]
    attempts: int = Field(ge=0)
    maxAttempts: int = Field(ge=1)
    enqueuedAt: float
    startedAt: float | None
    finishedAt: float | None
    nextAttemptAt: float | None
    error: str | None
    result: Any


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
