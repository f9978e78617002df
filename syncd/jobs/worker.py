"""The job worker: takes jobs strictly by priority, runs them with a timeout, retries with
capped exponential backoff, and enqueues periodic jobs once per interval across instances.

It runs inside `syncd serve` (default) or alone as `syncd worker`. Tests drive it with
`drain()`, which returns once nothing is queued, scheduled or running: no sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import Any

from syncd import metrics
from syncd.jobs.backend import Claim, JobBackend, JobInfo, NewJob, QueueStats
from syncd.jobs.policy import JobSpec, Periodic, queue_of, valid_job_id

log = logging.getLogger(__name__)


class JobRegistry:
    """The job functions a process knows (by name) and the periodic jobs it schedules."""

    def __init__(self) -> None:
        self._specs: dict[str, JobSpec] = {}
        self.periodic: list[Periodic] = []

    def add(self, spec: JobSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"job {spec.name!r} is registered twice")
        self._specs[spec.name] = spec

    def every(self, name: str, interval: float, **kwargs: Any) -> None:
        """Enqueue job `name` every `interval` seconds (the first run at start-up)."""
        if interval <= 0:
            raise ValueError("a periodic job needs a positive interval")
        self.periodic.append(Periodic(name, interval, kwargs))

    def get(self, name: str) -> JobSpec | None:
        return self._specs.get(name)

    def names(self) -> list[str]:
        return sorted(self._specs)


class Jobs:
    """Enqueue jobs and read their status and statistics (what services and the API use)."""

    def __init__(self, backend: JobBackend, registry: JobRegistry, *, mode: str) -> None:
        self.backend = backend
        self.registry = registry
        self.mode = mode

    async def enqueue(self, name: str, *, job_id: str | None = None, **kwargs: Any) -> str:
        """Queue job `name` with JSON keyword arguments; returns its id."""
        spec = self.registry.get(name)
        if spec is None:
            raise KeyError(f"no job named {name!r}")
        job_id = job_id or f"{spec.queue}.{uuid.uuid4().hex}"
        if not valid_job_id(job_id) or queue_of(job_id) != spec.queue:
            raise ValueError(f"job id {job_id!r} must look like {spec.queue}.<letters, digits>")
        new = NewJob(name, kwargs, spec.queue, spec.retry.attempts, spec.timeout, job_id)
        await self.backend.enqueue(new)
        return job_id

    async def info(self, job_id: str) -> JobInfo | None:
        return await self.backend.info(job_id)

    async def stats(self) -> dict[str, QueueStats]:
        return await self.backend.stats()


class Worker:
    """Runs jobs of one `Jobs` with up to `concurrency` at once; an async context manager."""

    def __init__(
        self,
        jobs: Jobs,
        *,
        concurrency: int = 4,
        poll_interval: float = 0.5,
        sweep_interval: float = 60.0,
        grace: float = 5.0,
    ) -> None:
        self._jobs = jobs
        self._backend = jobs.backend
        self._registry = jobs.registry
        self.concurrency = concurrency
        self._poll = poll_interval
        self._sweep_interval = sweep_interval
        self._grace = grace
        self._slots = asyncio.Semaphore(concurrency)
        self._running: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._progress = asyncio.Event()
        self._stop = asyncio.Event()

    @property
    def in_flight(self) -> int:
        return len(self._running)

    @property
    def started(self) -> bool:
        return bool(self._tasks)

    async def __aenter__(self) -> Worker:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._tasks = [loop.create_task(self._dispatch(), name="jobs-dispatch")]
        self._tasks += [
            loop.create_task(self._schedule(p), name=f"jobs-every-{p.name}")
            for p in self._registry.periodic
        ]
        self._tasks.append(loop.create_task(self._sweep_forever(), name="jobs-sweep"))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop taking jobs, let running ones finish (up to `grace` seconds).

        The loops stop at their next pause instead of being cancelled: cancelling a task
        in the middle of a Redis command can leave it hanging (redis-py 8.1).
        """
        self._stop.set()
        tasks = [*self._tasks, *self._running]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self._grace)
            for task in late:
                log.warning(
                    "job task %s did not stop within %.1fs; cancelling it", task, self._grace
                )
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=1.0)
        self._tasks = []

    async def _pause(self, seconds: float) -> None:
        """Sleep, but return at once when the worker stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def drain(self, within: float = 30.0) -> None:
        """Wait until no job is queued, scheduled or running; `TimeoutError` after `within`
        seconds."""
        async with asyncio.timeout(within):
            while self._running or await self._backend.pending():
                progress = self._progress
                with contextlib.suppress(TimeoutError):
                    # jobs run by other instances finish without telling this one
                    await asyncio.wait_for(progress.wait(), max(self._poll, 0.05))

    def _advance(self) -> None:
        progress, self._progress = self._progress, asyncio.Event()
        progress.set()

    async def _dispatch(self) -> None:
        failures = 0
        while not self._stop.is_set():
            await self._slots.acquire()
            if self._stop.is_set():
                self._slots.release()
                return
            try:
                claim = await self._backend.claim()
                failures = 0
            except Exception:
                self._slots.release()
                failures += 1
                delay = min(0.1 * 2**failures, 10.0)
                log.exception("taking a job failed; retrying in %.1fs", delay)
                metrics.ERRORS.labels("jobs").inc()
                await self._pause(delay)
                continue
            if claim is None:
                self._slots.release()
                await self._idle()
                continue
            task = asyncio.get_running_loop().create_task(self._run(claim))
            self._running.add(task)
            task.add_done_callback(self._finished)

    async def _idle(self) -> None:
        """Wait for work (or the poll interval), or for the worker to stop."""
        loop = asyncio.get_running_loop()
        work = loop.create_task(self._backend.wait_for_work(self._poll))
        stop = loop.create_task(self._stop.wait())
        _, pending = await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()  # both are plain asyncio waits: safe to cancel

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._slots.release()
        self._advance()

    async def _run(self, claim: Claim) -> None:
        spec = self._registry.get(claim.function)
        started = time.monotonic()
        try:
            if spec is None:
                raise LookupError(f"no job function {claim.function!r} in this process")
            async with asyncio.timeout(spec.timeout):
                result = await spec.func(**claim.kwargs)
        except asyncio.CancelledError:
            await self._report(self._backend.retry(claim, "worker stopped", 0.0), claim)
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if spec is not None and claim.attempt < claim.max_attempts:
                delay = spec.retry.delay(claim.attempt)
                log.warning(
                    "job %s (%s) attempt %d/%d failed: %s; retrying in %.2fs",
                    claim.id,
                    claim.function,
                    claim.attempt,
                    claim.max_attempts,
                    error,
                    delay,
                )
                await self._report(self._backend.retry(claim, error, delay), claim)
                outcome = "retried"
            else:
                log.error(
                    "job %s (%s) failed after %d attempts: %s",
                    claim.id,
                    claim.function,
                    claim.attempt,
                    error,
                    exc_info=exc,
                )
                await self._report(self._backend.fail(claim, error), claim)
                outcome = "failed"
        else:
            await self._report(self._backend.complete(claim, _jsonable(result)), claim)
            outcome = "complete"
        metrics.JOBS.labels(claim.queue, outcome).inc()
        metrics.JOB_SECONDS.labels(claim.queue).observe(time.monotonic() - started)

    async def _report(self, outcome: Any, claim: Claim) -> None:
        try:
            await outcome
        except Exception:
            # The job stays "active" in the backend; a sweep recovers it after its timeout.
            log.exception("recording the outcome of job %s failed", claim.id)
            metrics.ERRORS.labels("jobs").inc()

    async def _schedule(self, periodic: Periodic) -> None:
        spec = self._registry.get(periodic.name)
        if spec is None:
            log.error("periodic job %r is not registered; not scheduling it", periodic.name)
            return
        while not self._stop.is_set():
            slot = int(time.time() // periodic.interval)
            try:
                if await self._backend.claim_slot(periodic.name, slot, periodic.interval * 2):
                    job_id = f"{spec.queue}.every-{periodic.name}-{slot}"
                    await self._jobs.enqueue(periodic.name, job_id=job_id, **periodic.kwargs)
            except Exception:
                log.exception("enqueueing periodic job %s failed", periodic.name)
                metrics.ERRORS.labels("jobs").inc()
            await self._pause(max((slot + 1) * periodic.interval - time.time(), 0.01))

    async def _sweep_forever(self) -> None:
        while not self._stop.is_set():
            await self._pause(self._sweep_interval)
            if self._stop.is_set():
                return
            try:
                await self._backend.sweep()
            except Exception:
                log.exception("sweeping stuck jobs failed")
                metrics.ERRORS.labels("jobs").inc()


def _jsonable(value: Any) -> Any:
    """Results are stored as JSON; anything else is kept as its text."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value
