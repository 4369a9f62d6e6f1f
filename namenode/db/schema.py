"""Schema lifecycle: Alembic upgrades and formatting a new namespace."""

from __future__ import annotations

import getpass
import time
import uuid
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from namenode.db.models import ROOT_INODE_ID, ClusterRow, Inode

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest schema revision this code knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None for an empty database)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to `revision` (idempotent)."""
    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def is_formatted(session: Session) -> bool:
    return session.scalar(select(ClusterRow.cluster_id)) is not None


def format_namespace(
    session: Session, *, cluster_id: str | None = None, owner: str | None = None, group: str = "supergroup"
) -> str:
    """Create the cluster identity and the root directory in an empty schema."""
    cluster_id = cluster_id or f"CID-{uuid.uuid4()}"
    now = time.time()
    session.add(ClusterRow(id=1, cluster_id=cluster_id, created_at=now))
    now_ms = int(now * 1000)
    # No explicit id: PostgreSQL sequences do not advance past explicitly inserted ids.
    root = Inode(
        parent_id=None,
        name="",
        is_dir=True,
        mode=0o755,
        owner=owner or current_os_user(),
        group=group,
        mtime=now_ms,
        atime=now_ms,
    )
    session.add(root)
    session.flush()
    if root.id != ROOT_INODE_ID:
        raise RuntimeError(f"root inode got id {root.id}, expected {ROOT_INODE_ID}: the schema is not empty")
    return cluster_id


def read_cluster_id(session: Session) -> str:
    cluster_id = session.scalar(select(ClusterRow.cluster_id))
    if cluster_id is None:
        raise RuntimeError("the namespace is not formatted")
    return str(cluster_id)


def current_os_user() -> str:
    """The user running this process (the default superuser), as HDFS takes it."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "root"
