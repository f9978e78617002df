"""SAQ-specific: instances share the queues and the periodic schedule through Redis, and
every key SAQ writes for syncd carries the jobs hash tag (Redis Cluster: one slot)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from croniter import croniter
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from redis.crc import key_slot
from redis.exceptions import RedisError

from syncd.jobs.policy import JobSpec, RetryPolicy
from syncd.jobs.redis_queue import SaqBackend
from syncd.jobs.saq_runner import cron_every
from syncd.jobs.worker import JobRegistry, Jobs, Worker
from tests.support.polling import eventually
from tests.support.services import ServiceUnavailable, start_redis

MakeBackend = Callable[[], SaqBackend]


async def test_a_job_enqueued_on_one_instance_runs_on_another(
    saq_backend_factory: MakeBackend,
) -> None:
    done = asyncio.Event()
    seen: list[int] = []

    async def work(n: int) -> int:
        seen.append(n)
        done.set()
        return n * 2

    def jobs_on(backend: SaqBackend) -> Jobs:
        registry = JobRegistry()
        registry.add(JobSpec("work", work))
        return Jobs(backend, registry, mode="redis")

    producer, consumer = jobs_on(saq_backend_factory()), jobs_on(saq_backend_factory())
    async with Worker(consumer, poll_interval=0.02) as running:
        job_id = await producer.enqueue("work", n=21)
        await asyncio.wait_for(done.wait(), 5)
        await running.drain(within=5)
        # the consumer's outcome counts reach the producer's statistics through Redis
        assert (await producer.stats())["default"].complete == 1
    info = await producer.info(job_id)
    assert info is not None and info.result == 42 and seen == [21]


async def test_two_instances_run_each_periodic_occurrence_once(
    saq_backend_factory: MakeBackend,
) -> None:
    runs: list[float] = []

    async def tick() -> None:
        runs.append(time.time())

    def jobs_on(backend: SaqBackend) -> Jobs:
        registry = JobRegistry()
        registry.add(JobSpec("tick", tick, queue="bulk"))
        registry.every("tick", 1)
        return Jobs(backend, registry, mode="redis")

    a, b = jobs_on(saq_backend_factory()), jobs_on(saq_backend_factory())
    async with Worker(a, poll_interval=0.02), Worker(b, poll_interval=0.02):

        async def three_runs() -> bool:
            return len(runs) >= 3

        await eventually(three_runs, timeout=15, what="three runs of the periodic job")
    # both instances enqueue the job every second; SAQ keeps one pending run of it, so
    # each occurrence (one per second) runs once
    assert len({int(at) for at in runs}) == len(runs)


async def test_every_key_of_the_job_queues_shares_one_cluster_slot(tmp_path: Path) -> None:
    try:
        server = start_redis(tmp_path, appendonly=False)  # alone on it: every key is ours
    except ServiceUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    backend = SaqBackend(server.url, prefix="slot-test")
    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("once")
        return "ok"

    async def tick() -> None:
        pass

    registry = JobRegistry()
    registry.add(JobSpec("flaky", flaky, retry=RetryPolicy(3, 0.1, 0.1)))
    registry.add(JobSpec("tick", tick, queue="bulk"))
    registry.every("tick", 3600)  # enqueued (for the next hour) at start-up
    jobs = Jobs(backend, registry, mode="redis")
    client = Redis.from_url(server.url)
    try:
        async with Worker(jobs, poll_interval=0.02, sweep_interval=1) as running:
            job_id = await jobs.enqueue("flaky")
            await running.drain(within=10)

            async def swept() -> bool:  # the sweep's lock: a key too
                return bool([key async for key in client.scan_iter(match="*:sweep")])

            await eventually(swept, timeout=10, what="a sweep")
            saq_job = await backend.queues["default"].job(backend.keys.job(job_id))
            assert saq_job is not None
        keys = [key.decode() async for key in client.scan_iter(count=1000)]
        # SAQ's abort marker lives seconds at most; its name comes with the job
        keys.append(saq_job.abort_id)
    finally:
        await client.aclose()
        await backend.close()
        server.close()
    slot = key_slot(backend.keys.tag.encode())
    assert {key: key_slot(key.encode()) for key in keys} == {key: slot for key in keys}
    kinds = {"saq:job:", "saq:abort:", ":incomplete", ":worker_info:", ":stats", ":sweep"}
    assert all(any(kind in key for key in keys) for kind in kinds), keys
    assert any("cron:" in key for key in keys), keys


def _job_errors() -> float:
    return REGISTRY.get_sample_value("syncd_errors_total", {"component": "jobs"}) or 0.0


async def test_a_worker_rides_out_a_redis_outage(tmp_path: Path) -> None:
    try:
        server = start_redis(tmp_path, appendonly=False)  # ours to kill
    except ServiceUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    backend = SaqBackend(server.url, prefix="outage-test")
    done = asyncio.Event()

    async def work() -> str:
        done.set()
        return "after"

    registry = JobRegistry()
    registry.add(JobSpec("work", work))
    jobs = Jobs(backend, registry, mode="redis")
    try:
        async with Worker(jobs, poll_interval=0.05) as running:
            errors_before = _job_errors()
            server.kill()

            async def failures_counted() -> bool:
                return _job_errors() >= errors_before + 3

            await eventually(failures_counted, timeout=10, what="failed dequeues counted")
            server.start()  # same port: the same clients reconnect
            job_id = await eventually(lambda: _enqueue_when_up(jobs), timeout=15, what="Redis back")
            await asyncio.wait_for(done.wait(), 15)
            await running.drain(within=10)
        info = await jobs.info(job_id)
        assert info is not None and info.result == "after"
    finally:
        await backend.close()
        server.close()


async def _enqueue_when_up(jobs: Jobs) -> str | None:
    try:
        return await jobs.enqueue("work")
    except RedisError:
        return None


@pytest.mark.parametrize(
    ("interval", "expression", "period"),
    [
        (0.5, "* * * * * */1", 1),
        (1, "* * * * * */1", 1),
        (7, "* * * * * */10", 10),
        (45, "*/1 * * * * 0", 60),
        (600, "*/10 * * * * 0", 600),
        (2700, "0 */1 * * * 0", 3600),
        (3600, "0 */1 * * * 0", 3600),
        (5 * 3600, "0 */6 * * * 0", 6 * 3600),
        (3 * 86400, "0 0 * * * 0", 86400),
    ],
)
def test_periodic_intervals_become_cron_schedules(
    interval: float, expression: str, period: int
) -> None:
    assert cron_every(interval) == (expression, period)
    # runs fall on multiples of the period, as in the embedded runner
    start = datetime(2025, 3, 7, 13, 27, 41, 500_000, tzinfo=UTC)
    schedule = croniter(expression, start)
    runs = [schedule.get_next() for _ in range(3)]
    assert all(run % period == 0 for run in runs)
    assert [b - a for a, b in itertools.pairwise(runs)] == [period, period]
