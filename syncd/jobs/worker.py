"""What the rest of syncd uses: `Jobs` (enqueue, status, statistics) and `Worker` (runs the
registered jobs of one `Jobs`, whichever backend holds the queues).

The worker runs inside `syncd serve` (default) or alone as `syncd worker`. Tests drive it
with `drain()`, which returns once nothing is queued, running or waiting for a retry.
"""

from __future__ import annotations

import uuid
from typing import Any

from syncd.jobs.backend import JobBackend, JobInfo, JobQuery, NewJob, QueueStats, RunnerOptions
from syncd.jobs.policy import PERIODIC_ID, JobRegistry, queue_of, valid_job_id

__all__ = ["JobRegistry", "Jobs", "Worker"]


class Jobs:
    """Enqueue jobs and read their status and statistics (what services and the API use)."""

    def __init__(self, backend: JobBackend, registry: JobRegistry, *, mode: str) -> None:
        self.backend = backend
        self.registry = registry
        self.mode = mode

    async def enqueue(self, name: str, *, job_id: str | None = None, **kwargs: Any) -> str:
        """Queue job `name` with JSON keyword arguments; returns its id. A job whose id is
        still pending is not queued twice."""
        spec = self.registry.get(name)
        if spec is None:
            raise KeyError(f"no job named {name!r}")
        job_id = job_id or f"{spec.queue}.{uuid.uuid4().hex}"
        if not valid_job_id(job_id) or queue_of(job_id) != spec.queue:
            raise ValueError(f"job id {job_id!r} must look like {spec.queue}.<letters, digits>")
        if job_id.split(".", 1)[1].startswith(PERIODIC_ID):
            raise ValueError(f"job ids {spec.queue}.{PERIODIC_ID}… are the periodic jobs'")
        await self.backend.enqueue(NewJob.of(spec, job_id, kwargs))
        return job_id

    async def info(self, job_id: str) -> JobInfo | None:
        return await self.backend.info(job_id)

    async def list_jobs(self, query: JobQuery) -> list[JobInfo]:
        """A page of the jobs the backend still knows, newest first (`JobQuery`)."""
        return await self.backend.list_jobs(query)

    async def retry(self, job_id: str) -> JobInfo | None:
        """Queue a failed or aborted job again (`JobConflict` otherwise); None: unknown."""
        return await self.backend.retry(job_id)

    async def cancel(self, job_id: str, reason: str) -> JobInfo | None:
        """Abort a job that has not finished (`JobConflict` otherwise); None: unknown."""
        return await self.backend.cancel(job_id, reason)

    async def stats(self) -> dict[str, QueueStats]:
        return await self.backend.stats()


class Worker:
    """Runs the jobs of one `Jobs`, up to `concurrency` at once in each queue; an async
    context manager. On exit it takes no new job and gives running ones `grace` seconds."""

    def __init__(
        self,
        jobs: Jobs,
        *,
        concurrency: int = 4,
        poll_interval: float = 0.5,
        sweep_interval: float = 60.0,
        grace: float = 5.0,
    ) -> None:
        self.concurrency = concurrency
        options = RunnerOptions(concurrency, poll_interval, sweep_interval, grace)
        self._runner = jobs.backend.runner(jobs.registry, options)
        self._started = False

    @property
    def in_flight(self) -> int:
        return self._runner.in_flight

    @property
    def started(self) -> bool:
        return self._started

    async def __aenter__(self) -> Worker:
        await self._runner.__aenter__()
        self._started = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._started = False
        await self._runner.__aexit__(*exc_info)

    async def drain(self, within: float = 30.0) -> None:
        """Wait until no job is queued, running or waiting for a retry (periodic jobs
        waiting for their time aside); `TimeoutError` after `within` seconds."""
        await self._runner.drain(within)
