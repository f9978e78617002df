"""The scaled job backend: one SAQ queue on Redis per priority class, used through SAQ's
public API (`Queue.enqueue`, `Queue.job`, `Queue.iter_jobs`, `Queue.abort`,
`Queue.finish_abort`, `Queue.info`, `Queue.count`).

SAQ keeps the jobs, their state and their retry schedule; its `Worker` (one per queue, see
`saq_runner`) runs them. Key names come from `syncd.bus.keys.JobKeys` (one hash tag for all).
Finished jobs keep their status for `ttl` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any, cast

from saq import Job, Status
from saq.queue.redis import RedisQueue

from syncd import metrics
from syncd.bus.keys import JobKeys, id_of_part
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
    error_line,
)
from syncd.jobs.policy import PERIODIC_ID, QUEUES, JobRegistry, queue_of, valid_job_id
from syncd.jobs.saq_runner import SaqRunner, whole_seconds

log = logging.getLogger(__name__)

_STATUS = {
    Status.NEW: JobStatus.QUEUED,
    Status.QUEUED: JobStatus.QUEUED,
    Status.ACTIVE: JobStatus.ACTIVE,
    Status.ABORTING: JobStatus.ABORTED,
    Status.ABORTED: JobStatus.ABORTED,
    Status.FAILED: JobStatus.FAILED,
    Status.COMPLETE: JobStatus.COMPLETE,
}


class JobQueue(RedisQueue):
    """SAQ's Redis queue, with a failing dequeue (Redis unreachable) logged, counted and
    backed off: SAQ's worker would otherwise retry it at once, in a tight loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dequeue_failures = 0

    # SAQ's signature: `timeout` is how long BLMOVE blocks in Redis
    async def dequeue(
        self,
        timeout: float = 0.0,  # noqa: ASYNC109
        poll_interval: float = 0.0,
    ) -> Job | None:
        try:
            job = await super().dequeue(timeout, poll_interval)
        except Exception as exc:
            self.dequeue_failures += 1
            delay = min(0.1 * 2**self.dequeue_failures, 5.0)
            log.warning(
                "taking a job from %s failed (%s); retrying in %.1fs",
                self.name,
                error_line(exc),
                delay,
            )
            metrics.ERRORS.labels("jobs").inc()
            await asyncio.sleep(delay)
            raise
        self.dequeue_failures = 0
        return job


class SaqBackend:
    """`JobBackend` over SAQ: one `JobQueue` (with its own Redis client) per priority class."""

    def __init__(self, redis_url: str, *, prefix: str = "syncd", ttl: int = 3600) -> None:
        self.keys = JobKeys(prefix)
        self.ttl = ttl
        self.queues: dict[str, JobQueue] = {
            # `from_url` is typed on SAQ's base class; it builds the subclass it is called on
            name: cast(JobQueue, JobQueue.from_url(redis_url, name=self.keys.queue(name)))
            for name in QUEUES
        }

    def runner(self, registry: JobRegistry, options: RunnerOptions) -> SaqRunner:
        return SaqRunner(self, registry, options)

    async def enqueue(self, job: NewJob) -> bool:
        saq_job = Job(
            function=job.function,
            kwargs=dict(job.kwargs),
            key=self.keys.job(job.id),
            timeout=whole_seconds(job.timeout),
            retries=job.max_attempts,
            ttl=self.ttl,
            retry_delay=job.first_retry_delay,
        )
        return await self.queues[job.queue].enqueue(saq_job) is not None

    async def list_jobs(self, query: JobQuery) -> list[JobInfo]:
        """Every job SAQ still holds in the queues asked for (SAQ's `iter_jobs`: a SCAN of
        the job keys), then `query.page`: cost grows with the jobs kept, not the page."""
        found: dict[str, JobInfo] = {}
        for name in (query.queue,) if query.queue else QUEUES:
            async for job in self.queues[name].iter_jobs():
                job_id = self._id(name, job.key)
                if job_id is not None:  # SCAN may yield a key twice: one entry per id
                    found[job_id] = self._info(job_id, job)
        return query.page(found.values())

    async def retry(self, job_id: str) -> JobInfo | None:
        job = await self._job(job_id)
        if job is None:
            return None
        status = _STATUS[job.status]
        if status not in RETRYABLE:
            raise JobConflict(job_id, status, f"a job that is {status} is not retried")
        again = Job(
            function=job.function,
            kwargs=job.kwargs,
            key=job.key,
            timeout=job.timeout,
            retries=job.retries,
            ttl=job.ttl,
            retry_delay=job.retry_delay,
        )
        # SAQ's enqueue refuses a key that is pending, or aborting (its abort marker lives
        # until the worker that ran it has stopped it): then there is nothing to retry yet
        if await self.queues[queue_of(job_id)].enqueue(again) is None:
            current = await self.info(job_id)
            now = current.status if current is not None else status
            raise JobConflict(job_id, now, "the job is queued again or still stopping")
        return await self.info(job_id)

    async def cancel(self, job_id: str, reason: str) -> JobInfo | None:
        queue = self.queues[queue_of(job_id)]
        job = await self._job(job_id)
        if job is None:
            return None
        status = _STATUS[job.status]
        if status not in CANCELLABLE or job.status is Status.ABORTING:
            raise JobConflict(job_id, status, f"a job that is {status} is not cancelled")
        await queue.abort(job, reason)
        after = await self._job(job_id)
        if after is not None and after.status is Status.ABORTING and status is not JobStatus.ACTIVE:
            # Waiting for a retry, it was in no list a worker takes from: no worker will
            # finish the abort, so finish it here (an active job is finished by its worker).
            await queue.finish_abort(after)
        return await self.info(job_id)

    # A periodic job is one SAQ job per function (`cron:<function>`, enqueued again for each
    # occurrence); syncd shows it as `<queue>.every-<name>`.

    def _key(self, job_id: str) -> str:
        """The SAQ job key of syncd job `job_id`."""
        token = job_id.split(".", 1)[1]
        if token.startswith(PERIODIC_ID):
            return f"cron:{self.keys.periodic(token[len(PERIODIC_ID) :])}"
        return self.keys.job(job_id)

    def _id(self, queue: str, key: str) -> str | None:
        """The syncd job id of SAQ job `key` in `queue`; None for a key syncd did not make."""
        cron = f"cron:{self.keys.periodic('')}"
        if key.startswith(cron):
            job_id: str | None = f"{queue}.{PERIODIC_ID}{key[len(cron) :]}"
        else:
            job_id = id_of_part(key.removeprefix(f"{self.keys.tag}:"))
        if job_id is None or not valid_job_id(job_id) or queue_of(job_id) != queue:
            return None
        return job_id if self._key(job_id) == key else None

    async def _job(self, job_id: str) -> Job | None:
        return await self.queues[queue_of(job_id)].job(self._key(job_id))

    async def info(self, job_id: str) -> JobInfo | None:
        job = await self._job(job_id)
        return None if job is None else self._info(job_id, job)

    def _info(self, job_id: str, job: Job) -> JobInfo:
        status = _STATUS[job.status]
        next_at: float | None = None
        if status is JobStatus.QUEUED:
            # SAQ has no "scheduled" state: a queued job is due at its retry time or, for a
            # periodic job, at its scheduled time
            due = job.touched / 1000 + job.retry_delay if job.attempts else float(job.scheduled)
            if due > time.time():
                status, next_at = JobStatus.SCHEDULED, due
        return JobInfo(
            id=job_id,
            function=self.keys.job_name(job.function),
            queue=queue_of(job_id),
            status=status,
            attempts=job.attempts,
            max_attempts=job.retries,
            enqueued_at=job.queued / 1000,
            started_at=job.started / 1000 if job.started else None,
            finished_at=job.completed / 1000 if job.completed else None,
            next_attempt_at=next_at,
            error=error_line(job.error),
            result=job.result,
        )

    async def stats(self) -> dict[str, QueueStats]:
        """SAQ's queue info: live counts, and the outcome counts of the workers alive now
        (each since it started; they publish them every few seconds)."""
        result = {}
        for name, queue in self.queues.items():
            info = await queue.info()
            outcomes = {"complete": 0, "failed": 0, "retried": 0}
            for worker in info["workers"].values():
                counts: dict[str, Any] = dict(worker.get("stats") or {})
                for outcome in outcomes:
                    outcomes[outcome] += int(counts.get(outcome, 0))
            result[name] = QueueStats(
                queued=info["queued"],
                active=info["active"],
                scheduled=max(info["scheduled"], 0),
                **outcomes,
            )
        return result

    async def pending(self, periodic: Iterable[tuple[str, str]] = ()) -> int:
        """Jobs queued, active or waiting for a retry in every queue; `periodic` names the
        (queue, job key) of periodic jobs, which do not count while they wait for their time."""
        # Periodic jobs first: one seen waiting stays in `incomplete` until its time, so the
        # counts read next include it; read the other way round, a run enqueued in between
        # would be subtracted without having been counted.
        total = 0
        now = time.time()
        for queue_name, key in periodic:
            job = await self.queues[queue_name].job(key)
            waiting = job is not None and job.status is Status.QUEUED and not job.attempts
            if waiting and job is not None and job.scheduled > now:
                total -= 1
        for queue in self.queues.values():
            total += await queue.count("incomplete")  # queued, scheduled and active alike
        return total

    async def close(self) -> None:
        for queue in self.queues.values():
            try:
                await queue.disconnect()
            except Exception:
                log.exception("closing job queue %s failed", queue.name)
                metrics.ERRORS.labels("jobs").inc()
