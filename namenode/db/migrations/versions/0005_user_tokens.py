"""User (delegation) tokens, so they can be listed and revoked.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_tokens",
        sa.Column("token_id", sa.String(length=64), nullable=False),
        sa.Column("user", sa.String(length=256), nullable=False),
        sa.Column("issued_by", sa.String(length=256), nullable=False),
        sa.Column("issued_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("revoked_ms", sa.BigInteger(), nullable=True),
        sa.Column("description", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_user_tokens")),
    )
    with op.batch_alter_table("user_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_tokens_user"), ["user"], unique=False)
        batch_op.create_index(batch_op.f("ix_user_tokens_expires_ms"), ["expires_ms"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("user_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_tokens_expires_ms"))
        batch_op.drop_index(batch_op.f("ix_user_tokens_user"))
    op.drop_table("user_tokens")
