"""Typed SQLAlchemy models of the NameNode's metadata (docs/metadata.md explains each table).

The namespace is a tree of inode rows, unique on (parent_id, name); a file's blocks are
unique on (inode_id, idx) and indexed by (inode_id, offset) so a byte range is an index
range; replicas are keyed by (block_id, datanode_id) and indexed by DataNode for block
reports and dead-node handling. Work queues (re-replication, invalidation, pending
copies) are tables too, so a restarted NameNode resumes where it stopped.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ROOT_INODE_ID = 1

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: 64-bit ids; SQLite only autoincrements a column declared exactly INTEGER (which is 64-bit there).
IdType = BigInteger().with_variant(Integer(), "sqlite")

#: Names compare byte-wise on every backend, so listing pages have one order everywhere.
NameString = String(1024).with_variant(String(1024, collation="C"), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {int: BigInteger}


class ClusterRow(Base):
    """The single row that names this namespace."""

    __tablename__ = "cluster"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    cluster_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)


class Inode(Base):
    """A file or directory; its name and parent live on the row (no hard links)."""

    __tablename__ = "inodes"
    __table_args__ = (
        UniqueConstraint("parent_id", "name"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    parent_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("inodes.id"))
    name: Mapped[str] = mapped_column(NameString)
    is_dir: Mapped[bool] = mapped_column(Boolean)
    mode: Mapped[int] = mapped_column(Integer)
    owner: Mapped[str] = mapped_column(String(256))
    group: Mapped[str] = mapped_column("group_name", String(256))
    mtime: Mapped[int]
    atime: Mapped[int]
    replication: Mapped[int] = mapped_column(SmallInteger, default=0)
    block_size: Mapped[int] = mapped_column(default=0)
    length: Mapped[int] = mapped_column(default=0)
    under_construction: Mapped[bool] = mapped_column(Boolean, default=False)


class Block(Base):
    """One block of a file. States: under_construction -> committed (length known) -> complete."""

    __tablename__ = "blocks"
    __table_args__ = (
        UniqueConstraint("inode_id", "idx"),
        Index(None, "inode_id", "offset"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    inode_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("inodes.id"))
    idx: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int]
    length: Mapped[int] = mapped_column(default=0)
    gen_stamp: Mapped[int] = mapped_column(default=1)
    state: Mapped[str] = mapped_column(String(24))
    #: Comma-separated DataNode ids of the write pipeline, while under construction.
    pipeline: Mapped[str] = mapped_column(String(4096), default="")


class Datanode(Base):
    """A registered DataNode. `state` is the last liveness verdict acted on (live/dead)."""

    __tablename__ = "datanodes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    rack: Mapped[str] = mapped_column(String(256))
    capacity: Mapped[int] = mapped_column(default=0)
    used: Mapped[int] = mapped_column(default=0)
    remaining: Mapped[int] = mapped_column(default=0)
    active_transfers: Mapped[int] = mapped_column(Integer, default=0)
    failed_volumes: Mapped[int] = mapped_column(Integer, default=0)
    last_heartbeat: Mapped[float] = mapped_column(Float)
    registered_at: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16), default="live")
    admin_state: Mapped[str] = mapped_column(String(24), default="normal")
    current_report_id: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64), default="")


class Replica(Base):
    """Where a block is stored. States: finalized, rbw (being written), corrupt."""

    __tablename__ = "replicas"
    __table_args__ = (Index(None, "datanode_id"),)

    block_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("blocks.id", ondelete="CASCADE"), primary_key=True)
    datanode_id: Mapped[str] = mapped_column(ForeignKey("datanodes.id"), primary_key=True)
    gen_stamp: Mapped[int]
    length: Mapped[int]
    state: Mapped[str] = mapped_column(String(16))
    report_id: Mapped[str | None] = mapped_column(String(64))


class Lease(Base):
    """The single-writer lease on a file under construction."""

    __tablename__ = "leases"
    __table_args__ = (Index(None, "holder"), Index(None, "last_renewed"))

    inode_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("inodes.id", ondelete="CASCADE"), primary_key=True)
    holder: Mapped[str] = mapped_column(String(256))
    last_renewed: Mapped[float] = mapped_column(Float)


class ReplicationQueueEntry(Base):
    """A block whose replica count may be off target; the monitor works through it by priority."""

    __tablename__ = "replication_queue"
    __table_args__ = (Index(None, "priority", "enqueued_at"),)

    block_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("blocks.id", ondelete="CASCADE"), primary_key=True)
    priority: Mapped[int] = mapped_column(SmallInteger)
    enqueued_at: Mapped[float] = mapped_column(Float)


class PendingReplication(Base):
    """A copy the monitor has asked for; `sent_at` is set once the source's heartbeat took it."""

    __tablename__ = "pending_replications"
    __table_args__ = (Index(None, "source_id", "sent_at"),)

    block_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("blocks.id", ondelete="CASCADE"), primary_key=True)
    target_id: Mapped[str] = mapped_column(ForeignKey("datanodes.id"), primary_key=True)
    source_id: Mapped[str] = mapped_column(ForeignKey("datanodes.id"))
    scheduled_at: Mapped[float] = mapped_column(Float)
    sent_at: Mapped[float | None] = mapped_column(Float)
    #: A balancer move: once the target has the replica, the source's copy is deleted.
    is_move: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Invalidation(Base):
    """A replica a DataNode must delete; handed out with its heartbeats."""

    __tablename__ = "invalidations"

    datanode_id: Mapped[str] = mapped_column(ForeignKey("datanodes.id"), primary_key=True)
    block_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    gen_stamp: Mapped[int]
    created_at: Mapped[float] = mapped_column(Float)


class PendingTruncation(Base):
    """The last block of a file being truncated: replicas of (old stamp, old length) are still to be cut.

    The block row already carries the new stamp and length; this row remembers the version the
    DataNodes hold, so their replicas of it are recognised, kept and told to cut themselves.
    """

    __tablename__ = "pending_truncations"

    block_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("blocks.id", ondelete="CASCADE"), primary_key=True)
    old_gen_stamp: Mapped[int]
    old_length: Mapped[int]
    started_at: Mapped[float] = mapped_column(Float)


class Event(Base):
    """A cluster event for operators (node joined or died, safe mode, corruption...), newest last.

    No foreign keys: an event outlives the block, file or DataNode it names. Bounded to the
    newest few thousand by pruning on id (namenode.events)."""

    __tablename__ = "events"
    __table_args__ = (
        Index(None, "at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float)
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(8))
    message: Mapped[str] = mapped_column(String(1024))
    datanode_id: Mapped[str | None] = mapped_column(String(64))
    path: Mapped[str | None] = mapped_column(String(4096))
    block_id: Mapped[int | None] = mapped_column(BigInteger)


class UserToken(Base):
    """An issued user (delegation) token: kept so it can be listed and revoked before it expires.

    The token text itself is never stored, only its id; verifying a token needs its signature
    (namenode.user_tokens) and, for revocation, this row."""

    __tablename__ = "user_tokens"
    __table_args__ = (Index(None, "user"), Index(None, "expires_ms"))

    token_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[str] = mapped_column(String(256))
    issued_by: Mapped[str] = mapped_column(String(256))
    issued_ms: Mapped[int] = mapped_column(BigInteger)
    expires_ms: Mapped[int] = mapped_column(BigInteger)
    revoked_ms: Mapped[int | None] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(String(256), default="")


class NameNodeRow(Base):
    """One NameNode process sharing this database: what the others and operators see of it."""

    __tablename__ = "namenodes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(String(512))
    started_at: Mapped[float] = mapped_column(Float)
    #: Renewed on every leadership round; a row not seen for `namenode_forget_s` is pruned.
    seen_at: Mapped[float] = mapped_column(Float)
    #: Its safe-mode state (client.protocol.client_namenode.SafeModeState), so a NameNode that
    #: started after the block map was confirmed need not wait for DataNodes of its own.
    safemode: Mapped[str] = mapped_column(String(16))


class LeaderLease(Base):
    """The single row that says which NameNode runs the background work, and until when.

    `epoch` grows at every change of holder: a leader's background transactions fence on
    (holder, epoch) in the same transaction, so a deposed leader's work can never commit."""

    __tablename__ = "leader_lease"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(64))
    epoch: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[float] = mapped_column(Float, default=0.0)
    #: Operator safe mode (`dfs admin safemode enter`) is cluster-wide: every NameNode follows it.
    manual_safemode: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
