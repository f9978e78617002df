"""The `deliver_webhook` job: one delivery's attempt chain, in order per note.

Each run of the job is one attempt, signed per the Standard Webhooks spec (the
`standardwebhooks` package): `webhook-id` is the event id, stable across attempts and
replays; during a secret rotation's grace period `webhook-signature` carries one signature
per secret (space-separated, as the spec allows), so receivers holding either verify it.
Anything but a 2xx answer raises, so the job queue retries it with backoff.

Order per note and endpoint: an attempt waits (the job ends without attempting) while an
earlier delivery of the same note to the same endpoint is pending; when a delivery ends
(succeeded, or failed for good) it queues the job of the next one. The first job to attempt
a delivery claims it in the database, so whichever jobs run, one chain attempts it.

A delivery that fails for good adds one to its endpoint's failure streak (a success resets
it); at `SYNCD_WEBHOOK_DISABLE_AFTER` in a row the endpoint is disabled, logged, and its
admins notified: the user who registered it and every user syncd knows with the role
`admin`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from syncd import metrics
from syncd.services.webhooks.dispatch import WebhookDispatcher
from syncd.settings import WebhookSettings
from syncd.storage import DeliveryRecord, EndpointRecord, NewNotification
from syncd.storage.webhooks import FAILED, PENDING, SUCCEEDED

log = logging.getLogger(__name__)

Notify = Callable[[Iterable[str], NewNotification], Awaitable[object]]


class WebhookSender:
    def __init__(
        self, settings: WebhookSettings, dispatcher: WebhookDispatcher, notify: Notify
    ) -> None:
        self._settings = settings
        self._dispatcher = dispatcher
        self._store = dispatcher.store
        self._notify = notify
        self._client: httpx.AsyncClient | None = None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __call__(self, delivery_id: int, chain: str) -> dict[str, Any]:
        delivery = await self._store.get_delivery(delivery_id)
        if delivery is None or delivery.status != PENDING:
            return {"skipped": "gone" if delivery is None else delivery.status}
        endpoint = await self._store.get_endpoint(delivery.endpoint_id)
        if endpoint is None:
            return {"skipped": "endpoint deleted"}
        if not endpoint.enabled:
            await self._store.give_up(delivery.id, "endpoint disabled")
            await self._next(delivery)
            return {"skipped": "endpoint disabled"}
        earlier = await self._store.earlier_pending(delivery)
        if earlier is not None:  # its end queues this one again
            return {"waiting": earlier}
        if not await self._store.claim(delivery.id, chain):
            return {"skipped": "another job owns it"}
        return await self._attempt(delivery, endpoint)

    async def _attempt(self, delivery: DeliveryRecord, endpoint: EndpointRecord) -> dict[str, Any]:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._settings.timeout)
        now = datetime.now(UTC)
        signatures = " ".join(
            Webhook(secret).sign(delivery.event_id, now, delivery.body)
            for secret in endpoint.signing_secrets(now)
        )
        headers = {
            "content-type": "application/json",
            "webhook-id": delivery.event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signatures,
        }
        started = time.perf_counter()
        code: int | None = None
        try:
            response = await self._client.post(
                endpoint.url, content=delivery.body.encode(), headers=headers
            )
            code = response.status_code
            error = None if response.is_success else f"HTTP {code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        elapsed = time.perf_counter() - started
        metrics.WEBHOOK_LATENCY.observe(elapsed)
        last = delivery.attempts + 1 >= self._settings.attempts
        status = SUCCEEDED if error is None else FAILED if last else PENDING
        await self._store.attempted(
            delivery.id,
            status=status,
            response_code=code,
            latency_ms=round(elapsed * 1000),
            error=error,
        )
        if error is None:
            metrics.WEBHOOKS.labels(delivery.event_type, "delivered").inc()
            await self._store.succeeded(endpoint.id)
            await self._next(delivery)
            return {"url": endpoint.url, "status": code}
        metrics.WEBHOOKS.labels(delivery.event_type, "failed" if last else "retried").inc()
        if last:
            log.warning(
                "webhook %s (%s) to %s failed for good after %s attempts: %s",
                delivery.event_id,
                delivery.event_type,
                endpoint.url,
                delivery.attempts + 1,
                error,
            )
            await self._failed_for_good(endpoint)
            await self._next(delivery)
        raise RuntimeError(f"webhook {delivery.event_id} to {endpoint.url}: {error}")

    async def _next(self, delivery: DeliveryRecord) -> None:
        following = await self._store.next_pending(delivery)
        if following is not None:
            await self._dispatcher.enqueue(following, after=delivery.id)

    async def _failed_for_good(self, endpoint: EndpointRecord) -> None:
        disabled = await self._store.failed(endpoint.id, disable_after=self._settings.disable_after)
        if disabled is None:
            return
        self._dispatcher.forget()
        metrics.WEBHOOKS_DISABLED.inc()
        log.warning(
            "webhook endpoint %s (%s) disabled: %s",
            disabled.id,
            disabled.url,
            disabled.disabled_reason,
        )
        admins = set(await self._store.admins())
        if disabled.created_by:
            admins.add(disabled.created_by)
        if not admins:
            return
        await self._notify(
            sorted(admins),
            NewNotification(
                type="webhook_disabled",
                category="webhooks",
                title=f"Webhook endpoint {disabled.url} was disabled",
                message=(
                    f"{disabled.disabled_reason}. Fix the receiver, then enable it again "
                    f"(PATCH /api/webhooks/{disabled.id} with enabled: true)."
                ),
                data={
                    "endpointId": disabled.id,
                    "url": disabled.url,
                    "reason": disabled.disabled_reason,
                },
            ),
        )
