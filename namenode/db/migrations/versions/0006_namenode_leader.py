"""Several NameNodes on one database: their presence rows and the leader lease.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "namenodes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=512), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("seen_at", sa.Float(), nullable=False),
        sa.Column("safemode", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_namenodes")),
    )
    op.create_table(
        "leader_lease",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=True),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("manual_safemode", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leader_lease")),
    )
    # The one row every NameNode competes for, present from the start: acquiring is an UPDATE.
    op.execute(
        "INSERT INTO leader_lease (id, holder, epoch, expires_at, manual_safemode) VALUES (1, NULL, 0, 0, false)"
    )


def downgrade() -> None:
    op.drop_table("leader_lease")
    op.drop_table("namenodes")
