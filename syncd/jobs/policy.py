"""What a job is: its function, its queue (priority class), its retry policy and timeout."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

#: priority classes, taken strictly in this order: a queued `critical` job always goes
#: before queued `default` and `bulk` ones
QUEUES: tuple[str, ...] = ("critical", "default", "bulk")

JobFunction = Callable[..., Awaitable[Any]]

_JOB_ID = re.compile(r"^(critical|default|bulk)\.[A-Za-z0-9_\-]{1,120}$")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with a cap: attempt n (n >= 1) that fails waits
    `min(max_delay, base_delay * 2 ** (n - 1))` before attempt n + 1.

    No jitter: delays grow strictly until the cap, so an outage is probed at a predictable
    pace; jobs are few and independent, so there is no thundering herd to spread out.
    """

    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 300.0

    def delay(self, attempt: int) -> float:
        return min(self.max_delay, self.base_delay * 2 ** max(attempt - 1, 0))


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A job function and how it runs. `func` takes the job's keyword arguments (JSON
    values) and returns a JSON value or None."""

    name: str
    func: JobFunction
    queue: str = "default"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = 60.0

    def __post_init__(self) -> None:
        if self.queue not in QUEUES:
            raise ValueError(f"unknown queue {self.queue!r}; use one of {QUEUES}")
        if self.retry.attempts < 1:
            raise ValueError("a job needs at least one attempt")


@dataclass(frozen=True, slots=True)
class Periodic:
    """Enqueue job `name` every `interval` seconds, once per interval across instances."""

    name: str
    interval: float
    kwargs: dict[str, Any] = field(default_factory=dict)


def valid_job_id(job_id: str) -> bool:
    """Job ids are `<queue>.<token>`, so the queue holding a job is known from its id."""
    return bool(_JOB_ID.match(job_id))


def queue_of(job_id: str) -> str:
    return job_id.split(".", 1)[0]
