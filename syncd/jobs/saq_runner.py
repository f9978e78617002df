"""The scaled worker: one SAQ `Worker` per priority queue, so `critical` jobs have workers
of their own and never wait behind `bulk` work.

SAQ runs the jobs (with their timeout), retries them, promotes due retries, sweeps jobs of
dead workers, publishes per-worker statistics and enqueues periodic jobs (`CronJob`, one
pending run per job across every instance). syncd adds through SAQ's hooks what its policy
needs: the retry delay of each attempt (capped exponential, no jitter: SAQ's own backoff
always adds jitter), a clear error for an unknown function, and metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Self

from saq import CronJob, Status, Worker
from saq.types import Context

from syncd import metrics
from syncd.jobs.backend import RunnerOptions, error_line, jsonable
from syncd.jobs.policy import QUEUES, JobRegistry, JobSpec

if TYPE_CHECKING:
    from syncd.jobs.redis_queue import SaqBackend

log = logging.getLogger(__name__)

#: seconds between a worker's statistics updates (`/api/queue-stats` is this fresh)
WORKER_INFO_EVERY = 5

_OUTCOMES = {
    Status.COMPLETE: "complete",
    Status.FAILED: "failed",
    Status.QUEUED: "retried",
    Status.ABORTED: "aborted",
}

# Supported periods of a periodic job, as cron expressions (croniter: seconds last). A cron
# schedule is what SAQ offers; these are the periods that divide a minute, an hour or a
# day, so runs fall on the same wall-clock multiples as in the embedded runner.
_PERIODS: list[tuple[int, str]] = sorted(
    [
        *((s, f"* * * * * */{s}") for s in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)),
        *((60 * m, f"*/{m} * * * * 0") for m in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)),
        *((3600 * h, f"0 */{h} * * * 0") for h in (1, 2, 3, 4, 6, 8, 12)),
        (86400, "0 0 * * * 0"),
    ]
)


def whole_seconds(timeout: float) -> int:
    """SAQ counts job timeouts in whole seconds (0 would mean none): round up."""
    return max(1, math.ceil(timeout))


def cron_every(interval: float) -> tuple[str, int]:
    """The cron expression of the shortest supported period of at least `interval` seconds
    (a day at most), and that period."""
    seconds = max(1, math.ceil(interval))
    for period, expression in _PERIODS:
        if period >= seconds:
            return expression, period
    period, expression = _PERIODS[-1]
    return expression, period


class QueueWorker(Worker):
    """SAQ's worker, embedded in a process that owns its signals, with upkeep loops that
    stop as soon as the worker does.

    SAQ's own upkeep sleeps its full period (a minute for the sweep) before it sees the
    stop, so `stop()` always waited out the whole grace period; these loops wake on the
    stop, and count their failures in syncd's metrics.
    """

    #: uvicorn (`syncd serve`) or `run_worker_process` (`syncd worker`) handle SIGTERM/SIGINT
    SIGNALS: list[Any] = []

    async def upkeep(self) -> list[asyncio.Task[None]]:
        timers = self.timers
        steps: list[tuple[str, float, Callable[[], Awaitable[Any]]]] = [
            ("abort", timers["abort"], lambda: self.abort(timers["abort"])),
            ("schedule", timers["schedule"], lambda: self.schedule(timers["schedule"])),
            ("sweep", timers["sweep"], lambda: self.queue.sweep(timers["sweep"])),
            (
                "worker_info",
                timers["worker_info"],
                lambda: self.worker_info(timers["worker_info"] + 1),
            ),
        ]
        loop = asyncio.get_running_loop()
        return [
            loop.create_task(_every(self, what, seconds, step), name=f"jobs-{what}")
            for what, seconds, step in steps
        ]


async def _every(
    worker: Worker,
    what: str,
    seconds: float,
    step: Callable[[], Awaitable[Any]],
) -> None:
    # The sweep waits one period before its first pass: SAQ's sweep takes a job that is in
    # the active list but not yet marked active (a worker took it a moment ago) for the job
    # of a dead worker, and at start-up that is the likeliest moment for it.
    if what == "sweep":
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(worker.event.wait(), seconds)
    while not worker.event.is_set():
        try:
            await step()
        except Exception as exc:
            # one line: while Redis is down this repeats every period
            log.warning("job queue %s: %s failed: %s", worker.queue.name, what, error_line(exc))
            metrics.ERRORS.labels("jobs").inc()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(worker.event.wait(), seconds)


def _task(spec: JobSpec, name: str) -> Callable[..., Awaitable[Any]]:
    async def run(ctx: Context, **kwargs: Any) -> Any:
        return jsonable(await spec.func(**kwargs))

    run.__qualname__ = name  # SAQ names cron jobs (and logs jobs) by it
    return run


class SaqRunner:
    """`Runner` over a `SaqBackend`: SAQ workers for the three queues; an async context
    manager."""

    def __init__(self, backend: SaqBackend, registry: JobRegistry, options: RunnerOptions) -> None:
        self._backend = backend
        self._registry = registry
        self._options = options
        keys = backend.keys
        #: SAQ function name -> spec (a periodic job runs under a name of its own)
        self._specs: dict[str, JobSpec] = {spec.name: spec for spec in registry.specs()}
        self._cron: dict[str, list[CronJob[Any]]] = {name: [] for name in QUEUES}
        #: (queue, SAQ job key) of each periodic job, for `drain`
        self._periodic: list[tuple[str, str]] = []
        for periodic in registry.periodic:
            spec = registry.get(periodic.name)
            if spec is None:
                log.error("periodic job %r is not registered; not scheduling it", periodic.name)
                continue
            expression, period = cron_every(periodic.interval)
            if period != periodic.interval:
                log.warning(
                    "periodic job %s runs every %ss, not %ss: the nearest period that divides "
                    "a minute, an hour or a day",
                    periodic.name,
                    period,
                    periodic.interval,
                )
            name = keys.periodic(spec.name)
            self._specs[name] = spec
            self._cron[spec.queue].append(
                CronJob(
                    _task(spec, name),
                    cron=expression,
                    unique=True,
                    timeout=whole_seconds(spec.timeout),
                    retries=spec.retry.attempts,
                    ttl=backend.ttl,
                    kwargs=dict(periodic.kwargs) or None,
                )
            )
            # SAQ's key of a unique cron job: "cron:<function name>"
            self._periodic.append((spec.queue, f"cron:{name}"))
        self._workers: list[QueueWorker] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._busy = 0
        self._started_at: dict[str, float] = {}

    @property
    def in_flight(self) -> int:
        return self._busy

    def _worker(self, queue: str, started: asyncio.Event) -> QueueWorker:
        options = self._options

        async def startup(ctx: Context) -> None:
            started.set()

        async def before(ctx: Context) -> None:
            self._busy += 1
            job = ctx["job"]
            self._started_at[job.key] = time.monotonic()
            spec = self._specs.get(job.function)
            if spec is None:
                name = self._backend.keys.job_name(job.function)
                raise LookupError(f"no job function {name!r} in this process")
            # SAQ waits `retry_delay` after a failed attempt; syncd's policy grows it per
            # attempt, without jitter, up to its cap
            job.retry_delay = spec.retry.delay(job.attempts)

        async def after(ctx: Context) -> None:
            self._busy -= 1
            job = ctx["job"]
            outcome = _OUTCOMES.get(job.status, job.status.value)
            metrics.JOBS.labels(queue, outcome).inc()
            started_at = self._started_at.pop(job.key, None)
            if started_at is not None:
                metrics.JOB_SECONDS.labels(queue).observe(time.monotonic() - started_at)

        functions = [(name, _task(spec, name)) for name, spec in self._specs.items()]
        return QueueWorker(
            self._backend.queues[queue],
            functions,
            concurrency=options.concurrency,
            cron_jobs=self._cron[queue],
            startup=startup,
            before_process=before,
            after_process=after,
            timers={
                "schedule": 1,
                "worker_info": WORKER_INFO_EVERY,
                "sweep": max(1, round(options.sweep_interval)),
                "abort": 1,
            },
            # an idle worker blocks this long in BLMOVE (an enqueue wakes it at once); under
            # redis-py's 5 s socket timeout, and it bounds how long stopping takes
            dequeue_timeout=min(max(options.poll_interval, 0.01), 2.0),
            shutdown_grace_period_s=options.grace,  # type: ignore[arg-type]
        )

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        started = {name: asyncio.Event() for name in QUEUES}
        self._workers = [self._worker(name, started[name]) for name in QUEUES]
        self._tasks = [
            loop.create_task(worker.start(), name=f"jobs-{name}")
            for name, worker in zip(QUEUES, self._workers, strict=True)
        ]
        # stop() before start() has run would be undone by start(): wait until it has
        async with asyncio.timeout(10):
            for event in started.values():
                await event.wait()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """SAQ's stop: no new jobs; running ones get the grace period, then are cancelled
        and put back in their queue."""
        await asyncio.gather(*(worker.stop() for worker in self._workers))
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=5.0)
            for task in late:
                log.warning("job worker %s did not stop; cancelling it", task.get_name())
                task.cancel()
        self._tasks = []

    async def drain(self, within: float = 30.0) -> None:
        async with asyncio.timeout(within):
            # jobs run by other instances finish without telling this one: poll Redis
            while self._busy or await self._backend.pending(self._periodic):  # noqa: ASYNC110
                await asyncio.sleep(max(self._options.poll_interval, 0.02))
            # publish this worker's counts now rather than at its next update
            for worker in self._workers:
                await worker.worker_info(WORKER_INFO_EVERY + 1)
