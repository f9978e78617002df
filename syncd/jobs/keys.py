"""The names syncd gives SAQ for its queues, jobs and periodic jobs (all of them here).

SAQ derives every Redis key from these: `saq:<queue>:queued|active|incomplete|schedule|
sweep|stats|worker_info:<id>`, `saq:job:<queue>:<job key>` and `saq:abort:<job key>`, and
a periodic job's key is `cron:<function name>`. Each of those names starts with the hash
tag `{<prefix>:jobs}`, so every job key lands in one Redis Cluster slot and SAQ's
multi-key scripts and transactions stay within it.
"""

from __future__ import annotations

from dataclasses import dataclass

from syncd.bus.keys import Keys, key_part


@dataclass(frozen=True, slots=True)
class JobKeys:
    prefix: str = "syncd"

    @property
    def tag(self) -> str:
        return Keys(self.prefix).jobs

    def queue(self, name: str) -> str:
        """The SAQ queue name of priority class `name`."""
        return f"{self.tag}:{name}"

    def job(self, job_id: str) -> str:
        """The SAQ job key of syncd job `job_id` (it also names SAQ's abort marker)."""
        return f"{self.tag}:{key_part(job_id)}"

    def periodic(self, name: str) -> str:
        """The function name under which SAQ's cron enqueues periodic job `name`."""
        return f"{self.tag}:every:{name}"

    def job_name(self, function: str) -> str:
        """The registered job name behind a SAQ function name."""
        prefix = f"{self.tag}:every:"
        return function[len(prefix) :] if function.startswith(prefix) else function
