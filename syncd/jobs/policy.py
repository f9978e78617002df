"""What a job is (its function, queue, retry policy and timeout) and the registry of them."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from syncd.backoff import capped_delay

#: priority classes; each queue has workers of its own, so a `critical` job never waits
#: behind `default` or `bulk` work (a full `bulk` queue cannot delay a delivery)
QUEUES: tuple[str, ...] = ("critical", "default", "bulk")

JobFunction = Callable[..., Awaitable[Any]]

#: job ids `<queue>.every-<name>…` are the periodic jobs' (`Jobs.enqueue` refuses them)
PERIODIC_ID = "every-"

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
        return capped_delay(self.base_delay, self.max_delay, attempt)


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
        if self.timeout <= 0:
            raise ValueError("a job needs a positive timeout")


@dataclass(frozen=True, slots=True)
class Periodic:
    """Enqueue job `name` every `interval` seconds, at wall-clock multiples of the interval,
    once per occurrence across instances."""

    name: str
    interval: float
    kwargs: dict[str, Any] = field(default_factory=dict)


class JobRegistry:
    """The job functions a process knows (by name) and the periodic jobs it schedules."""

    def __init__(self) -> None:
        self._specs: dict[str, JobSpec] = {}
        self.periodic: list[Periodic] = []

    def add(self, spec: JobSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"job {spec.name!r} is registered twice")
        self._specs[spec.name] = spec

    def every(self, name: str, interval: float, **kwargs: Any) -> None:
        """Enqueue job `name` every `interval` seconds (first at the next multiple of the
        interval, not at start-up, so that restarts do not add runs)."""
        if interval <= 0:
            raise ValueError("a periodic job needs a positive interval")
        self.periodic.append(Periodic(name, interval, kwargs))

    def get(self, name: str) -> JobSpec | None:
        return self._specs.get(name)

    def specs(self) -> list[JobSpec]:
        return list(self._specs.values())

    def names(self) -> list[str]:
        return sorted(self._specs)


def valid_job_id(job_id: str) -> bool:
    """Job ids are `<queue>.<token>`, so the queue holding a job is known from its id."""
    return bool(_JOB_ID.match(job_id))


def queue_of(job_id: str) -> str:
    return job_id.split(".", 1)[0]
