"""The OpenAPI 3.1 `webhooks` section: one POST per event type, as syncd sends it.

Each message is signed per the Standard Webhooks spec (verify it with the
`standardwebhooks` package and the endpoint's secret); any answer but a 2xx, or none
within `SYNCD_WEBHOOK_TIMEOUT`, is retried with exponential backoff.
"""

from __future__ import annotations

from typing import Any

_HEADERS = (
    ("webhook-id", "the message's `id`: the same on every attempt and replay"),
    ("webhook-timestamp", "seconds since the epoch when this attempt was signed"),
    (
        "webhook-signature",
        "`v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`; during a secret "
        "rotation's grace period one per secret, space-separated",
    ),
)


def webhook_item(event_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The path item of one event type; `schema`: its message's (a component ref)."""
    what = (
        "A test event, sent on request (`POST /api/webhooks/{id}/test`)"
        if event_type == "webhook.test"
        else f"`{event_type}`, to the endpoints subscribed to it"
    )
    return {
        "post": {
            "operationId": "webhook_" + event_type.replace(".", "_"),
            "summary": what,
            "description": __doc__,
            "tags": ["webhooks"],
            "parameters": [
                {
                    "name": name,
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string"},
                    "description": description,
                }
                for name, description in _HEADERS
            ],
            "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
            "responses": {
                "2XX": {"description": "Received; anything else (or no answer) is retried"}
            },
        }
    }
