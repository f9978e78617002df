"""The scaled job backend: SAQ queues on Redis, one per priority class.

SAQ stores the jobs, their state and retry schedule; syncd's worker takes them in strict
priority order (SAQ's own worker serves one queue). All keys share the hash tag
`{<prefix>:jobs}` (`syncd.bus.keys`), so a Redis Cluster keeps them (and SAQ's multi-key
scripts) in one slot.
Finished jobs keep their status for `ttl` seconds; statistics are a bounded hash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

from redis.asyncio import Redis
from saq.job import Job, Status
from saq.queue.redis import RedisQueue

from syncd import metrics
from syncd.bus.keys import Keys, key_part
from syncd.jobs.backend import Claim, JobInfo, JobStatus, NewJob, QueueStats
from syncd.jobs.policy import QUEUES, queue_of

log = logging.getLogger(__name__)

# Moves due scheduled jobs (score > 0 and <= now) to the queued list. SAQ's own version
# holds a one-second lock, which would round every retry delay up to a second; the script
# is atomic, so concurrent callers cannot move a job twice.
_SCHEDULE = """
local jobs = redis.call('ZRANGEBYSCORE', KEYS[1], 1, ARGV[1])
for _, v in ipairs(jobs) do
    redis.call('ZADD', KEYS[1], 0, v)
    redis.call('RPUSH', KEYS[2], v)
end
return #jobs
"""

_STATUS = {
    Status.NEW: JobStatus.QUEUED,
    Status.QUEUED: JobStatus.QUEUED,
    Status.ACTIVE: JobStatus.ACTIVE,
    Status.ABORTING: JobStatus.ABORTED,
    Status.ABORTED: JobStatus.ABORTED,
    Status.FAILED: JobStatus.FAILED,
    Status.COMPLETE: JobStatus.COMPLETE,
}


class _PriorityQueue(RedisQueue):
    """A SAQ queue that can be polled without blocking (for strict priority across queues)."""

    async def take(self) -> Job | None:
        job_id = await self.redis.lmove(self._queued, self._active, "LEFT", "RIGHT")
        return None if job_id is None else await self._get_job_by_id(job_id)

    async def promote_due(self) -> int:
        script = getattr(self, "_promote_script", None)
        if script is None:
            script = self._promote_script = self.redis.register_script(_SCHEDULE)
        return int(await script(keys=[self._incomplete, self._queued], args=[time.time()]))

    async def close(self) -> None:
        try:
            await self._pubsub.close()
        except Exception:
            log.exception("closing the job queue's pub/sub failed")
            metrics.ERRORS.labels("jobs").inc()


class SaqBackend:
    """`JobBackend` over SAQ `RedisQueue`s (one Redis client of its own, bytes replies)."""

    def __init__(
        self,
        redis_url: str,
        *,
        prefix: str = "syncd",
        ttl: int = 3600,
        promote_every: float = 0.05,
    ) -> None:
        self._redis: Redis = Redis.from_url(redis_url)
        self._tag = Keys(prefix).jobs
        self._queues = {
            name: _PriorityQueue(self._redis, name=f"{self._tag}:{name}") for name in QUEUES
        }
        self._stats_key = f"{self._tag}:stats"
        self._ttl = ttl
        self._promote_every = promote_every
        self._promoted_at = 0.0
        self._worker_id = uuid.uuid4().hex[:12]
        #: set by enqueues from this process, so its own worker need not wait for a poll
        self._wake = asyncio.Event()

    def _key(self, job_id: str) -> str:
        return f"{self._tag}:{key_part(job_id)}"

    async def enqueue(self, job: NewJob) -> bool:
        queue = self._queues[job.queue]
        saq_job = Job(
            function=job.function,
            kwargs=dict(job.kwargs),
            key=self._key(job.id),
            timeout=max(1, int(job.timeout + 0.999)),
            retries=job.max_attempts,
            ttl=self._ttl,
            meta={"id": job.id},
        )
        queued = await queue.enqueue(saq_job) is not None
        self._wake.set()
        return queued

    async def _promote(self) -> None:
        now = time.monotonic()
        if now - self._promoted_at < self._promote_every:
            return
        self._promoted_at = now
        for queue in self._queues.values():
            await queue.promote_due()

    async def claim(self) -> Claim | None:
        await self._promote()
        for name in QUEUES:
            job = await self._queues[name].take()
            if job is None:
                continue
            job.started = int(time.time() * 1000)
            job.attempts += 1
            job.worker_id = self._worker_id
            await job.update(status=Status.ACTIVE)
            return Claim(
                id=job.meta.get("id") or job.key,
                function=job.function,
                kwargs=dict(job.kwargs or {}),
                queue=name,
                attempt=job.attempts,
                max_attempts=job.retries,
                handle=job,
            )
        return None

    async def _count(self, queue: str, outcome: str) -> None:
        await self._redis.hincrby(self._stats_key, f"{queue}:{outcome}", 1)

    async def complete(self, claim: Claim, result: Any) -> None:
        await claim.handle.finish(Status.COMPLETE, result=result)
        await self._count(claim.queue, "complete")

    async def fail(self, claim: Claim, error: str) -> None:
        await claim.handle.finish(Status.FAILED, error=error)
        await self._count(claim.queue, "failed")

    async def retry(self, claim: Claim, error: str, delay: float) -> None:
        job: Job = claim.handle
        # SAQ reads the delay from the job; syncd's policy decides it (no jitter, capped).
        job.retry_delay = max(delay, 0.001)
        job.retry_backoff = False
        await job.retry(error)
        await self._count(claim.queue, "retried")

    async def info(self, job_id: str) -> JobInfo | None:
        job = await self._queues[queue_of(job_id)].job(self._key(job_id))
        if job is None:
            return None
        status = _STATUS[job.status]
        next_at = None
        if status is JobStatus.QUEUED and job.attempts and job.retry_delay:
            next_at = job.touched / 1000 + job.retry_delay
            if next_at > time.time():
                status = JobStatus.SCHEDULED
        return JobInfo(
            id=job_id,
            function=job.function,
            queue=queue_of(job_id),
            status=status,
            attempts=job.attempts,
            max_attempts=job.retries,
            enqueued_at=job.queued / 1000,
            started_at=job.started / 1000 if job.started else None,
            finished_at=job.completed / 1000 if job.completed else None,
            next_attempt_at=next_at if status is JobStatus.SCHEDULED else None,
            error=job.error,
            result=job.result,
        )

    async def stats(self) -> dict[str, QueueStats]:
        counters = {
            (k.decode() if isinstance(k, bytes) else k): int(v)
            for k, v in (await self._redis.hgetall(self._stats_key)).items()
        }
        result = {}
        for name, queue in self._queues.items():
            queued = await queue.count("queued")
            active = await queue.count("active")
            incomplete = await queue.count("incomplete")
            result[name] = QueueStats(
                queued=queued,
                active=active,
                scheduled=max(incomplete - queued - active, 0),
                complete=counters.get(f"{name}:complete", 0),
                failed=counters.get(f"{name}:failed", 0),
                retried=counters.get(f"{name}:retried", 0),
            )
        return result

    async def pending(self) -> int:
        # a job stays in `incomplete` from enqueue (queued, scheduled, active) to its end
        return sum([await queue.count("incomplete") for queue in self._queues.values()])

    async def wait_for_work(self, longest: float) -> None:
        """Jobs enqueued by other instances are seen at the next poll (`longest`)."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), longest)

    async def claim_slot(self, name: str, slot: int, ttl: float) -> bool:
        key = f"{self._tag}:periodic:{name}:{slot}"
        return bool(await self._redis.set(key, self._worker_id, nx=True, px=int(ttl * 1000)))

    async def sweep(self) -> None:
        for queue in self._queues.values():
            swept = await queue.sweep()
            if swept:
                log.warning("recovered %d jobs of a dead worker from %s", len(swept), queue.name)

    async def close(self) -> None:
        for queue in self._queues.values():
            await queue.close()
        await self._redis.aclose()
