"""search and replay

Indexes for searching pieces (gateway search, /search) on a million of them:
newest first alone or after a status, cadre or partner; by supplier, issue
date, file name; a billing file's later pieces (link_id). And replays: a flow
may evaluate the archived bytes of an earlier one again (flow.replay_of), so
the one-original-per-partner-and-bytes index leaves replays out.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ORIGINAL_BEFORE = "duplicate_of IS NULL"
ORIGINAL_AFTER = "duplicate_of IS NULL AND replay_of IS NULL"

PIECE_INDEXES = (
    ("ix_piece_created", ["created_at", "id"]),
    ("ix_piece_status_created", ["status", "created_at"]),
    ("ix_piece_cadre_created", ["cadre", "created_at"]),
    ("ix_piece_partner_created", ["partner", "created_at"]),
    ("ix_piece_valid_created", ["valid", "created_at"]),
    ("ix_piece_supplier", ["supplier_id"]),
    ("ix_piece_issue_date", ["issue_date"]),
)
LINKED = "link_id IS NOT NULL"  # ix_piece_link: only the pieces that continue another


def _original(where: str) -> None:
    op.create_index("ux_flow_original", "flow", ["partner", "sha256"], unique=True,
                    sqlite_where=sa.text(where), postgresql_where=sa.text(where))


def upgrade() -> None:
    with op.batch_alter_table("flow") as batch:
        batch.add_column(sa.Column("replay_of", sa.String(length=40), nullable=True))
    op.drop_index("ux_flow_original", table_name="flow")
    _original(ORIGINAL_AFTER)
    op.create_index("ix_flow_file_name", "flow", ["file_name"])
    op.create_index("ux_flow_replay_of", "flow", ["replay_of"], unique=True)
    for name, columns in PIECE_INDEXES:
        op.create_index(name, "piece", columns)
    op.create_index("ix_piece_link", "piece", ["link_id"], sqlite_where=sa.text(LINKED),
                    postgresql_where=sa.text(LINKED))


def downgrade() -> None:
    op.drop_index("ix_piece_link", table_name="piece")
    for name, _ in PIECE_INDEXES:
        op.drop_index(name, table_name="piece")
    op.drop_index("ux_flow_replay_of", table_name="flow")
    op.drop_index("ix_flow_file_name", table_name="flow")
    op.drop_index("ux_flow_original", table_name="flow")
    # replays carry the bytes of their original: they go with the column
    op.execute("DELETE FROM piece WHERE flow_id IN (SELECT id FROM flow WHERE replay_of IS NOT NULL)")
    op.execute("DELETE FROM flow WHERE replay_of IS NOT NULL")
    _original(ORIGINAL_BEFORE)
    with op.batch_alter_table("flow") as batch:
        batch.drop_column("replay_of")
