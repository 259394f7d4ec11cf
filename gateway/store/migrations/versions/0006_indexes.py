"""indexes for the queue, the API and monitoring at a million flows

- Retried flows: a flow back in the queue without an outcome (its worker died,
  or its batch failed: attempts > 0) is leased alone, before the others
  (Store.claim). (queue, attempts, received_at, id) finds those few at once,
  and the others in the order received: without it, looking for them read
  every queued flow (3 ms a claim with 20,000 waiting, on SQLite).
- API deposits find their gateway flow by partner and bytes, duplicates
  included (store.api_clients.link_flows): without (partner, sha256,
  received_at) that read every flow of the partner, and sorted them.
- /metrics and /healthz (bench/monitoring_bench.py, 1,000,000 flows): flows
  counted by state and partner 822 -> 80 ms; pieces by status 1,016 -> 150 ms;
  the codes of flows refused whole, from a partial index of their events
  (a few rows among millions; piece_id leads it, always NULL there, because
  SQLite without statistics otherwise prefers ix_event_piece_id), 892 -> 35 ms.
- Flows not done keep at most one earlier attempt: attempts now cap a flow's
  tries ([intake] max_attempts), and an earlier version counted them freely.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

EVENT_REFUSED = "stage = 'validation' AND outcome = 'IN_REJETE' AND piece_id IS NULL"
INDEXES = (
    ("ix_flow_queue_attempts", "flow", ["queue", "attempts", "received_at", "id"]),
    ("ix_flow_partner_bytes", "flow", ["partner", "sha256", "received_at"]),
    ("ix_flow_state_partner", "flow", ["state", "partner"]),
    ("ix_piece_valid_status", "piece", ["valid", "status", "error_codes"]),
)


def upgrade() -> None:
    # Attempts now cap a flow's tries ([intake] max_attempts): a flow left
    # unfinished by an earlier version keeps its full share of them.
    op.execute("UPDATE flow SET attempts = 1 WHERE queue IN ('queued', 'running') AND attempts > 1")
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    op.create_index("ix_event_refused", "event", ["piece_id", "flow_id"],
                    sqlite_where=sa.text(EVENT_REFUSED), postgresql_where=sa.text(EVENT_REFUSED))


def downgrade() -> None:
    op.drop_index("ix_event_refused", table_name="event")
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
