"""Background jobs: queues by priority class, retry with capped exponential backoff, job
status and statistics; SAQ on Redis when scaled, in process when embedded.

`policy` (what a job is), `backend` (the queue contract), `memory` / `redis_queue` (the two
backends), `worker` (registry, enqueueing, the worker), `catalog` (syncd's jobs), `mailer`.
"""

from syncd.jobs.backend import JobInfo, JobStatus, QueueStats
from syncd.jobs.policy import QUEUES, JobSpec, Periodic, RetryPolicy
from syncd.jobs.worker import JobRegistry, Jobs, Worker

__all__ = [
    "QUEUES",
    "JobInfo",
    "JobRegistry",
    "JobSpec",
    "JobStatus",
    "Jobs",
    "Periodic",
    "QueueStats",
    "RetryPolicy",
    "Worker",
]
