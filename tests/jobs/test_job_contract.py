"""One contract for both job backends: retries, per-queue workers, status, statistics,
periodic jobs, shutdown, and the admin's list, retry and cancel."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from syncd.jobs.backend import JobBackend, JobConflict, JobInfo, JobQuery, JobStatus
from syncd.jobs.policy import JobSpec, RetryPolicy
from syncd.jobs.worker import JobRegistry, Jobs, Worker
from tests.support.polling import eventually


def jobs_with(backend: JobBackend, *specs: JobSpec) -> Jobs:
    registry = JobRegistry()
    for spec in specs:
        registry.add(spec)
    return Jobs(backend, registry, mode="test")


def worker(jobs: Jobs, concurrency: int = 2, grace: float = 5.0) -> Worker:
    return Worker(jobs, concurrency=concurrency, poll_interval=0.02, grace=grace)


async def test_a_job_that_fails_twice_is_retried_after_the_policys_delays(
    backend: JobBackend,
) -> None:
    policy = RetryPolicy(attempts=3, base_delay=1.0, max_delay=5.0)
    starts: list[float] = []
    failures: list[float] = []

    async def flaky(word: str) -> str:
        starts.append(time.time())
        if len(starts) < 3:
            failures.append(time.time())
            raise ConnectionError(f"outage {len(starts)}")
        return word.upper()

    jobs = jobs_with(backend, JobSpec("flaky", flaky, retry=policy))
    job_id = await jobs.enqueue("flaky", word="hi")
    assert job_id.startswith("default.")
    waiting: dict[int, JobInfo] = {}

    async def watch() -> None:
        while len(waiting) < 2:
            info = await jobs.info(job_id)
            if info is not None and info.status is JobStatus.SCHEDULED:
                waiting.setdefault(info.attempts, info)
            await asyncio.sleep(0.02)

    async with worker(jobs) as running:
        watcher = asyncio.create_task(watch())
        await running.drain(within=20)
        await asyncio.wait_for(watcher, 1)
        stats = (await jobs.stats())["default"]
    for attempt in (1, 2):
        delay = policy.delay(attempt)  # 1 s, then 2 s: no jitter
        info = waiting[attempt]
        assert info.error == f"ConnectionError: outage {attempt}"
        assert info.next_attempt_at is not None
        assert delay - 0.01 <= info.next_attempt_at - failures[attempt - 1] < delay + 1
        assert starts[attempt] >= failures[attempt - 1] + delay - 0.01
    info = await jobs.info(job_id)
    assert info is not None
    assert (info.status, info.attempts, info.max_attempts) == (JobStatus.COMPLETE, 3, 3)
    assert info.result == "HI" and info.error is None
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
        stats = (await jobs.stats())["bulk"]
    assert calls == 3
    info = await jobs.info(job_id)
    assert info is not None and info.status is JobStatus.FAILED
    assert info.attempts == 3 and info.error == "RuntimeError: always"
    assert (stats.failed, stats.retried, stats.complete, stats.queued) == (1, 2, 0, 0)


async def test_critical_and_default_jobs_run_while_bulk_work_fills_its_workers(
    backend: JobBackend,
) -> None:
    """Each queue has workers of its own: a backlog of bulk jobs, every bulk worker busy,
    delays neither a critical nor a default job. Within one queue, jobs go in order."""
    order: list[str] = []
    bulk_gate = asyncio.Event()

    async def slow_bulk(label: str) -> None:
        order.append(label)
        await bulk_gate.wait()

    async def record(label: str) -> None:
        order.append(label)

    jobs = jobs_with(
        backend,
        JobSpec("bulk_work", slow_bulk, queue="bulk"),
        JobSpec("normal_work", record, queue="default"),
        JobSpec("urgent_work", record, queue="critical"),
    )
    for i in range(3):
        await jobs.enqueue("bulk_work", label=f"bulk{i}")
    stats = await jobs.stats()
    assert (stats["bulk"].queued, stats["critical"].queued) == (3, 0)
    async with worker(jobs, concurrency=1) as running:

        async def bulk_worker_busy() -> bool:
            bulk = (await jobs.stats())["bulk"]
            return (bulk.active, bulk.queued) == (1, 2)

        await eventually(bulk_worker_busy, timeout=10, what="the bulk worker taken")
        urgent = await jobs.enqueue("urgent_work", label="critical")
        normal = await jobs.enqueue("normal_work", label="default")

        async def both_done() -> bool:
            infos = [await jobs.info(job_id) for job_id in (urgent, normal)]
            return all(i is not None and i.status is JobStatus.COMPLETE for i in infos)

        await eventually(both_done, timeout=10, what="critical and default jobs done")
        assert order[0] == "bulk0" and set(order[1:]) == {"critical", "default"}
        bulk = (await jobs.stats())["bulk"]
        assert (bulk.active, bulk.queued, bulk.complete) == (1, 2, 0)
        bulk_gate.set()
        await running.drain(within=10)
    assert [label for label in order if label.startswith("bulk")] == ["bulk0", "bulk1", "bulk2"]


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
    assert queued.function == "slow" and queued.queue == "critical"
    async with worker(jobs) as running:
        await asyncio.wait_for(entered.wait(), 5)
        active = await jobs.info(job_id)
        assert active is not None and active.status is JobStatus.ACTIVE
        assert active.attempts == 1 and active.started_at is not None
        assert (await jobs.stats())["critical"].active == 1
        assert running.in_flight == 1
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
    assert (await jobs.stats())["default"].queued == 1
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
    assert info.error == "LookupError: no job function 'elsewhere' in this process"


async def test_periodic_jobs_run_on_their_schedule_and_do_not_hold_up_drain(
    backend: JobBackend,
) -> None:
    ran = asyncio.Event()
    runs: list[float] = []

    async def tick() -> None:
        runs.append(time.time())
        if len(runs) >= 2:
            ran.set()

    registry = JobRegistry()
    registry.add(JobSpec("tick", tick, queue="bulk"))
    registry.every("tick", 1)
    jobs = Jobs(backend, registry, mode="test")
    async with worker(jobs) as running:
        await asyncio.wait_for(ran.wait(), 10)
        # the next run waiting for its time is not work left to drain
        await running.drain(within=5)
        listed = await jobs.list_jobs(JobQuery(limit=100, queue="bulk"))
    assert len(runs) >= 2
    # the periodic job is listed under an id that `info` knows
    periodic = [info for info in listed if info.id.startswith("bulk.every-tick")]
    assert periodic and all(info.function == "tick" for info in periodic)
    for info in periodic:
        again = await jobs.info(info.id)
        assert again is not None and again.function == "tick"
    # one run per occurrence: each in a second of its own
    assert len({int(at) for at in runs}) == len(runs)


async def test_a_running_job_finishes_when_the_worker_stops(backend: JobBackend) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    async def steady() -> str:
        entered.set()
        await release.wait()
        return "done"

    jobs = jobs_with(backend, JobSpec("steady", steady))
    job_id = await jobs.enqueue("steady")
    running = worker(jobs, grace=10)
    await running.__aenter__()
    await asyncio.wait_for(entered.wait(), 5)
    stopping = asyncio.create_task(running.__aexit__(None, None, None))
    await asyncio.sleep(0)  # the stop begins while the job runs; had it cancelled the job,
    release.set()  # the job would be back in its queue with the error "cancelled"
    await asyncio.wait_for(stopping, 10)
    info = await jobs.info(job_id)
    assert info is not None and (info.status, info.result) == (JobStatus.COMPLETE, "done")
    assert info.attempts == 1


async def test_a_job_still_running_after_the_grace_period_goes_back_to_its_queue(
    backend: JobBackend,
) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    async def stuck() -> str:
        entered.set()
        await release.wait()
        return "finally"

    spec = JobSpec("stuck", stuck, retry=RetryPolicy(attempts=3, base_delay=0.1, max_delay=0.1))
    jobs = jobs_with(backend, spec)
    job_id = await jobs.enqueue("stuck")
    async with worker(jobs, grace=0.2):
        await asyncio.wait_for(entered.wait(), 5)
    interrupted = await jobs.info(job_id)
    assert interrupted is not None and interrupted.attempts == 1
    assert interrupted.status in {JobStatus.QUEUED, JobStatus.SCHEDULED}
    assert interrupted.error == "cancelled"
    release.set()
    async with worker(jobs) as running:
        await running.drain(within=10)
    done = await jobs.info(job_id)
    assert done is not None and (done.status, done.attempts) == (JobStatus.COMPLETE, 2)
    assert done.result == "finally"


async def test_unknown_names_and_bad_specs_are_refused(backend: JobBackend) -> None:
    jobs = jobs_with(backend)
    with pytest.raises(KeyError):
        await jobs.enqueue("nothing")

    async def noop() -> None:
        pass

    with pytest.raises(ValueError, match="periodic"):
        await jobs_with(backend, JobSpec("noop", noop)).enqueue("noop", job_id="default.every-x")
    with pytest.raises(ValueError):
        JobSpec("x", test_unknown_names_and_bad_specs_are_refused, queue="urgent")  # type: ignore[arg-type]
    assert RetryPolicy(attempts=9, base_delay=1, max_delay=10).delay(8) == 10


# -- the admin's list, retry and cancel ---------------------------------------------------


async def test_jobs_are_listed_newest_first_a_page_at_a_time_by_status_and_queue(
    backend: JobBackend,
) -> None:
    async def fine() -> None:
        pass

    async def broken() -> None:
        raise RuntimeError("no")

    jobs = jobs_with(
        backend,
        JobSpec("fine", fine),
        JobSpec("urgent", fine, queue="critical"),
        JobSpec("broken", broken, queue="bulk", retry=RetryPolicy(attempts=1)),
    )
    normal = [await jobs.enqueue("fine") for _ in range(5)]
    urgent = [await jobs.enqueue("urgent") for _ in range(2)]
    everything = await jobs.list_jobs(JobQuery(limit=100))
    assert {info.id for info in everything} == {*normal, *urgent}
    keys = [(info.enqueued_at, info.id) for info in everything]
    assert keys == sorted(keys, reverse=True)
    assert all(info.status is JobStatus.QUEUED for info in everything)

    pages: list[list[str]] = []
    after = None
    while True:
        page = await jobs.list_jobs(JobQuery(limit=3, after=after))
        if not page:
            break
        pages.append([info.id for info in page])
        after = (page[-1].enqueued_at, page[-1].id)
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [job_id for page in pages for job_id in page] == [info.id for info in everything]

    critical = await jobs.list_jobs(JobQuery(limit=100, queue="critical"))
    assert sorted(info.id for info in critical) == sorted(urgent)

    failing = await jobs.enqueue("broken")
    async with worker(jobs) as running:
        await running.drain(within=10)
    failed = await jobs.list_jobs(JobQuery(limit=100, status=JobStatus.FAILED))
    assert [(info.id, info.error) for info in failed] == [(failing, "RuntimeError: no")]
    complete = await jobs.list_jobs(JobQuery(limit=100, status=JobStatus.COMPLETE))
    assert {info.id for info in complete} == {*normal, *urgent}
    assert await jobs.list_jobs(JobQuery(limit=100, status=JobStatus.QUEUED)) == []


async def test_a_failed_job_is_retried_with_its_arguments_and_fresh_attempts(
    backend: JobBackend,
) -> None:
    healed = False
    seen: list[str] = []

    async def fragile(word: str) -> str:
        seen.append(word)
        if not healed:
            raise ConnectionError("down")
        return word.upper()

    spec = JobSpec("fragile", fragile, retry=RetryPolicy(attempts=2, base_delay=0.05))
    jobs = jobs_with(backend, spec)
    job_id = await jobs.enqueue("fragile", word="again")
    async with worker(jobs) as running:
        await running.drain(within=10)
        failed = await jobs.info(job_id)
        assert failed is not None and (failed.status, failed.attempts) == (JobStatus.FAILED, 2)

        healed = True
        queued = await jobs.retry(job_id)
        assert queued is not None and queued.status in {JobStatus.QUEUED, JobStatus.ACTIVE}
        await running.drain(within=10)
    done = await jobs.info(job_id)
    assert done is not None and (done.status, done.attempts, done.result) == (
        JobStatus.COMPLETE,
        1,
        "AGAIN",
    )
    assert seen == ["again"] * 3
    with pytest.raises(JobConflict) as conflict:
        await jobs.retry(job_id)
    assert conflict.value.status is JobStatus.COMPLETE
    assert await jobs.retry("default.unknown") is None
    assert await jobs.cancel("default.unknown", "no") is None


async def test_a_queued_job_that_is_cancelled_never_runs_until_it_is_retried(
    backend: JobBackend,
) -> None:
    runs = 0

    async def count() -> int:
        nonlocal runs
        runs += 1
        return runs

    jobs = jobs_with(backend, JobSpec("count", count, queue="critical"))
    job_id = await jobs.enqueue("count")
    aborted = await jobs.cancel(job_id, "aborted by admin")
    assert aborted is not None and aborted.status is JobStatus.ABORTED
    assert aborted.error == "aborted by admin" and aborted.finished_at is not None
    with pytest.raises(JobConflict):
        await jobs.cancel(job_id, "twice")
    async with worker(jobs) as running:
        await running.drain(within=5)
        assert runs == 0
        assert (await jobs.stats())["critical"].queued == 0
        listed = await jobs.list_jobs(JobQuery(limit=10, status=JobStatus.ABORTED))
        assert [info.id for info in listed] == [job_id]

        await jobs.retry(job_id)
        await running.drain(within=5)
    done = await jobs.info(job_id)
    assert done is not None and (done.status, done.result, runs) == (JobStatus.COMPLETE, 1, 1)


async def test_a_running_job_that_is_cancelled_is_stopped_where_it_runs(
    backend: JobBackend,
) -> None:
    entered = asyncio.Event()
    stopped = asyncio.Event()

    async def endless() -> str:
        entered.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()
        return "never"

    spec = JobSpec("endless", endless, retry=RetryPolicy(attempts=3), timeout=60)
    jobs = jobs_with(backend, spec)
    job_id = await jobs.enqueue("endless")
    async with worker(jobs) as running:
        await asyncio.wait_for(entered.wait(), 5)
        aborted = await jobs.cancel(job_id, "aborted by admin")
        assert aborted is not None and aborted.status is JobStatus.ABORTED
        await asyncio.wait_for(stopped.wait(), 10)
        await running.drain(within=10)
    info = await jobs.info(job_id)
    assert info is not None and (info.status, info.attempts) == (JobStatus.ABORTED, 1)
    assert info.error == "aborted by admin" and info.result is None


async def test_a_job_waiting_for_its_retry_is_cancelled_and_not_run_again(
    backend: JobBackend,
) -> None:
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("down")

    slow_retry = RetryPolicy(attempts=3, base_delay=60, max_delay=60)
    jobs = jobs_with(backend, JobSpec("flaky", flaky, retry=slow_retry))
    job_id = await jobs.enqueue("flaky")
    async with worker(jobs) as running:

        async def waiting() -> bool:
            info = await jobs.info(job_id)
            return info is not None and info.status is JobStatus.SCHEDULED

        await eventually(waiting, timeout=10, what="the job waiting for its retry")
        aborted = await jobs.cancel(job_id, "aborted by admin")
        assert aborted is not None and aborted.status is JobStatus.ABORTED
        await running.drain(within=5)  # nothing left waiting
    info = await jobs.info(job_id)
    assert info is not None and info.status is JobStatus.ABORTED and calls == 1
