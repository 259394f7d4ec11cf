"""structures, roles in contracts, deposit agreements

Who may deposit what (#16): structures (SIRET) partners act for, the roles
structures hold in contracts (numéro de marché), the agreements that let one
role deposit for another; on each piece its contract number and, when it was
deposited for another actor, in which role and for which. New tables and
nullable columns only: existing rows keep their values.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('contract_actor',
    sa.Column('contract', sa.String(length=50), nullable=False),
    sa.Column('siret', sa.String(length=14), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('service', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('contract', 'siret', 'role')
    )
    op.create_table('deposit_agreement',
    sa.Column('contract', sa.String(length=50), nullable=False),
    sa.Column('by_role', sa.String(length=32), nullable=False),
    sa.Column('for_role', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('contract', 'by_role', 'for_role')
    )
    op.create_table('partner_structure',
    sa.Column('partner', sa.String(length=64), nullable=False),
    sa.Column('siret', sa.String(length=14), nullable=False),
    sa.Column('services', sa.String(length=1024), nullable=False),
    sa.PrimaryKeyConstraint('partner', 'siret')
    )
    with op.batch_alter_table('partner_structure', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_partner_structure_siret'), ['siret'], unique=False)

    op.create_table('structure',
    sa.Column('siret', sa.String(length=14), nullable=False),
    sa.Column('name', sa.String(length=512), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('siret')
    )
    with op.batch_alter_table('piece', schema=None) as batch_op:
        batch_op.add_column(sa.Column('contract_number', sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column('deposited_as', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('deposited_for', sa.String(length=32), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('piece', schema=None) as batch_op:
        batch_op.drop_column('deposited_for')
        batch_op.drop_column('deposited_as')
        batch_op.drop_column('contract_number')

    op.drop_table('structure')
    with op.batch_alter_table('partner_structure', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_partner_structure_siret'))

    op.drop_table('partner_structure')
    op.drop_table('deposit_agreement')
    op.drop_table('contract_actor')
