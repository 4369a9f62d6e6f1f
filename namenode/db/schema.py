"""Schema lifecycle: Alembic upgrades and formatting a new namespace.

Every schema change and every format runs in one transaction that holds the *schema lock*, so
NameNodes starting at once against one database (and `dfs namenode format` / `upgrade`) take
turns: the first upgrades and formats, the others find the schema at head and the namespace
formatted, and read its cluster id. On PostgreSQL the lock is a transaction-scoped advisory
lock; on SQLite it is the database's write lock, taken by `BEGIN IMMEDIATE` before the
transaction reads anything (a deferred transaction that read first could not wait for it).
"""

from __future__ import annotations

import contextlib
import getpass
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, create_engine, event, inspect, select, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from namenode.db.models import ROOT_INODE_ID, ClusterRow, Inode

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

#: Key of the PostgreSQL advisory lock that serialises schema changes ("pydfs" in ASCII): any
#: constant works, as long as every NameNode uses the same one.
SCHEMA_LOCK_KEY = 0x70_79_64_66_73
#: Seconds an SQLite schema transaction waits for another one holding the write lock.
SQLITE_LOCK_TIMEOUT_S = 60


class AlreadyFormattedError(RuntimeError):
    """`format_database` found a namespace and was not told to erase it."""

    def __init__(self, cluster_id: str) -> None:
        super().__init__(f"the database already holds namespace {cluster_id}")
        self.cluster_id = cluster_id


@dataclass(frozen=True)
class Prepared:
    """What start-up found and did: the namespace's id, and whether this process formatted it."""

    cluster_id: str
    formatted: bool
    from_revision: str | None
    to_revision: str | None


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


@contextlib.contextmanager
def locked_schema(engine: Engine) -> Iterator[Connection]:
    """One transaction on `engine`'s database that holds the schema lock; committed on success."""
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        private = _immediate_sqlite_engine(engine.url)
        try:
            with private.begin() as connection:
                yield connection
        finally:
            private.dispose()
        return
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Not the reader pool's REPEATABLE READ: statements after the lock wait must see what
            # the NameNode that held it committed.
            connection = connection.execution_options(isolation_level="READ COMMITTED")
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            yield connection


def _immediate_sqlite_engine(url: URL) -> Engine:
    """An engine whose transactions start with `BEGIN IMMEDIATE` (SQLite's write lock, waited for)."""
    engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": SQLITE_LOCK_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy, not pysqlite, begins transactions

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Bring the schema up to `revision` (idempotent); returns the revisions before and after."""
    with locked_schema(engine) as connection:
        return _upgrade(connection, revision)


def _upgrade(connection: Connection, revision: str) -> tuple[str | None, str | None]:
    before = MigrationContext.configure(connection).get_current_revision()
    config = _config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
    return before, MigrationContext.configure(connection).get_current_revision()


def prepare(engine: Engine, *, owner: str | None = None, group: str = "supergroup") -> Prepared:
    """Start-up: upgrade to head and, in the same locked transaction, format an empty namespace."""
    with locked_schema(engine) as connection:
        before, after = _upgrade(connection, "head")
        with Session(connection) as session:
            cluster_id = session.scalar(select(ClusterRow.cluster_id))
            formatted = cluster_id is None
            if cluster_id is None:
                cluster_id = format_namespace(session, owner=owner, group=group)
    return Prepared(str(cluster_id), formatted, before, after)


def format_database(
    engine: Engine,
    *,
    cluster_id: str | None = None,
    force: bool = False,
    owner: str | None = None,
    group: str = "supergroup",
) -> str:
    """Create the schema at head and a new namespace; returns its cluster id.

    Raises:
        AlreadyFormattedError: the database holds a namespace and `force` is false. With `force`
            every table (alembic_version included) is dropped first, in the same transaction.
    """
    with locked_schema(engine) as connection:
        existing = _stored_cluster_id(connection)
        if existing is not None and not force:
            raise AlreadyFormattedError(existing)
        if force:
            tables = MetaData()
            tables.reflect(bind=connection)
            tables.drop_all(bind=connection)
        _upgrade(connection, "head")
        with Session(connection) as session:
            return format_namespace(session, cluster_id=cluster_id, owner=owner, group=group)


def _stored_cluster_id(connection: Connection) -> str | None:
    """The cluster id of whatever schema revision the database is at (None: not formatted)."""
    if not inspect(connection).has_table(ClusterRow.__tablename__):
        return None
    value = connection.scalar(select(ClusterRow.cluster_id).limit(1))
    return None if value is None else str(value)


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
