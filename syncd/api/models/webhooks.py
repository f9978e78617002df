"""Bodies of the webhook routes (`/api/webhooks`, role service or admin)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from syncd.api.models._base import Body, Out, Timestamp, text_field
from syncd.services.events.payloads import WebhookEventType

MAX_LIMIT = 200
#: the longest id a delivery can have (a Postgres BIGINT)
MAX_DELIVERY_ID = 2**63 - 1

#: an http(s) URL with a host name or IPv4 address, an optional port and path; no spaces
#: or control characters (what is checked is what the document says)
URL_PATTERN = (
    r"^https?://[A-Za-z0-9][A-Za-z0-9.\-]*(:[0-9]{1,5})?([/?#][^\s\u0000-\u001f\u007f]*)?$"
)
Url = Annotated[
    str,
    Field(
        min_length=10,
        max_length=2000,
        pattern=URL_PATTERN,
        description="where events are POSTed: `http://` or `https://` with a host name",
    ),
]
Events = Annotated[
    list[WebhookEventType],
    Field(min_length=1, max_length=50, description="the event types sent to this endpoint"),
]
Description = Annotated[str, text_field(500)]
ENDPOINT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,100}$"
EndpointId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=ENDPOINT_ID_PATTERN,
        description="`we_` + 32 hex digits, or `env-` + 16 (configured by environment)",
    ),
]
DeliveryId = Annotated[int, Field(ge=1, le=MAX_DELIVERY_ID)]


class NewEndpoint(Body):
    url: Url
    events: Events
    description: Description = ""


class EndpointChanges(Body):
    """Only what is given changes; `enabled: true` also clears an automatic disabling."""

    # none may be null: left out means unchanged
    url: Url = None  # type: ignore[assignment]
    events: Events = None  # type: ignore[assignment]
    description: Description = None  # type: ignore[assignment]
    enabled: bool = None  # type: ignore[assignment]


class Endpoint(Out):
    id: str
    url: str
    description: str
    events: list[str]
    enabled: bool
    source: Literal["api", "env"] = Field(
        description="`env`: configured by SYNCD_WEBHOOK_URLS (only `enabled` can change)"
    )
    failureStreak: int = Field(ge=0, description="deliveries in a row that failed for good")
    disabledAt: Timestamp | None
    disabledReason: str | None
    previousSecretExpiresAt: Timestamp | None = Field(
        description="after a rotation: until when the previous secret also signs"
    )
    createdBy: str | None
    createdAt: Timestamp
    updatedAt: Timestamp


class EndpointWithSecret(Endpoint):
    secret: str = Field(description="`whsec_` + base64: shown only here, once")


class EndpointList(Out):
    endpoints: list[Endpoint]


class Delivery(Out):
    id: str
    endpointId: str
    eventId: str = Field(description="the `webhook-id` header and the body's `id`")
    eventType: str
    noteId: str | None
    status: Literal["pending", "succeeded", "failed"]
    attempts: int = Field(ge=0)
    lastResponseCode: int | None
    latencyMs: int | None = Field(description="of the last attempt")
    error: str | None
    replayOf: str | None
    createdAt: Timestamp
    lastAttemptAt: Timestamp | None
    finishedAt: Timestamp | None


class QueuedDelivery(Delivery):
    """A delivery just queued (a test event, a replay), with the job that sends it."""

    jobId: str = Field(description="its `deliver_webhook` job (`GET /api/jobs/:jobId`)")


class DeliveryList(Out):
    deliveries: list[Delivery]
    nextCursor: str | None = Field(description="`cursor` of the next page; null: no more")


class DeliveryQuery(Body):
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        pattern=r"^[0-9]+$",
        description="`nextCursor` of the previous page",
    )
