"""notice: one row per file

The transactional outbox of status files held two bodies per row (`xml`,
`json_body`); it now holds one file per row (`suffix`, `body`), so that a new
status-file format (gateway.outputs.registry) needs no new column. Rows are
carried over in their order: for each old row, its CPPStatut file (when one
could be made) then its JSON file, so status files still waiting to be
written after an upgrade are written as before.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_KEEP = "piece_id, party, name, created_at, written_at"


def _table(name: str, *bodies: sa.Column) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("piece_id", sa.String(length=48), nullable=False),
        sa.Column("party", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=160), nullable=False),
        *bodies,
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def _swap(new: str) -> None:
    """The new table takes the old one's name and indexes."""
    op.drop_index("ix_notice_piece_id", table_name="notice")
    op.drop_index("ix_notice_written_at", table_name="notice")
    op.drop_table("notice")
    op.rename_table(new, "notice")
    op.create_index("ix_notice_piece_id", "notice", ["piece_id"])
    op.create_index("ix_notice_written_at", "notice", ["written_at"])


def upgrade() -> None:
    _table("notice_files",
           sa.Column("suffix", sa.String(length=16), nullable=False),
           sa.Column("body", sa.LargeBinary(), nullable=False))
    # an empty xml body meant "no CPPStatut could be made for this party": no file
    op.execute(
        f"INSERT INTO notice_files ({_KEEP}, suffix, body) "
        f"SELECT {_KEEP}, suffix, body FROM ("
        f" SELECT id, 0 AS k, {_KEEP}, '.xml' AS suffix, xml AS body FROM notice"
        f"  WHERE xml IS NOT NULL AND length(xml) > 0"
        f" UNION ALL"
        f" SELECT id, 1 AS k, {_KEEP}, '.json' AS suffix, json_body AS body FROM notice"
        f"  WHERE json_body IS NOT NULL"
        f") AS files ORDER BY id, k")
    _swap("notice_files")


def downgrade() -> None:
    # formats other than CPPStatut and JSON have no column to go back to
    _table("notice_pairs",
           sa.Column("xml", sa.LargeBinary(), nullable=True),
           sa.Column("json_body", sa.LargeBinary(), nullable=True))
    op.execute(
        f"INSERT INTO notice_pairs ({_KEEP}, xml, json_body) "
        f"SELECT k.piece_id, k.party, k.name, k.created_at, k.written_at, x.body, j.body FROM"
        f" (SELECT piece_id, party, name, MIN(id) AS first, MIN(created_at) AS created_at,"
        f"  MAX(written_at) AS written_at FROM notice GROUP BY piece_id, party, name) AS k"
        f" LEFT JOIN notice x ON x.piece_id = k.piece_id AND x.party = k.party AND x.name = k.name"
        f"  AND x.suffix = '.xml'"
        f" LEFT JOIN notice j ON j.piece_id = k.piece_id AND j.party = k.party AND j.name = k.name"
        f"  AND j.suffix = '.json'"
        f" ORDER BY k.first")
    _swap("notice_pairs")
