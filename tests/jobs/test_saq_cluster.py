"""SAQ-specific: instances share queues and the periodic schedule through Redis."""

from __future__ import annotations

import asyncio

from syncd.jobs.policy import JobSpec
from syncd.jobs.worker import JobRegistry, Jobs, Worker


async def test_one_instance_wins_each_periodic_slot(saq_backend_factory) -> None:  # type: ignore[no-untyped-def]
    a, b = saq_backend_factory(), saq_backend_factory()
    try:
        won = [await backend.claim_slot("cleanup", 42, 5.0) for backend in (a, b, a)]
        assert won == [True, False, False]
        assert await b.claim_slot("cleanup", 43, 5.0)
    finally:
        await a.close()
        await b.close()


async def test_a_job_enqueued_on_one_instance_runs_on_another(saq_backend_factory) -> None:  # type: ignore[no-untyped-def]
    producer_backend, consumer_backend = saq_backend_factory(), saq_backend_factory()
    done = asyncio.Event()
    seen: list[int] = []

    async def work(n: int) -> int:
        seen.append(n)
        done.set()
        return n * 2

    def jobs_on(backend) -> Jobs:  # type: ignore[no-untyped-def]
        registry = JobRegistry()
        registry.add(JobSpec("work", work))
        return Jobs(backend, registry, mode="redis")

    producer, consumer = jobs_on(producer_backend), jobs_on(consumer_backend)
    try:
        async with Worker(consumer, poll_interval=0.02) as running:
            job_id = await producer.enqueue("work", n=21)
            await asyncio.wait_for(done.wait(), 5)
            await running.drain(within=5)
        info = await producer.info(job_id)
        assert info is not None and info.result == 42 and seen == [21]
    finally:
        await producer_backend.close()
        await consumer_backend.close()
