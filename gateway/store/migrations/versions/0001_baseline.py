"""baseline

Every table and index as store/tables.py declared them when the store moved
to Alembic. A database made before Alembic is brought up to this by adding
what it lacks (gateway.store.db.migrate), then stamped here. Written out in
full, not derived from tables.py, so that it stays what it was when
tables.py changes.

Revision ID: 0001
Revises:
Create Date: 2026-12-07
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UNIQUE_ORIGINAL = "duplicate_of IS NULL"  # one original per partner and bytes; duplicates point at it


def upgrade() -> None:
    op.create_table(
        "flow",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("file_name", sa.String(length=1024), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archive_path", sa.String(length=2048), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("queue", sa.String(length=16), nullable=False),
        sa.Column("locked_by", sa.String(length=64), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("duplicate_of", sa.String(length=40), nullable=True),
        sa.Column("pieces_total", sa.Integer(), nullable=False),
        sa.Column("pieces_valid", sa.Integer(), nullable=False),
        sa.Column("report_written_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_flow_partner", "flow", ["partner"])
    op.create_index("ix_flow_queue_received", "flow", ["queue", "received_at", "id"])
    op.create_index("ix_flow_received", "flow", ["received_at"])
    op.create_index("ux_flow_original", "flow", ["partner", "sha256"], unique=True,
                    sqlite_where=sa.text(UNIQUE_ORIGINAL), postgresql_where=sa.text(UNIQUE_ORIGINAL))

    op.create_table(
        "piece",
        sa.Column("id", sa.String(length=48), nullable=False),
        sa.Column("flow_id", sa.String(length=40), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("valid", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=48), nullable=False),
        sa.Column("error_codes", sa.String(length=1024), nullable=False),
        sa.Column("verdict_json", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("cadre", sa.String(length=8), nullable=False),
        sa.Column("piece_type", sa.String(length=64), nullable=False),
        sa.Column("invoice_number", sa.String(length=64), nullable=True),
        sa.Column("issue_date", sa.String(length=10), nullable=True),
        sa.Column("supplier_id", sa.String(length=64), nullable=True),
        sa.Column("recipient_siret", sa.String(length=64), nullable=True),
        sa.Column("service_code", sa.String(length=100), nullable=True),
        sa.Column("engagement_number", sa.String(length=64), nullable=True),
        sa.Column("parties_json", sa.Text(), nullable=True),
        sa.Column("summary_json", sa.Text(), nullable=True),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.String(length=48), nullable=True),
        sa.ForeignKeyConstraint(["flow_id"], ["flow.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_piece_flow_id", "piece", ["flow_id"])
    op.create_index("ix_piece_recipient_siret", "piece", ["recipient_siret"])
    op.create_index("ix_piece_number", "piece", ["invoice_number", "supplier_id"])
    op.create_index("ix_piece_due", "piece", ["due_at"])

    op.create_table(
        "event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flow_id", sa.String(length=40), nullable=False),
        sa.Column("piece_id", sa.String(length=48), nullable=True),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail_json", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_event_flow_id", "event", ["flow_id"])
    op.create_index("ix_event_piece_id", "event", ["piece_id"])

    op.create_table(
        "notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("piece_id", sa.String(length=48), nullable=False),
        sa.Column("party", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=160), nullable=False),
        sa.Column("xml", sa.LargeBinary(), nullable=True),
        sa.Column("json_body", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notice_piece_id", "notice", ["piece_id"])
    op.create_index("ix_notice_written_at", "notice", ["written_at"])

    op.create_table(
        "invoice_number",
        sa.Column("supplier", sa.String(length=64), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("piece_id", sa.String(length=48), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("supplier", "number", "year"),
    )

    op.create_table(
        "partner_account",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("public_keys", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )

    op.create_table(
        "directory_structure",
        sa.Column("identifiant", sa.String(length=64), nullable=False),
        sa.Column("type_identifiant", sa.String(length=32), nullable=False),
        sa.Column("raison_sociale", sa.String(length=512), nullable=False),
        sa.Column("edi_emitter", sa.Boolean(), nullable=False),
        sa.Column("edi_receiver", sa.Boolean(), nullable=False),
        sa.Column("manages_payment_status", sa.Boolean(), nullable=False),
        sa.Column("engagement_required", sa.Boolean(), nullable=False),
        sa.Column("service_required", sa.Boolean(), nullable=False),
        sa.Column("service_or_engagement", sa.Boolean(), nullable=False),
        sa.Column("is_moa", sa.Boolean(), nullable=False),
        sa.Column("moa_only", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("address", sa.String(length=512), nullable=False),
        sa.Column("address2", sa.String(length=512), nullable=False),
        sa.Column("address3", sa.String(length=512), nullable=False),
        sa.Column("postal_code", sa.String(length=32), nullable=False),
        sa.Column("city", sa.String(length=256), nullable=False),
        sa.Column("phone", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=256), nullable=False),
        sa.Column("country_code", sa.String(length=8), nullable=False),
        sa.Column("country_name", sa.String(length=128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("identifiant"),
    )

    op.create_table(
        "directory_service",
        sa.Column("identifiant", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("engagement_required", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("identifiant", "code"),
    )


def downgrade() -> None:
    # a table's indexes go with it; piece before the flow it refers to
    for table in ("directory_service", "directory_structure", "partner_account", "invoice_number", "notice",
                  "event", "piece", "flow"):
        op.drop_table(table)
