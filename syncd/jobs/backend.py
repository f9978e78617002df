"""The contract between the worker and a queue backend (in process, or SAQ on Redis).

Both backends keep the same job states and statistics, so the API and the tests see one
behaviour whichever runs; `tests/jobs` runs one contract suite against both.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    #: waiting for its retry delay (or a scheduled start)
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    COMPLETE = "complete"
    FAILED = "failed"
    ABORTED = "aborted"


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A job as `GET /api/jobs/:jobId` shows it (times in epoch seconds)."""

    id: str
    function: str
    queue: str
    status: JobStatus
    attempts: int
    max_attempts: int
    enqueued_at: float
    started_at: float | None = None
    finished_at: float | None = None
    next_attempt_at: float | None = None
    error: str | None = None
    result: Any = None


@dataclass(slots=True)
class QueueStats:
    queued: int = 0
    active: int = 0
    scheduled: int = 0
    complete: int = 0
    failed: int = 0
    retried: int = 0


@dataclass(slots=True)
class Claim:
    """A job taken by this worker: run it, then report complete, retry or fail."""

    id: str
    function: str
    kwargs: dict[str, Any]
    queue: str
    attempt: int
    max_attempts: int
    handle: Any = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class NewJob:
    function: str
    kwargs: dict[str, Any]
    queue: str
    max_attempts: int
    timeout: float
    #: a job with the id of one not finished yet is not enqueued twice
    id: str


class JobBackend(Protocol):
    async def enqueue(self, job: NewJob) -> bool:
        """Queue a job; False if a job with its id is still pending."""
        ...

    async def claim(self) -> Claim | None:
        """Take the next job, strictly by queue priority; None when nothing is ready."""
        ...

    async def complete(self, claim: Claim, result: Any) -> None: ...

    async def retry(self, claim: Claim, error: str, delay: float) -> None: ...

    async def fail(self, claim: Claim, error: str) -> None: ...

    async def info(self, job_id: str) -> JobInfo | None: ...

    async def stats(self) -> dict[str, QueueStats]: ...

    async def pending(self) -> int:
        """Jobs queued, scheduled or active, in every queue."""
        ...

    async def wait_for_work(self, longest: float) -> None:
        """Return when a job may be ready (enqueued here, or due), or after `longest` seconds."""
        ...

    async def claim_slot(self, name: str, slot: int, ttl: float) -> bool:
        """True for the one caller (across instances) that enqueues periodic `name` for
        time slot `slot`."""
        ...

    async def sweep(self) -> None:
        """Recover jobs whose worker died (past their timeout)."""
        ...
