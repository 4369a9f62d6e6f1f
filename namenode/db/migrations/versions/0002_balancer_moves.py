"""Balancer moves: a pending replication may be a move (the source's copy goes once it lands).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pending_replications") as batch_op:
        batch_op.add_column(sa.Column("is_move", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("pending_replications") as batch_op:
        batch_op.drop_column("is_move")
