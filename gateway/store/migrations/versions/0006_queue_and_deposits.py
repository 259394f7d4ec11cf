"""retried flows, deposits found by their bytes

A flow back in the queue without an outcome (its worker died, or its batch
failed: attempts > 0) is leased alone, before the others (Store.claim). An
index on (queue, attempts, received_at, id) finds those few at once, and the
others in the order received: without it, looking for them read every queued
flow (3 ms a claim with 20,000 waiting, on SQLite).

An API deposit finds its gateway flow by partner and bytes, duplicates
included (store.api_clients.link_flows): without (partner, sha256,
received_at) that read every flow of the partner, and sorted them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""
from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_flow_queue_attempts", "flow", ["queue", "attempts", "received_at", "id"])
    op.create_index("ix_flow_partner_bytes", "flow", ["partner", "sha256", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_flow_partner_bytes", table_name="flow")
    op.drop_index("ix_flow_queue_attempts", table_name="flow")
