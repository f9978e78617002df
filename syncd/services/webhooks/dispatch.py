"""Messages to deliveries: one row in the delivery log and one job per endpoint.

`WebhookDispatcher.dispatch` records a pending delivery of the message for every enabled
endpoint that wants its type and queues a `deliver_webhook` job for each. The row is keyed
by event and endpoint, so a second dispatch of the same event adds nothing; the job id is
the row's, so the job queue runs one attempt chain per delivery on any number of instances
(`WebhookSender` also claims the row for its job before the first attempt).
"""

from __future__ import annotations

import logging
import time

from syncd import metrics
from syncd.jobs import Jobs
from syncd.services.events.payloads import EventMessage, WebhookTestData, WebhookTestMessage
from syncd.storage import DeliveryRecord, EndpointRecord, NewDelivery, WebhookStore

log = logging.getLogger(__name__)

DELIVER_WEBHOOK_JOB = "deliver_webhook"

#: how long an instance trusts its list of enabled endpoints (seconds): an endpoint
#: registered or changed on another instance is seen by this one at most this late
ENDPOINTS_TTL = 1.0


def delivery_job_id(delivery_id: int, after: int | None = None) -> str:
    """The job of a delivery; `after`: started when delivery `after` of the same note
    ended (a job id of its own: the delivery's first job may still be finishing)."""
    return f"default.wh-{delivery_id}" + (f"-after-{after}" if after is not None else "")


class WebhookDispatcher:
    def __init__(self, store: WebhookStore, jobs: Jobs) -> None:
        self.store = store
        self._jobs = jobs
        self._enabled: list[EndpointRecord] = []
        self._read_at = float("-inf")

    async def enabled(self) -> list[EndpointRecord]:
        """The enabled endpoints (cached for `ENDPOINTS_TTL`)."""
        if time.monotonic() - self._read_at > ENDPOINTS_TTL:
            self._enabled = await self.store.list_endpoints(enabled=True)
            self._read_at = time.monotonic()
        return self._enabled

    async def any_enabled(self) -> bool:
        return bool(await self.enabled())

    def forget(self) -> None:
        """An endpoint changed on this instance: read them again at the next message."""
        self._read_at = float("-inf")

    async def dispatch(self, message: EventMessage) -> list[int]:
        wanting = [e.id for e in await self.enabled() if message.type in e.events]
        if not wanting:
            return []
        new = NewDelivery(message.id, message.type, message.note_id or "", message.body())
        added = await self.store.add_deliveries(new, wanting)
        for delivery_id in added:
            await self.enqueue(delivery_id)
        return added

    async def enqueue(
        self, delivery_id: int, *, after: int | None = None, chain: str | None = None
    ) -> str:
        """Queue a job for the delivery (`chain`: the id of the job that owns it)."""
        job_id = chain or delivery_job_id(delivery_id, after)
        await self._jobs.enqueue(
            DELIVER_WEBHOOK_JOB, job_id=job_id, delivery_id=delivery_id, chain=job_id
        )
        return job_id

    async def send_test(self, endpoint: EndpointRecord) -> tuple[DeliveryRecord, str]:
        """A `webhook.test` message to one endpoint, whatever events it wants; the
        delivery and the id of its queued job (`GET /api/jobs/:id`)."""
        message = WebhookTestMessage.new(WebhookTestData(endpoint_id=endpoint.id))
        new = NewDelivery(message.id, message.type, None, message.body())
        (delivery_id,) = await self.store.add_deliveries(new, [endpoint.id])
        job_id = await self.enqueue(delivery_id)
        delivery = await self.store.get_delivery(delivery_id)
        assert delivery is not None
        return delivery, job_id

    async def replay(self, delivery: DeliveryRecord) -> tuple[DeliveryRecord, str]:
        """The same event and body again, as a new delivery with its own attempt chain;
        the new delivery and the id of its queued job."""
        again = await self.store.replay(delivery)
        return again, await self.enqueue(again.id)

    async def resume(self) -> int:
        """Queue again the job of every pending delivery: embedded, the job queue lives in
        memory and a restart loses it (a note's later deliveries would wait forever);
        scaled, the job is usually still queued and this adds nothing."""
        resumed = 0
        for delivery_id, runner in await self.store.pending():
            try:
                await self.enqueue(delivery_id, chain=runner)
                resumed += 1
            except Exception:
                log.exception("resuming webhook delivery %s failed", delivery_id)
                metrics.ERRORS.labels("webhooks").inc()
        return resumed
