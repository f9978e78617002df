"""The contract of a job backend (in process, or SAQ on Redis) and of the worker it runs.

Both backends keep the same job states and statistics, so the API and the tests see one
behaviour whichever runs; `tests/jobs` runs one contract suite against both.
"""

from __future__ import annotations

import enum
import json
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, Self

from syncd.jobs.policy import JobRegistry, JobSpec


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    #: waiting for its retry delay (or, for a periodic job, its time)
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
    #: the last line of the error (`Type: message`); the traceback goes to the log
    error: str | None = None
    result: Any = None


#: states a job may be cancelled in (it has not finished), and retried in (it has)
CANCELLABLE = frozenset({JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.ACTIVE})
RETRYABLE = frozenset({JobStatus.FAILED, JobStatus.ABORTED})


class JobConflict(Exception):
    """A retry or cancel asked of a job in a state that does not allow it."""

    def __init__(self, job_id: str, status: JobStatus, message: str) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.status = status


@dataclass(frozen=True, slots=True)
class JobQuery:
    """A page of the job list: newest enqueued first (ties by id, descending), of one
    status and queue if given, after the (enqueued_at, id) of the previous page's last job.

    Both backends hold few enough jobs (finished ones only for their retention) to read
    them all and sort; the page boundary is a key, so jobs queued meanwhile shift nothing.
    """

    limit: int
    status: JobStatus | None = None
    queue: str | None = None
    after: tuple[float, str] | None = None

    def page(self, jobs: Iterable[JobInfo]) -> list[JobInfo]:
        def key(info: JobInfo) -> tuple[float, str]:
            return (info.enqueued_at, info.id)

        chosen = [
            info
            for info in jobs
            if (self.status is None or info.status is self.status)
            and (self.queue is None or info.queue == self.queue)
            and (self.after is None or key(info) < self.after)
        ]
        chosen.sort(key=key, reverse=True)
        return chosen[: self.limit]


@dataclass(slots=True)
class QueueStats:
    """Live counts of one queue, and what its workers finished since they started."""

    queued: int = 0
    active: int = 0
    scheduled: int = 0
    complete: int = 0
    failed: int = 0
    retried: int = 0


@dataclass(frozen=True, slots=True)
class NewJob:
    function: str
    kwargs: dict[str, Any]
    queue: str
    max_attempts: int
    timeout: float
    #: a job with the id of one not finished yet is not enqueued twice
    id: str
    #: the wait after a first failed attempt, for a worker that does not know the function
    first_retry_delay: float = 0.0

    @classmethod
    def of(cls, spec: JobSpec, job_id: str, kwargs: dict[str, Any]) -> NewJob:
        return cls(
            spec.name,
            kwargs,
            spec.queue,
            spec.retry.attempts,
            spec.timeout,
            job_id,
            spec.retry.delay(1),
        )


@dataclass(frozen=True, slots=True)
class RunnerOptions:
    #: jobs run at once per queue (each queue has workers of its own)
    concurrency: int = 4
    #: longest an idle worker waits for a job before it looks again (bounds stopping time)
    poll_interval: float = 0.5
    #: how often jobs of dead workers (active past their timeout) are recovered
    sweep_interval: float = 60.0
    #: how long running jobs may take to finish when the worker stops
    grace: float = 5.0


class Runner(Protocol):
    """A backend's worker: an async context manager that runs jobs until it exits."""

    @property
    def in_flight(self) -> int: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def drain(self, within: float) -> None:
        """Return once no job is queued, running or waiting for a retry, in any queue
        (periodic jobs waiting for their time do not count); `TimeoutError` after `within`
        seconds."""
        ...


class JobBackend(Protocol):
    async def enqueue(self, job: NewJob) -> bool:
        """Queue a job; False if a job with its id is still pending."""
        ...

    async def info(self, job_id: str) -> JobInfo | None: ...

    async def list_jobs(self, query: JobQuery) -> list[JobInfo]:
        """A page of the jobs the backend still knows (`JobQuery`)."""
        ...

    async def retry(self, job_id: str) -> JobInfo | None:
        """Queue a failed or aborted job again, with its arguments and a fresh count of
        attempts; None for an unknown job, `JobConflict` in any other state."""
        ...

    async def cancel(self, job_id: str, reason: str) -> JobInfo | None:
        """Abort a queued, scheduled or running job (a running one is cancelled where it
        runs); None for an unknown job, `JobConflict` once it has finished."""
        ...

    async def stats(self) -> dict[str, QueueStats]: ...

    def runner(self, registry: JobRegistry, options: RunnerOptions) -> Runner: ...

    async def close(self) -> None: ...


def error_line(error: BaseException | str | None) -> str | None:
    """`Type: message` of an exception, or the last line of a formatted traceback."""
    if error is None:
        return None
    if isinstance(error, BaseException):
        return traceback.format_exception_only(error)[-1].strip()
    lines = [line for line in error.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else error


def jsonable(value: Any) -> Any:
    """Results are stored as JSON; anything else is kept as its text."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value
