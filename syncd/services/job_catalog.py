"""syncd's job functions, registered under their names with their queue and retry policy.

The same catalog runs in `syncd serve` (embedded: in-process queues; scaled: SAQ) and in
`syncd worker`. It lives with the services, not in the generic `syncd.jobs` package:
its jobs call the services (notifications, sessions), which themselves enqueue jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from redis.asyncio import Redis

from syncd import metrics
from syncd.auth.signin import app_url
from syncd.jobs.policy import JobSpec, RetryPolicy
from syncd.jobs.worker import JobRegistry, Jobs
from syncd.services.email_content import notification_email
from syncd.services.mailer import Mailer
from syncd.services.notifications import DELIVER_JOB, notification_json
from syncd.services.presence.redis_state import RedisInstances
from syncd.services.sessions import SessionService
from syncd.services.webhooks import DELIVER_WEBHOOK_JOB, WebhookSender
from syncd.settings import Settings
from syncd.storage import NotificationStore, SqlRefreshRecords, Store

log = logging.getLogger(__name__)

EMAIL_JOB = "send_email"
CLEANUP_JOB = "cleanup"


class Deliverer(Protocol):
    """Reaches a user's sockets (this instance's Socket.IO server, or the Redis manager)."""

    async def emit_to_user(self, user_id: str, event: str, data: dict[str, Any]) -> None: ...

    async def is_online(self, user_id: str) -> bool: ...


class Cleanup:
    """Named cleanup steps the periodic `cleanup` job runs in turn; each returns a count."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, Callable[[], Awaitable[int]]]] = []

    def add(self, name: str, step: Callable[[], Awaitable[int]]) -> None:
        self.steps.append((name, step))

    async def run(self) -> dict[str, int]:
        done: dict[str, int] = {}
        failed: list[str] = []
        for name, step in self.steps:
            try:
                done[name] = await step()
            except Exception:
                log.exception("cleanup step %s failed", name)
                metrics.ERRORS.labels("cleanup").inc()
                failed.append(name)
        if failed:  # the job retries; every step is idempotent
            raise RuntimeError(f"cleanup steps failed: {', '.join(failed)}")
        return done


def _utc_now() -> datetime:
    return datetime.now(UTC)


#: notes purged per transaction by the trash step (a large trash does not hold the lock long)
TRASH_BATCH = 200


def standard_cleanup(
    settings: Settings,
    store: Store,
    sessions: SessionService,
    redis: Redis | None,
    *,
    clock: Callable[[], datetime] = _utc_now,
) -> Cleanup:
    """Old read notifications, notes in the trash past `SYNCD_TRASH_RETENTION_DAYS`,
    sessions of dead instances, and (embedded) expired refresh tokens or (scaled) dead
    instances' stats. Presence and online markers in Redis need no job: they expire with
    their key's TTL and are pruned whenever they are read. `clock`: the time the retention
    periods count to (tests move it instead of waiting)."""
    collab = settings.collab
    notifications = NotificationStore(store.engine)

    async def read_notifications() -> int:
        cutoff = clock() - timedelta(days=collab.notification_retention_days)
        return await notifications.delete_read_before(cutoff)

    async def trash() -> int:
        # the notes' connections closed when they were trashed: purging them is storage only
        cutoff = clock() - timedelta(days=collab.trash_retention_days)
        purged = 0
        while True:
            batch = await store.purge_trash(cutoff, limit=TRASH_BATCH)
            purged += len(batch)
            if len(batch) < TRASH_BATCH:
                return purged

    async def stale_sessions() -> int:
        # live sessions are touched every presence refresh; three missed ones: instance gone
        return await sessions.end_idle(3 * collab.presence_refresh)

    cleanup = Cleanup()
    cleanup.add("read_notifications", read_notifications)
    cleanup.add("trash", trash)
    cleanup.add("stale_sessions", stale_sessions)
    if redis is None:
        # scaled, refresh-token records live in Redis with a TTL of their own
        cleanup.add("expired_refresh_tokens", SqlRefreshRecords(store.engine).purge_expired)
    else:
        cleanup.add("dead_instances", RedisInstances(redis, settings.redis_prefix).prune)
    return cleanup


def register_jobs(
    registry: JobRegistry,
    jobs: Jobs,
    *,
    settings: Settings,
    store: Store,
    deliverer: Deliverer,
    mailer: Mailer | None,
    cleanup: Cleanup,
    webhooks: WebhookSender | None = None,
) -> None:
    collab = settings.collab
    notifications = NotificationStore(store.engine)
    # links in e-mail lead to the CRM's first origin, else to this server's web app
    link_base = app_url(settings)

    def policy(attempts: int) -> RetryPolicy:
        return RetryPolicy(attempts, base_delay=collab.retry_base, max_delay=collab.retry_max)

    async def deliver_notification(notification_id: str) -> dict[str, Any]:
        record = await notifications.get(notification_id)
        if record is None:
            return {"delivered": False, "reason": "gone"}
        if record.note_id is not None and await store.get_note(record.note_id) is None:
            # its note is in the trash (hidden with it) or purged meanwhile
            return {"delivered": False, "reason": "note deleted"}
        await deliverer.emit_to_user(record.user_id, "notification:new", notification_json(record))
        emailed = False
        if mailer is not None:
            user = await store.get_user(record.user_id)
            if (
                user is not None
                and user.email
                and user.email_notifications
                and not await deliverer.is_online(user.id)
            ):
                email = notification_email(record, link_base)
                await jobs.enqueue(
                    EMAIL_JOB,
                    job_id=f"default.email-{record.id}",
                    to=user.email,
                    subject=email.subject,
                    body=email.text,
                    html=email.html,
                )
                emailed = True
        return {"delivered": True, "emailQueued": emailed}

    async def send_email(
        to: str, subject: str, body: str, html: str | None = None
    ) -> dict[str, str]:
        if mailer is None:
            raise RuntimeError("SMTP_URL is not configured in this process")
        await mailer.send(to, subject, body, html)
        return {"to": to}

    async def run_cleanup() -> dict[str, int]:
        return await cleanup.run()

    registry.add(JobSpec(DELIVER_JOB, deliver_notification, "critical", policy(5), timeout=30))
    registry.add(JobSpec(EMAIL_JOB, send_email, "default", policy(8), timeout=60))
    registry.add(JobSpec(CLEANUP_JOB, run_cleanup, "bulk", policy(3), timeout=600))
    registry.every(CLEANUP_JOB, collab.cleanup_interval)
    if webhooks is not None:
        hooks = settings.webhooks
        registry.add(
            JobSpec(
                DELIVER_WEBHOOK_JOB,
                webhooks,
                "default",
                policy(hooks.attempts),
                timeout=hooks.timeout + 5,
            )
        )
