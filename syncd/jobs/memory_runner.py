"""The worker of the embedded backend: per queue, up to `concurrency` jobs at once, each
with its timeout; failures retried by the job's policy; periodic jobs at wall-clock
multiples of their interval. The same guarantees as SAQ's workers in scaled mode."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from typing import TYPE_CHECKING, Self

from syncd import metrics
from syncd.jobs.backend import NewJob, RunnerOptions, error_line, jsonable
from syncd.jobs.policy import PERIODIC_ID, QUEUES, JobRegistry, Periodic

if TYPE_CHECKING:
    from syncd.jobs.memory import Claim, MemoryBackend

log = logging.getLogger(__name__)


class MemoryRunner:
    """`Runner` over a `MemoryBackend`; an async context manager."""

    def __init__(
        self, backend: MemoryBackend, registry: JobRegistry, options: RunnerOptions
    ) -> None:
        self._backend = backend
        self._registry = registry
        self._options = options
        self._slots = {name: asyncio.Semaphore(options.concurrency) for name in QUEUES}
        self._running: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._progress = asyncio.Event()
        self._stop = asyncio.Event()

    @property
    def in_flight(self) -> int:
        return len(self._running)

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._loops = [loop.create_task(self._dispatch(q), name=f"jobs-{q}") for q in QUEUES]
        self._loops += [
            loop.create_task(self._schedule(p), name=f"jobs-every-{p.name}")
            for p in self._registry.periodic
        ]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop taking jobs; running ones get `grace` seconds to finish, then are cancelled
        and put back in their queue."""
        self._stop.set()
        grace = self._options.grace
        if self._running:
            _, late = await asyncio.wait(set(self._running), timeout=grace)
            for task in late:
                log.warning("job task %s still running after %.1fs; cancelling it", task, grace)
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=1.0)
        # the loops only wait on asyncio primitives: they stop at once, and cancelling a
        # straggler interrupts no I/O
        _, late_loops = await asyncio.wait(self._loops, timeout=1.0) if self._loops else ((), ())
        for task in late_loops:
            task.cancel()
        self._loops = []

    async def _pause(self, seconds: float) -> None:
        """Sleep, but return at once when the worker stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def drain(self, within: float = 30.0) -> None:
        async with asyncio.timeout(within):
            while self._running or self._backend.pending():
                progress = self._progress
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(progress.wait(), max(self._options.poll_interval, 0.05))

    def _advance(self) -> None:
        progress, self._progress = self._progress, asyncio.Event()
        progress.set()

    async def _dispatch(self, queue: str) -> None:
        slots = self._slots[queue]
        while not self._stop.is_set():
            await slots.acquire()
            if self._stop.is_set():
                slots.release()
                return
            claim = self._backend.claim(queue)
            if claim is None:
                slots.release()
                await self._idle(queue)
                continue
            task = asyncio.get_running_loop().create_task(self._run(claim), name=f"job-{claim.id}")
            self._backend.started(claim, task)
            self._running.add(task)
            task.add_done_callback(functools.partial(self._finished, slots))

    async def _idle(self, queue: str) -> None:
        loop = asyncio.get_running_loop()
        work = loop.create_task(self._backend.wait_for_work(queue, self._options.poll_interval))
        stop = loop.create_task(self._stop.wait())
        _, pending = await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()  # both are plain asyncio waits: safe to cancel

    def _finished(self, slots: asyncio.Semaphore, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        slots.release()
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
            if claim.aborted:  # cancelled through the API: aborted, not to run again
                metrics.JOBS.labels(claim.queue, "aborted").inc()
                raise
            self._backend.reschedule(claim, "cancelled", 0.0)
            metrics.JOBS.labels(claim.queue, "retried").inc()
            raise
        except Exception as exc:
            error = error_line(exc) or type(exc).__name__
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
                self._backend.reschedule(claim, error, delay)
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
                self._backend.fail(claim, error)
                outcome = "failed"
        else:
            self._backend.complete(claim, jsonable(result))
            outcome = "complete"
        metrics.JOBS.labels(claim.queue, outcome).inc()
        metrics.JOB_SECONDS.labels(claim.queue).observe(time.monotonic() - started)

    async def _schedule(self, periodic: Periodic) -> None:
        spec = self._registry.get(periodic.name)
        if spec is None:
            log.error("periodic job %r is not registered; not scheduling it", periodic.name)
            return
        while not self._stop.is_set():
            now = time.time()
            slot = int(now // periodic.interval) + 1
            await self._pause(slot * periodic.interval - now)
            if self._stop.is_set():
                return
            job_id = f"{spec.queue}.{PERIODIC_ID}{periodic.name}-{slot}"
            await self._backend.enqueue(NewJob.of(spec, job_id, dict(periodic.kwargs)))
