"""Webhook endpoints (registered over REST or configured by environment) and their
delivery log: one row per event and endpoint, one attempt chain per row.

The tables are declared on the shared `schema.metadata` (so the migration check sees
them); the DDL lives in migration 0005. Each method is one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from ._access import EngineStore
from ._engine import dialect_insert
from .schema import _SEQ, UTCDateTime, metadata, users

webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    #: JSON list of event types
    sa.Column("events", sa.Text, nullable=False, server_default="[]"),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    #: "api" (registered over REST) or "env" (SYNCD_WEBHOOK_URLS, read-only)
    sa.Column("source", sa.Text, nullable=False, server_default="api"),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("previous_secret", sa.Text),
    sa.Column("previous_secret_until", UTCDateTime),
    sa.Column("failure_streak", sa.Integer, nullable=False, server_default="0"),
    sa.Column("disabled_at", UTCDateTime),
    sa.Column("disabled_reason", sa.Text),
    sa.Column("created_by", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    # an increasing id: the order of a note's deliveries to one endpoint
    sa.Column("id", _SEQ, primary_key=True, autoincrement=True),
    sa.Column(
        "endpoint_id",
        sa.Text,
        sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    #: `<event id>:<endpoint id>` for an event's first chain (one per event and endpoint,
    #: whoever inserts it); NULL for replays
    sa.Column("dedupe_key", sa.Text, unique=True),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("note_id", sa.Text),
    sa.Column("body", sa.Text, nullable=False),
    #: pending, succeeded or failed
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("response_code", sa.Integer),
    sa.Column("latency_ms", sa.Integer),
    sa.Column("error", sa.Text),
    #: the job that owns the attempt chain (set by the first one to attempt it)
    sa.Column("runner", sa.Text),
    sa.Column("replay_of", _SEQ),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_attempt_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
    sa.Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
    sa.Index("ix_webhook_deliveries_lane", "endpoint_id", "note_id", "status", "id"),
    sqlite_autoincrement=True,
)

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    id: str
    url: str
    description: str
    events: tuple[str, ...]
    enabled: bool
    source: str
    secret: str
    previous_secret: str | None
    previous_secret_until: datetime | None
    failure_streak: int
    disabled_at: datetime | None
    disabled_reason: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime

    def signing_secrets(self, now: datetime) -> list[str]:
        """The current secret, and the previous one during its grace period."""
        secrets = [self.secret]
        until = self.previous_secret_until
        if self.previous_secret and until is not None and until > now:
            secrets.append(self.previous_secret)
        return secrets


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    id: int
    endpoint_id: str
    event_id: str
    event_type: str
    note_id: str | None
    body: str
    status: str
    attempts: int
    response_code: int | None
    latency_ms: int | None
    error: str | None
    runner: str | None
    replay_of: int | None
    created_at: datetime
    last_attempt_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewDelivery:
    event_id: str
    event_type: str
    note_id: str | None
    body: str


def _endpoint(row: Row[Any]) -> EndpointRecord:
    return EndpointRecord(
        id=row.id,
        url=row.url,
        description=row.description,
        events=tuple(json.loads(row.events or "[]")),
        enabled=bool(row.enabled),
        source=row.source,
        secret=row.secret,
        previous_secret=row.previous_secret,
        previous_secret_until=row.previous_secret_until,
        failure_streak=row.failure_streak,
        disabled_at=row.disabled_at,
        disabled_reason=row.disabled_reason,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _delivery(row: Row[Any]) -> DeliveryRecord:
    return DeliveryRecord(
        id=row.id,
        endpoint_id=row.endpoint_id,
        event_id=row.event_id,
        event_type=row.event_type,
        note_id=row.note_id,
        body=row.body,
        status=row.status,
        attempts=row.attempts,
        response_code=row.response_code,
        latency_ms=row.latency_ms,
        error=row.error,
        runner=row.runner,
        replay_of=row.replay_of,
        created_at=row.created_at,
        last_attempt_at=row.last_attempt_at,
        finished_at=row.finished_at,
    )


_E = webhook_endpoints.c
_D = webhook_deliveries.c


class WebhookStore(EngineStore):
    """Endpoints and deliveries; errors as `StorageError` / `StorageUnavailable`."""

    # -- endpoints ----------------------------------------------------------------------------

    async def create_endpoint(
        self,
        endpoint_id: str,
        *,
        url: str,
        events: Sequence[str],
        secret: str,
        description: str = "",
        created_by: str | None = None,
        source: str = "api",
    ) -> EndpointRecord:
        now = datetime.now(UTC)
        values = {
            "id": endpoint_id,
            "url": url,
            "description": description,
            "events": json.dumps(list(events)),
            "enabled": True,
            "source": source,
            "secret": secret,
            "failure_streak": 0,
            "created_by": created_by,
            "created_at": now,
            "updated_at": now,
        }
        async with self._write() as conn:
            await conn.execute(sa.insert(webhook_endpoints).values(values))
            row = (await conn.execute(_select_endpoint(endpoint_id))).one()
        return _endpoint(row)

    async def get_endpoint(self, endpoint_id: str) -> EndpointRecord | None:
        async with self._read() as conn:
            row = (await conn.execute(_select_endpoint(endpoint_id))).first()
        return None if row is None else _endpoint(row)

    async def list_endpoints(self, *, enabled: bool | None = None) -> list[EndpointRecord]:
        query = sa.select(webhook_endpoints).order_by(_E.created_at, _E.id)
        if enabled is not None:
            query = query.where(_E.enabled == enabled)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [_endpoint(row) for row in rows]

    async def update_endpoint(
        self,
        endpoint_id: str,
        *,
        url: str | None = None,
        events: Sequence[str] | None = None,
        description: str | None = None,
        enabled: bool | None = None,
    ) -> EndpointRecord | None:
        """Change what is given; enabling clears the failure streak and the disabling."""
        values: dict[str, Any] = {"updated_at": datetime.now(UTC)}
        if url is not None:
            values["url"] = url
        if events is not None:
            values["events"] = json.dumps(list(events))
        if description is not None:
            values["description"] = description
        if enabled is not None:
            values["enabled"] = enabled
            if enabled:
                values.update(failure_streak=0, disabled_at=None, disabled_reason=None)
        async with self._write() as conn:
            await conn.execute(
                sa.update(webhook_endpoints).where(_E.id == endpoint_id).values(values)
            )
            row = (await conn.execute(_select_endpoint(endpoint_id))).first()
        return None if row is None else _endpoint(row)

    async def delete_endpoint(self, endpoint_id: str) -> bool:
        """The endpoint and its delivery log (pending jobs find nothing and end)."""
        async with self._write() as conn:
            await conn.execute(sa.delete(webhook_deliveries).where(_D.endpoint_id == endpoint_id))
            result = await conn.execute(sa.delete(webhook_endpoints).where(_E.id == endpoint_id))
        return int(result.rowcount or 0) > 0

    async def rotate_secret(
        self, endpoint_id: str, secret: str, previous_until: datetime
    ) -> EndpointRecord | None:
        """`secret` signs from now on; the current one also signs until `previous_until`."""
        async with self._write() as conn:
            await conn.execute(
                sa.update(webhook_endpoints)
                .where(_E.id == endpoint_id)
                .values(
                    previous_secret=_E.secret,
                    previous_secret_until=previous_until,
                    secret=secret,
                    updated_at=datetime.now(UTC),
                )
            )
            row = (await conn.execute(_select_endpoint(endpoint_id))).first()
        return None if row is None else _endpoint(row)

    async def sync_configured(
        self, configured: dict[str, str], *, secret: str, events: Sequence[str]
    ) -> None:
        """Make the `env` endpoints those of `configured` (id → URL): new ones inserted,
        known ones given the configured secret and events (their `enabled` and log kept),
        others deleted."""
        now = datetime.now(UTC)
        async with self._write() as conn:
            await conn.execute(
                sa.delete(webhook_endpoints).where(
                    _E.source == "env", _E.id.not_in(list(configured))
                )
            )
            for endpoint_id, url in configured.items():
                values = {
                    "url": url,
                    "secret": secret,
                    "events": json.dumps(list(events)),
                    "updated_at": now,
                }
                insert = dialect_insert(conn)(webhook_endpoints).values(
                    id=endpoint_id,
                    description="SYNCD_WEBHOOK_URLS",
                    enabled=True,
                    source="env",
                    failure_streak=0,
                    created_at=now,
                    **values,
                )
                await conn.execute(
                    insert.on_conflict_do_update(index_elements=[_E.id], set_=values)
                )

    async def succeeded(self, endpoint_id: str) -> None:
        async with self._write() as conn:
            await conn.execute(
                sa.update(webhook_endpoints)
                .where(_E.id == endpoint_id, _E.failure_streak != 0)
                .values(failure_streak=0)
            )

    async def failed(self, endpoint_id: str, *, disable_after: int) -> EndpointRecord | None:
        """Count one more delivery failed for good; at `disable_after` in a row the endpoint
        is disabled. Returns the endpoint if this call disabled it (exactly one caller
        does, however many fail at once)."""
        now = datetime.now(UTC)
        async with self._write() as conn:
            await conn.execute(
                sa.update(webhook_endpoints)
                .where(_E.id == endpoint_id)
                .values(failure_streak=_E.failure_streak + 1)
            )
            result = await conn.execute(
                sa.update(webhook_endpoints)
                .where(
                    _E.id == endpoint_id,
                    _E.enabled == sa.true(),
                    _E.failure_streak >= disable_after,
                )
                .values(
                    enabled=False,
                    disabled_at=now,
                    disabled_reason=f"{disable_after} deliveries in a row failed",
                    updated_at=now,
                )
            )
            if not result.rowcount:
                return None
            row = (await conn.execute(_select_endpoint(endpoint_id))).one()
        return _endpoint(row)

    async def admins(self) -> list[str]:
        """Users syncd knows (from tokens it has seen) with the role `admin`."""
        async with self._read() as conn:
            rows = await conn.execute(
                sa.select(users.c.id, users.c.roles).where(users.c.roles.like('%"admin"%'))
            )
            return sorted(r.id for r in rows if "admin" in json.loads(r.roles or "[]"))

    # -- deliveries ---------------------------------------------------------------------------

    async def add_deliveries(self, new: NewDelivery, endpoint_ids: Iterable[str]) -> list[int]:
        """One pending delivery of the event per endpoint (none twice: a second call for
        the same event adds nothing); the ids of the rows added."""
        now = datetime.now(UTC)
        added: list[int] = []
        async with self._write() as conn:
            for endpoint_id in endpoint_ids:
                insert = (
                    dialect_insert(conn)(webhook_deliveries)
                    .values(
                        endpoint_id=endpoint_id,
                        dedupe_key=f"{new.event_id}:{endpoint_id}",
                        event_id=new.event_id,
                        event_type=new.event_type,
                        note_id=new.note_id,
                        body=new.body,
                        status=PENDING,
                        attempts=0,
                        created_at=now,
                    )
                    .on_conflict_do_nothing()
                    .returning(_D.id)
                )
                delivery_id = (await conn.execute(insert)).scalar()
                if delivery_id is not None:
                    added.append(int(delivery_id))
        return added

    async def replay(self, delivery: DeliveryRecord) -> DeliveryRecord:
        """A new pending delivery of the same event and body (a new attempt chain)."""
        async with self._write() as conn:
            delivery_id = (
                await conn.execute(
                    sa.insert(webhook_deliveries)
                    .values(
                        endpoint_id=delivery.endpoint_id,
                        event_id=delivery.event_id,
                        event_type=delivery.event_type,
                        note_id=delivery.note_id,
                        body=delivery.body,
                        status=PENDING,
                        attempts=0,
                        replay_of=delivery.id,
                        created_at=datetime.now(UTC),
                    )
                    .returning(_D.id)
                )
            ).scalar_one()
            row = (await conn.execute(_select_delivery(int(delivery_id)))).one()
        return _delivery(row)

    async def get_delivery(self, delivery_id: int) -> DeliveryRecord | None:
        async with self._read() as conn:
            row = (await conn.execute(_select_delivery(delivery_id))).first()
        return None if row is None else _delivery(row)

    async def list_deliveries(
        self, endpoint_id: str, *, limit: int, before: int | None = None
    ) -> list[DeliveryRecord]:
        """Newest first; `before`: the last id of the previous page."""
        query = sa.select(webhook_deliveries).where(_D.endpoint_id == endpoint_id)
        if before is not None:
            query = query.where(_D.id < before)
        query = query.order_by(_D.id.desc()).limit(max(limit, 0))
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [_delivery(row) for row in rows]

    async def pending(self, *, limit: int = 1000) -> list[tuple[int, str | None]]:
        """Pending deliveries and the job owning each (if any), oldest first: the jobs to
        resume after a restart."""
        query = (
            sa.select(_D.id, _D.runner)
            .where(_D.status == PENDING)
            .order_by(_D.id)
            .limit(max(limit, 0))
        )
        async with self._read() as conn:
            return [(int(r.id), r.runner) for r in await conn.execute(query)]

    async def earlier_pending(self, delivery: DeliveryRecord) -> int | None:
        """The oldest pending delivery of the same note to the same endpoint before this
        one (it goes first), or None."""
        return await self._pending_beside(delivery, _D.id < delivery.id)

    async def next_pending(self, delivery: DeliveryRecord) -> int | None:
        """The next pending delivery of the same note to the same endpoint, or None."""
        return await self._pending_beside(delivery, _D.id > delivery.id)

    async def _pending_beside(
        self, delivery: DeliveryRecord, side: sa.ColumnElement[bool]
    ) -> int | None:
        """The lowest pending delivery id of the same note and endpoint on `side`."""
        if delivery.note_id is None:
            return None
        query = (
            sa.select(_D.id)
            .where(
                _D.endpoint_id == delivery.endpoint_id,
                _D.note_id == delivery.note_id,
                _D.status == PENDING,
                side,
            )
            .order_by(_D.id)
            .limit(1)
        )
        async with self._read() as conn:
            found = (await conn.execute(query)).scalar()
        return None if found is None else int(found)

    async def claim(self, delivery_id: int, runner: str) -> bool:
        """Make `runner` (a job id) the owner of the delivery's attempt chain, unless
        another job owns it: exactly one chain per delivery however many jobs run."""
        async with self._write() as conn:
            result = await conn.execute(
                sa.update(webhook_deliveries)
                .where(
                    _D.id == delivery_id,
                    _D.status == PENDING,
                    sa.or_(_D.runner.is_(None), _D.runner == runner),
                )
                .values(runner=runner)
            )
        return bool(result.rowcount)

    async def attempted(
        self,
        delivery_id: int,
        *,
        status: str,
        response_code: int | None,
        latency_ms: int | None,
        error: str | None,
    ) -> None:
        now = datetime.now(UTC)
        async with self._write() as conn:
            await conn.execute(
                sa.update(webhook_deliveries)
                .where(_D.id == delivery_id)
                .values(
                    status=status,
                    attempts=_D.attempts + 1,
                    response_code=response_code,
                    latency_ms=latency_ms,
                    error=error,
                    last_attempt_at=now,
                    finished_at=None if status == PENDING else now,
                )
            )

    async def give_up(self, delivery_id: int, reason: str) -> None:
        """Fail a pending delivery without an attempt (its endpoint is disabled)."""
        now = datetime.now(UTC)
        async with self._write() as conn:
            await conn.execute(
                sa.update(webhook_deliveries)
                .where(_D.id == delivery_id, _D.status == PENDING)
                .values(status=FAILED, error=reason, finished_at=now)
            )


def _select_endpoint(endpoint_id: str) -> sa.Select[Any]:
    return sa.select(webhook_endpoints).where(_E.id == endpoint_id)


def _select_delivery(delivery_id: int) -> sa.Select[Any]:
    return sa.select(webhook_deliveries).where(_D.id == delivery_id)
