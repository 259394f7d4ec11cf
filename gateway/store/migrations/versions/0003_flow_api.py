"""flow api: the Flow Service API's clients, deposits, webhooks and their calls

Tables for the XP Z12-013 Flow Service channel (gateway/channels/flow_api/):
its OAuth2 clients (secrets as scrypt hashes), the flows deposited through it
(one per partner and bytes, mapped to the gateway's flow once claimed), the
webhooks partners subscribe, the calls to make to them, and how far the
dispatcher has read the event log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "api_client",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.String(length=256), nullable=False),
        _at("created_at"),
        _at("revoked_at", True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_api_client_partner", "api_client", ["partner"])
    op.create_table(
        "api_deposit",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("flow_syntax", sa.String(length=16), nullable=False),
        sa.Column("flow_profile", sa.String(length=32), nullable=True),
        sa.Column("processing_rule", sa.String(length=32), nullable=True),
        sa.Column("tracking_id", sa.String(length=64), nullable=True),
        sa.Column("organization_id", sa.String(length=64), nullable=True),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("temp_name", sa.String(length=255), nullable=False),
        sa.Column("inbox_name", sa.String(length=255), nullable=True),
        _at("created_at"),
        _at("deposited_at", True),
        sa.Column("flow_id", sa.String(length=40), nullable=True),
        sa.Column("failed", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ux_api_deposit_bytes", "api_deposit", ["partner", "sha256"], unique=True)
    op.create_index("ix_api_deposit_flow_id", "api_deposit", ["flow_id"])
    op.create_table(
        "api_webhook",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("callback_url", sa.String(length=2048), nullable=False),
        sa.Column("flow_types", sa.String(length=2048), nullable=False),
        sa.Column("flow_direction", sa.String(length=8), nullable=True),
        sa.Column("ack_status", sa.String(length=16), nullable=True),
        sa.Column("signing_key", sa.String(length=128), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_api_webhook_partner", "api_webhook", ["partner"])
    op.create_table(
        "api_webhook_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("webhook_id", sa.String(length=64), nullable=False),
        sa.Column("flow_id", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("next_at"),
        sa.Column("last_error", sa.String(length=512), nullable=True),
        _at("created_at"),
        _at("delivered_at", True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_api_delivery_due", "api_webhook_delivery", ["state", "next_at"])
    op.create_index("ix_api_webhook_delivery_webhook_id", "api_webhook_delivery", ["webhook_id"])
    op.create_table(
        "api_mark",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    for table in ("api_mark", "api_webhook_delivery", "api_webhook", "api_deposit", "api_client"):
        op.drop_table(table)
