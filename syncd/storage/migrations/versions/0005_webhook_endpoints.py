"""Webhook endpoints registered over REST, and the delivery log per endpoint.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
# SQLite needs the exact type INTEGER for an autoincrementing rowid alias
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("events", sa.Text, nullable=False, server_default="[]"),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("source", sa.Text, nullable=False, server_default="api"),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("previous_secret", sa.Text),
        sa.Column("previous_secret_until", _TS),
        sa.Column("failure_streak", sa.Integer, nullable=False, server_default="0"),
        sa.Column("disabled_at", _TS),
        sa.Column("disabled_reason", sa.Text),
        sa.Column("created_by", sa.Text),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", _SEQ, primary_key=True, autoincrement=True),
        sa.Column(
            "endpoint_id",
            sa.Text,
            sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("dedupe_key", sa.Text, unique=True),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("note_id", sa.Text),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("response_code", sa.Integer),
        sa.Column("latency_ms", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("runner", sa.Text),
        sa.Column("replay_of", _SEQ),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_attempt_at", _TS),
        sa.Column("finished_at", _TS),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_webhook_deliveries_endpoint", "webhook_deliveries", ["endpoint_id", "id"])
    op.create_index(
        "ix_webhook_deliveries_lane",
        "webhook_deliveries",
        ["endpoint_id", "note_id", "status", "id"],
    )


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
