"""Truncate recovery: the old version of a last block whose replicas are still being cut.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_truncations",
        sa.Column("block_id", sa.BigInteger(), nullable=False),
        sa.Column("old_gen_stamp", sa.BigInteger(), nullable=False),
        sa.Column("old_length", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["block_id"], ["blocks.id"], name=op.f("fk_pending_truncations_block_id_blocks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("block_id", name=op.f("pk_pending_truncations")),
    )


def downgrade() -> None:
    op.drop_table("pending_truncations")
