"""The embedded job backend: queues in this process, same states and policies as SAQ.

Jobs queued here are lost if the process dies; in the embedded mode that is the process
that would have run them anyway, and the work they do (deliveries, e-mail, cleanup) is
either repeatable or recorded in the database first.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from syncd.jobs.backend import (
    CANCELLABLE,
    RETRYABLE,
    JobConflict,
    JobInfo,
    JobQuery,
    JobStatus,
    NewJob,
    QueueStats,
    RunnerOptions,
)
from syncd.jobs.memory_runner import MemoryRunner
from syncd.jobs.policy import QUEUES, JobRegistry


@dataclass(slots=True)
class _Job:
    new: NewJob
    status: JobStatus
    enqueued_at: float
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    run_at: float | None = None
    error: str | None = None
    result: Any = None
    #: the task running it, while active (a cancel cancels it)
    task: asyncio.Task[None] | None = None

    def info(self) -> JobInfo:
        return JobInfo(
            id=self.new.id,
            function=self.new.function,
            queue=self.new.queue,
            status=self.status,
            attempts=self.attempts,
            max_attempts=self.new.max_attempts,
            enqueued_at=self.enqueued_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            next_attempt_at=self.run_at if self.status is JobStatus.SCHEDULED else None,
            error=self.error,
            result=self.result,
        )


@dataclass(slots=True)
class Claim:
    """A job taken by the in-process worker: run it, then report complete, retry or fail."""

    id: str
    function: str
    kwargs: dict[str, Any]
    queue: str
    attempt: int
    max_attempts: int
    job: _Job = field(repr=False)

    @property
    def aborted(self) -> bool:
        """Cancelled while it ran: its outcome is no longer the runner's to record."""
        return self.job.status is JobStatus.ABORTED


class MemoryBackend:
    """`JobBackend` in process. Finished jobs are kept for `keep_seconds` (job status)
    and at most `keep_finished` of them."""

    def __init__(self, *, keep_seconds: float = 3600.0, keep_finished: int = 10_000) -> None:
        self._jobs: dict[str, _Job] = {}
        self._ready: dict[str, deque[str]] = {name: deque() for name in QUEUES}
        self._scheduled: list[tuple[float, int, str]] = []
        self._finished: OrderedDict[str, float] = OrderedDict()
        self._counts = {name: QueueStats() for name in QUEUES}
        self._seq = itertools.count()
        self._wake = {name: asyncio.Event() for name in QUEUES}
        self._keep_seconds = keep_seconds
        self._keep_finished = keep_finished

    def runner(self, registry: JobRegistry, options: RunnerOptions) -> MemoryRunner:
        return MemoryRunner(self, registry, options)

    async def enqueue(self, job: NewJob) -> bool:
        current = self._jobs.get(job.id)
        if current is not None and current.status not in _DONE:
            return False
        self._finished.pop(job.id, None)
        self._jobs[job.id] = _Job(job, JobStatus.QUEUED, time.time())
        self._ready[job.queue].append(job.id)
        self._wake[job.queue].set()
        return True

    def _promote_due(self) -> None:
        now = time.time()
        while self._scheduled and self._scheduled[0][0] <= now:
            _, _, job_id = heapq.heappop(self._scheduled)
            job = self._jobs.get(job_id)
            # an entry left by a job since cancelled and queued again is not its due time
            due = job is not None and job.run_at is not None and job.run_at <= now
            if job is not None and job.status is JobStatus.SCHEDULED and due:
                job.status = JobStatus.QUEUED
                self._ready[job.new.queue].append(job_id)
                self._wake[job.new.queue].set()

    def claim(self, queue: str) -> Claim | None:
        """The oldest ready job of `queue`, now active; None when none is ready."""
        self._promote_due()
        ready = self._ready[queue]
        while ready:
            job = self._jobs.get(ready.popleft())
            if job is None or job.status is not JobStatus.QUEUED:
                continue
            job.status = JobStatus.ACTIVE
            job.attempts += 1
            job.started_at = time.time()
            job.run_at = None
            return Claim(
                job.new.id,
                job.new.function,
                dict(job.new.kwargs),
                queue,
                job.attempts,
                job.new.max_attempts,
                job,
            )
        return None

    def started(self, claim: Claim, task: asyncio.Task[None]) -> None:
        """The task that runs a claimed job (what `cancel` cancels)."""
        claim.job.task = task

    def _finish(self, job: _Job, status: JobStatus, error: str | None, result: Any) -> None:
        job.status = status
        job.error = error
        job.result = result
        job.task = None
        job.run_at = None
        job.finished_at = time.time()
        self._finished[job.new.id] = job.finished_at
        self._prune()

    def _prune(self) -> None:
        horizon = time.time() - self._keep_seconds
        while self._finished:
            job_id, finished_at = next(iter(self._finished.items()))
            if finished_at >= horizon and len(self._finished) <= self._keep_finished:
                break
            self._finished.popitem(last=False)
            self._jobs.pop(job_id, None)

    # The outcomes of a claim are ignored once the job was cancelled: it is aborted, and
    # may even be queued again as a new job of the same id.

    def complete(self, claim: Claim, result: Any) -> None:
        if claim.aborted:
            return
        self._finish(claim.job, JobStatus.COMPLETE, None, result)
        self._counts[claim.queue].complete += 1

    def fail(self, claim: Claim, error: str) -> None:
        if claim.aborted:
            return
        self._finish(claim.job, JobStatus.FAILED, error, None)
        self._counts[claim.queue].failed += 1

    def reschedule(self, claim: Claim, error: str, delay: float) -> None:
        """Attempt `claim.attempt` failed: run the job again after `delay` seconds."""
        if claim.aborted:
            return
        job = claim.job
        job.task = None
        job.status = JobStatus.SCHEDULED
        job.error = error
        job.run_at = time.time() + delay
        heapq.heappush(self._scheduled, (job.run_at, next(self._seq), job.new.id))
        self._counts[claim.queue].retried += 1
        for event in self._wake.values():  # a waiting worker recomputes its next wake-up
            event.set()

    async def info(self, job_id: str) -> JobInfo | None:
        job = self._jobs.get(job_id)
        return None if job is None else job.info()

    async def list_jobs(self, query: JobQuery) -> list[JobInfo]:
        return query.page(job.info() for job in self._jobs.values())

    async def retry(self, job_id: str) -> JobInfo | None:
        job = self._jobs.get(job_id)
        if job is None:
            return None
        if job.status not in RETRYABLE:
            raise JobConflict(job_id, job.status, f"a job that is {job.status} is not retried")
        await self.enqueue(job.new)
        return self._jobs[job_id].info()

    async def cancel(self, job_id: str, reason: str) -> JobInfo | None:
        job = self._jobs.get(job_id)
        if job is None:
            return None
        if job.status not in CANCELLABLE:
            raise JobConflict(job_id, job.status, f"a job that is {job.status} is not cancelled")
        task = job.task
        self._finish(job, JobStatus.ABORTED, reason, None)
        if task is not None:
            task.cancel()  # the runner sees the claim aborted and records nothing more
        return job.info()

    async def stats(self) -> dict[str, QueueStats]:
        result = {}
        for name in QUEUES:
            counts = self._counts[name]
            live = [j for j in self._jobs.values() if j.new.queue == name]
            result[name] = QueueStats(
                queued=sum(j.status is JobStatus.QUEUED for j in live),
                active=sum(j.status is JobStatus.ACTIVE for j in live),
                scheduled=sum(j.status is JobStatus.SCHEDULED for j in live),
                complete=counts.complete,
                failed=counts.failed,
                retried=counts.retried,
            )
        return result

    def pending(self) -> int:
        """Jobs queued, scheduled for a retry or active, in every queue."""
        return sum(job.status not in _DONE for job in self._jobs.values())

    async def wait_for_work(self, queue: str, longest: float) -> None:
        """Return when a job of `queue` may be ready, or after `longest` seconds."""
        self._promote_due()
        if self._ready[queue]:
            return
        if self._scheduled:
            longest = max(0.0, min(longest, self._scheduled[0][0] - time.time()))
        wake = self._wake[queue]
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), longest)

    async def close(self) -> None:
        """Nothing to release."""


_DONE = frozenset({JobStatus.COMPLETE, JobStatus.FAILED, JobStatus.ABORTED})
