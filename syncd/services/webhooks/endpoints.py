"""Webhook endpoints: registered over REST (`/api/webhooks`) or configured by environment.

`SYNCD_WEBHOOK_URLS` stays supported: at start-up each URL is written to the endpoints
table as a read-only `env` endpoint (id `env-` + a hash of the URL, the env secret and
events; URLs no longer configured are removed), so it has a delivery log, replay, a test
event and automatic disabling like the others. Only `enabled` can be changed over REST.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from standardwebhooks import Webhook

from syncd.services.events.payloads import WEBHOOK_EVENT_TYPES
from syncd.services.webhooks.dispatch import WebhookDispatcher
from syncd.settings import SettingsError, WebhookSettings
from syncd.storage import EndpointRecord


class ReadOnlyEndpoint(Exception):
    """An `env` endpoint: configured by environment, changed there."""


def check_settings(settings: WebhookSettings) -> None:
    """Refuse a secret the signer cannot use or an event type that does not exist."""
    if not settings.urls:
        return
    try:
        Webhook(settings.secret or "")
    except Exception:
        raise SettingsError("SYNCD_WEBHOOK_SECRET must be whsec_ followed by base64") from None
    unknown = sorted(set(settings.events) - set(WEBHOOK_EVENT_TYPES))
    if unknown:
        raise SettingsError(
            f"SYNCD_WEBHOOK_EVENTS: unknown {', '.join(unknown)}; "
            f"use {', '.join(WEBHOOK_EVENT_TYPES)}"
        )


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def configured_id(url: str) -> str:
    return "env-" + hashlib.sha256(url.encode()).hexdigest()[:16]


class WebhookEndpoints:
    """What `/api/webhooks` does to endpoints (the routes only check roles and bodies)."""

    def __init__(self, dispatcher: WebhookDispatcher, settings: WebhookSettings) -> None:
        self._dispatcher = dispatcher
        self._store = dispatcher.store
        self._settings = settings

    async def sync_configured(self) -> None:
        """Write the `SYNCD_WEBHOOK_URLS` endpoints (checked first: a bad one stops
        start-up) and queue the pending deliveries again."""
        check_settings(self._settings)
        hooks = self._settings
        await self._store.sync_configured(
            {configured_id(url): url for url in hooks.urls},
            secret=hooks.secret or "",
            events=hooks.events or WEBHOOK_EVENT_TYPES,
        )
        self._dispatcher.forget()

    async def create(
        self, url: str, events: Sequence[str], description: str, created_by: str
    ) -> EndpointRecord:
        endpoint = await self._store.create_endpoint(
            "we_" + uuid.uuid4().hex,
            url=url,
            events=list(dict.fromkeys(events)),
            secret=new_secret(),
            description=description,
            created_by=created_by,
        )
        self._dispatcher.forget()
        return endpoint

    async def update(
        self,
        endpoint: EndpointRecord,
        *,
        url: str | None,
        events: Sequence[str] | None,
        description: str | None,
        enabled: bool | None,
    ) -> EndpointRecord | None:
        if endpoint.source == "env" and (url, events, description) != (None, None, None):
            raise ReadOnlyEndpoint("configured by SYNCD_WEBHOOK_URLS: only enabled can change")
        updated = await self._store.update_endpoint(
            endpoint.id,
            url=url,
            events=list(dict.fromkeys(events)) if events is not None else None,
            description=description,
            enabled=enabled,
        )
        self._dispatcher.forget()
        return updated

    async def delete(self, endpoint: EndpointRecord) -> bool:
        if endpoint.source == "env":
            raise ReadOnlyEndpoint("configured by SYNCD_WEBHOOK_URLS: remove it there")
        deleted = await self._store.delete_endpoint(endpoint.id)
        self._dispatcher.forget()
        return deleted

    async def rotate_secret(self, endpoint: EndpointRecord) -> EndpointRecord | None:
        """A new secret; the current one keeps signing beside it for the grace period."""
        if endpoint.source == "env":
            raise ReadOnlyEndpoint("configured by SYNCD_WEBHOOK_URLS: rotate it there")
        until = datetime.now(UTC) + timedelta(seconds=self._settings.secret_grace)
        rotated = await self._store.rotate_secret(endpoint.id, new_secret(), until)
        self._dispatcher.forget()
        return rotated
