"""One contract for both job backends: retries, priorities, status and statistics."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from syncd.jobs.backend import JobBackend, JobStatus
from syncd.jobs.policy import JobSpec, RetryPolicy
from syncd.jobs.worker import JobRegistry, Jobs, Worker

FAST = RetryPolicy(attempts=3, base_delay=0.2, max_delay=5.0)


def jobs_with(backend: JobBackend, *specs: JobSpec) -> Jobs:
    registry = JobRegistry()
    for spec in specs:
        registry.add(spec)
    return Jobs(backend, registry, mode="test")


def worker(jobs: Jobs, concurrency: int = 2) -> Worker:
    return Worker(jobs, concurrency=concurrency, poll_interval=0.02)


async def test_a_job_that_fails_twice_is_retried_with_growing_delays(
    backend: JobBackend,
) -> None:
    starts: list[float] = []

    async def flaky(word: str) -> str:
        starts.append(time.monotonic())
        if len(starts) < 3:
            raise ConnectionError(f"outage {len(starts)}")
        return word.upper()

    jobs = jobs_with(backend, JobSpec("flaky", flaky, retry=FAST))
    job_id = await jobs.enqueue("flaky", word="hi")
    assert job_id.startswith("default.")
    async with worker(jobs) as running:
        await running.drain(within=20)
    first_delay, second_delay = starts[1] - starts[0], starts[2] - starts[1]
    assert first_delay >= 0.2 * 0.95
    assert second_delay >= 0.4 * 0.95
    assert second_delay > first_delay
    info = await jobs.info(job_id)
    assert info is not None
    assert (info.status, info.attempts, info.max_attempts) == (JobStatus.COMPLETE, 3, 3)
    assert info.result == "HI"
    stats = (await jobs.stats())["default"]
    assert (stats.complete, stats.retried, stats.failed) == (1, 2, 0)


async def test_a_job_that_always_fails_ends_failed_after_its_retries(
    backend: JobBackend,
) -> None:
    calls = 0

    async def broken() -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("always")

    policy = RetryPolicy(attempts=3, base_delay=0.05, max_delay=0.1)
    jobs = jobs_with(backend, JobSpec("broken", broken, queue="bulk", retry=policy))
    job_id = await jobs.enqueue("broken")
    async with worker(jobs) as running:
        await running.drain(within=20)
    assert calls == 3
    info = await jobs.info(job_id)
    assert info is not None and info.status is JobStatus.FAILED
    assert info.attempts == 3 and info.error == "RuntimeError: always"
    stats = (await jobs.stats())["bulk"]
    assert (stats.failed, stats.retried, stats.complete, stats.queued) == (1, 2, 0, 0)


async def test_a_critical_job_is_taken_before_queued_bulk_ones(backend: JobBackend) -> None:
    order: list[str] = []

    async def record(label: str) -> None:
        order.append(label)

    jobs = jobs_with(
        backend,
        JobSpec("bulk_work", record, queue="bulk"),
        JobSpec("normal_work", record, queue="default"),
        JobSpec("urgent_work", record, queue="critical"),
    )
    for i in range(3):
        await jobs.enqueue("bulk_work", label=f"bulk{i}")
    await jobs.enqueue("normal_work", label="default")
    await jobs.enqueue("urgent_work", label="critical")
    stats = await jobs.stats()
    assert (stats["bulk"].queued, stats["critical"].queued) == (3, 1)
    async with worker(jobs, concurrency=1) as running:
        await running.drain(within=10)
    assert order == ["critical", "default", "bulk0", "bulk1", "bulk2"]


async def test_status_moves_from_queued_to_complete(backend: JobBackend) -> None:
    gate = asyncio.Event()
    entered = asyncio.Event()

    async def slow() -> dict[str, Any]:
        entered.set()
        await gate.wait()
        return {"ok": True}

    jobs = jobs_with(backend, JobSpec("slow", slow, queue="critical"))
    job_id = await jobs.enqueue("slow")
    queued = await jobs.info(job_id)
    assert queued is not None and queued.status is JobStatus.QUEUED and queued.attempts == 0
    async with worker(jobs) as running:
        await asyncio.wait_for(entered.wait(), 5)
        active = await jobs.info(job_id)
        assert active is not None and active.status is JobStatus.ACTIVE
        assert (await jobs.stats())["critical"].active == 1
        gate.set()
        await running.drain(within=5)
    done = await jobs.info(job_id)
    assert done is not None and done.status is JobStatus.COMPLETE
    assert done.result == {"ok": True} and done.finished_at is not None
    assert await jobs.info("critical.unknown") is None


async def test_a_pending_job_id_is_not_enqueued_twice(backend: JobBackend) -> None:
    runs = 0

    async def once() -> None:
        nonlocal runs
        runs += 1

    jobs = jobs_with(backend, JobSpec("once", once))
    await jobs.enqueue("once", job_id="default.same")
    await jobs.enqueue("once", job_id="default.same")
    async with worker(jobs) as running:
        await running.drain(within=5)
    assert runs == 1


async def test_a_job_over_its_timeout_fails(backend: JobBackend) -> None:
    async def hangs() -> None:
        await asyncio.Event().wait()

    spec = JobSpec("hangs", hangs, retry=RetryPolicy(attempts=1), timeout=0.2)
    jobs = jobs_with(backend, spec)
    job_id = await jobs.enqueue("hangs")
    async with worker(jobs) as running:
        await running.drain(within=5)
    info = await jobs.info(job_id)
    assert info is not None and info.status is JobStatus.FAILED
    assert info.error is not None and info.error.startswith("TimeoutError")


async def test_an_unknown_function_fails_instead_of_looping(backend: JobBackend) -> None:
    async def noop() -> None:
        pass

    producer = jobs_with(backend, JobSpec("elsewhere", noop, retry=RetryPolicy(attempts=1)))
    job_id = await producer.enqueue("elsewhere")
    consumer = jobs_with(backend)  # a worker that does not know the function
    async with worker(consumer) as running:
        await running.drain(within=5)
    info = await producer.info(job_id)
    assert info is not None and info.status is JobStatus.FAILED
    assert "no job function" in (info.error or "")


async def test_periodic_jobs_run_on_their_schedule(backend: JobBackend) -> None:
    ran = asyncio.Event()
    runs = 0

    async def tick() -> None:
        nonlocal runs
        runs += 1
        if runs >= 2:
            ran.set()

    registry = JobRegistry()
    registry.add(JobSpec("tick", tick, queue="bulk"))
    registry.every("tick", 0.2)
    jobs = Jobs(backend, registry, mode="test")
    async with worker(jobs):
        await asyncio.wait_for(ran.wait(), 5)
    assert runs >= 2


async def test_unknown_names_and_bad_specs_are_refused(backend: JobBackend) -> None:
    jobs = jobs_with(backend)
    with pytest.raises(KeyError):
        await jobs.enqueue("nothing")
    with pytest.raises(ValueError):
        JobSpec("x", test_unknown_names_and_bad_specs_are_refused, queue="urgent")  # type: ignore[arg-type]
    assert RetryPolicy(attempts=9, base_delay=1, max_delay=10).delay(8) == 10
