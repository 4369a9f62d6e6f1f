"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 02:36:41.749670
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cluster",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("cluster_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cluster")),
    )
    op.create_table(
        "datanodes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("rack", sa.String(length=256), nullable=False),
        sa.Column("capacity", sa.BigInteger(), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("active_transfers", sa.Integer(), nullable=False),
        sa.Column("failed_volumes", sa.Integer(), nullable=False),
        sa.Column("last_heartbeat", sa.Float(), nullable=False),
        sa.Column("registered_at", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("admin_state", sa.String(length=24), nullable=False),
        sa.Column("current_report_id", sa.String(length=64), nullable=True),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datanodes")),
    )
    op.create_table(
        "inodes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "name",
            sa.String(length=1024).with_variant(sa.String(length=1024, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("is_dir", sa.Boolean(), nullable=False),
        sa.Column("mode", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=256), nullable=False),
        sa.Column("group_name", sa.String(length=256), nullable=False),
        sa.Column("mtime", sa.BigInteger(), nullable=False),
        sa.Column("atime", sa.BigInteger(), nullable=False),
        sa.Column("replication", sa.SmallInteger(), nullable=False),
        sa.Column("block_size", sa.BigInteger(), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("under_construction", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["parent_id"], ["inodes.id"], name=op.f("fk_inodes_parent_id_inodes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inodes")),
        sa.UniqueConstraint("parent_id", "name", name=op.f("uq_inodes_parent_id_name")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "blocks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("inode_id", sa.BigInteger(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("gen_stamp", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("pipeline", sa.String(length=4096), nullable=False),
        sa.ForeignKeyConstraint(["inode_id"], ["inodes.id"], name=op.f("fk_blocks_inode_id_inodes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blocks")),
        sa.UniqueConstraint("inode_id", "idx", name=op.f("uq_blocks_inode_id_idx")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("blocks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_blocks_inode_id_offset"), ["inode_id", "offset"], unique=False)

    op.create_table(
        "invalidations",
        sa.Column("datanode_id", sa.String(length=64), nullable=False),
        sa.Column("block_id", sa.BigInteger(), nullable=False),
        sa.Column("gen_stamp", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["datanode_id"], ["datanodes.id"], name=op.f("fk_invalidations_datanode_id_datanodes")),
        sa.PrimaryKeyConstraint("datanode_id", "block_id", name=op.f("pk_invalidations")),
    )
    op.create_table(
        "leases",
        sa.Column("inode_id", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.String(length=256), nullable=False),
        sa.Column("last_renewed", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["inode_id"], ["inodes.id"], name=op.f("fk_leases_inode_id_inodes"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("inode_id", name=op.f("pk_leases")),
    )
    with op.batch_alter_table("leases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_leases_holder"), ["holder"], unique=False)
        batch_op.create_index(batch_op.f("ix_leases_last_renewed"), ["last_renewed"], unique=False)

    op.create_table(
        "pending_replications",
        sa.Column("block_id", sa.BigInteger(), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("scheduled_at", sa.Float(), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["block_id"],
            ["blocks.id"],
            name=op.f("fk_pending_replications_block_id_blocks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"], ["datanodes.id"], name=op.f("fk_pending_replications_source_id_datanodes")
        ),
        sa.ForeignKeyConstraint(
            ["target_id"], ["datanodes.id"], name=op.f("fk_pending_replications_target_id_datanodes")
        ),
        sa.PrimaryKeyConstraint("block_id", "target_id", name=op.f("pk_pending_replications")),
    )
    with op.batch_alter_table("pending_replications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pending_replications_source_id_sent_at"), ["source_id", "sent_at"], unique=False
        )

    op.create_table(
        "replicas",
        sa.Column("block_id", sa.BigInteger(), nullable=False),
        sa.Column("datanode_id", sa.String(length=64), nullable=False),
        sa.Column("gen_stamp", sa.BigInteger(), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("report_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["block_id"], ["blocks.id"], name=op.f("fk_replicas_block_id_blocks"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["datanode_id"], ["datanodes.id"], name=op.f("fk_replicas_datanode_id_datanodes")),
        sa.PrimaryKeyConstraint("block_id", "datanode_id", name=op.f("pk_replicas")),
    )
    with op.batch_alter_table("replicas", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_replicas_datanode_id"), ["datanode_id"], unique=False)

    op.create_table(
        "replication_queue",
        sa.Column("block_id", sa.BigInteger(), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("enqueued_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["block_id"], ["blocks.id"], name=op.f("fk_replication_queue_block_id_blocks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("block_id", name=op.f("pk_replication_queue")),
    )
    with op.batch_alter_table("replication_queue", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_replication_queue_priority_enqueued_at"), ["priority", "enqueued_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("replication_queue", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_replication_queue_priority_enqueued_at"))

    op.drop_table("replication_queue")
    with op.batch_alter_table("replicas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_replicas_datanode_id"))

    op.drop_table("replicas")
    with op.batch_alter_table("pending_replications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_replications_source_id_sent_at"))

    op.drop_table("pending_replications")
    with op.batch_alter_table("leases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_leases_last_renewed"))
        batch_op.drop_index(batch_op.f("ix_leases_holder"))

    op.drop_table("leases")
    op.drop_table("invalidations")
    with op.batch_alter_table("blocks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_blocks_inode_id_offset"))

    op.drop_table("blocks")
    op.drop_table("inodes")
    op.drop_table("datanodes")
    op.drop_table("cluster")
