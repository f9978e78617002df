"""Signed webhooks: note events POSTed to the CRM back end's registered endpoints.

`publisher` turns note events into catalogue messages (debouncing `note.updated`),
`dispatch` records one delivery per message and endpoint and queues its job, `sender` is
that job (signing, retries, order per note, automatic disabling), and `endpoints` is what
`/api/webhooks` does to endpoints (and how `SYNCD_WEBHOOK_URLS` is kept working).
"""

from syncd.services.webhooks.dispatch import (
    DELIVER_WEBHOOK_JOB,
    WebhookDispatcher,
    delivery_job_id,
)
from syncd.services.webhooks.endpoints import (
    ReadOnlyEndpoint,
    WebhookEndpoints,
    check_settings,
    configured_id,
    new_secret,
)
from syncd.services.webhooks.publisher import (
    LocalWindow,
    RedisWindow,
    UpdateWindow,
    WebhookPublisher,
)
from syncd.services.webhooks.sender import WebhookSender

__all__ = [
    "DELIVER_WEBHOOK_JOB",
    "LocalWindow",
    "ReadOnlyEndpoint",
    "RedisWindow",
    "UpdateWindow",
    "WebhookDispatcher",
    "WebhookEndpoints",
    "WebhookPublisher",
    "WebhookSender",
    "check_settings",
    "configured_id",
    "delivery_job_id",
    "new_secret",
]
