"""Background jobs: a queue per priority class with workers of its own, retry with capped
exponential backoff, job status and statistics; SAQ on Redis when scaled (through its public
API), in process when embedded.

`policy` (what a job is, the registry), `backend` (the contract), `memory` /
`memory_runner` (embedded), `redis_queue` / `saq_runner` / `keys` (SAQ), `worker` (`Jobs`
and `Worker`, what the app uses). Generic: syncd's own jobs are `syncd.services.job_catalog`.
"""

from syncd.jobs.backend import JobConflict, JobInfo, JobQuery, JobStatus, QueueStats
from syncd.jobs.policy import QUEUES, JobRegistry, JobSpec, Periodic, RetryPolicy
from syncd.jobs.worker import Jobs, Worker

__all__ = [
    "QUEUES",
    "JobConflict",
    "JobInfo",
    "JobQuery",
    "JobRegistry",
    "JobSpec",
    "JobStatus",
    "Jobs",
    "Periodic",
    "QueueStats",
    "RetryPolicy",
    "Worker",
]
