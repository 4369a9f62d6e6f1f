"""The metadata store in-process, on SQLite and PostgreSQL: schema, group commit, isolation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from client.protocol.client_namenode import CreateRequest, MkdirsRequest
from client.protocol.errors import DfsNotADirectoryError, LeaseConflictError
from namenode.app import prepare_database
from namenode.block_manager import BlockManager
from namenode.config import NameNodeSettings
from namenode.datanode_manager import DatanodeManager
from namenode.db import schema
from namenode.db.database import Database
from namenode.db.models import Base, Inode
from namenode.inodes import JOIN_DEPTH, lookup_child, resolve, resolve_prefix, root
from namenode.leases import LeaseManager
from namenode.namespace import Namespace
from namenode.permissions import Caller, PermissionChecker
from namenode.safemode import SafeMode
from tests.conftest import BACKENDS, backend_database


@pytest.fixture(params=BACKENDS)
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with backend_database(request.param, f"sqlite:///{tmp_path / 'metadata.db'}") as url:
        assert url is not None
        yield url


@pytest.fixture()
def database(fresh_url: str) -> Iterator[Database]:
    db = Database(fresh_url)
    prepare_database(db, NameNodeSettings(db_url=fresh_url))
    db.start()
    try:
        yield db
    finally:
        db.close()


#: These tests are about the database, not permissions: they act as the superuser.
SUPERUSER = PermissionChecker(Caller("u", is_superuser=True))


def namespace() -> Namespace:
    settings = NameNodeSettings()
    datanodes = DatanodeManager(settings, SafeMode(settings))
    leases = LeaseManager(settings)
    return Namespace(settings, BlockManager(settings, datanodes, leases), leases)


def test_migrations_build_exactly_the_models(fresh_url: str) -> None:
    db = Database(fresh_url)
    try:
        schema.upgrade(db.engine)
        schema.upgrade(db.engine)  # idempotent
        assert schema.current_revision(db.engine) == schema.head_revision()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        db.close()


def test_format_happens_once(fresh_url: str) -> None:
    settings = NameNodeSettings(db_url=fresh_url)
    first = Database(fresh_url)
    cluster_id = prepare_database(first, settings)
    first.close()
    second = Database(fresh_url)
    try:
        assert prepare_database(second, settings) == cluster_id
    finally:
        second.close()


def test_concurrent_writes_share_commits(database: Database) -> None:
    ns = namespace()
    paths = [f"/gc/{uuid.uuid4().hex}" for _ in range(300)]

    async def scenario() -> None:
        writes = [database.write(partial(ns.mkdirs, request=MkdirsRequest(path=p), checker=SUPERUSER)) for p in paths]
        await asyncio.gather(*writes)

    asyncio.run(scenario())
    names = set(database.read_sync(lambda s: s.scalars(select(Inode.name)).all()))
    assert {p.rsplit("/", 1)[1] for p in paths} <= names
    assert database.items_committed >= 300
    # Group commit: far fewer commits (fsyncs) than operations.
    assert database.batches_committed < database.items_committed / 2


def test_a_failing_operation_does_not_undo_its_batch_neighbours(database: Database) -> None:
    ns = namespace()
    database.write_sync(lambda s: ns.create(s, CreateRequest(path="/file", client_name="c"), SUPERUSER))

    async def scenario() -> list[object]:
        operations = []
        for index in range(50):
            path = "/file/child" if index % 10 == 5 else f"/ok/{index}"  # every tenth one fails
            operations.append(database.write(partial(ns.mkdirs, request=MkdirsRequest(path=path), checker=SUPERUSER)))
        return await asyncio.gather(*operations, return_exceptions=True)

    results = asyncio.run(scenario())
    failures = [r for r in results if isinstance(r, Exception)]
    assert len(failures) == 5 and all(isinstance(f, DfsNotADirectoryError) for f in failures)
    listing = database.read_sync(lambda s: ns.list_dir(s, "/ok", "", 1000, SUPERUSER))
    assert len(listing.entries) == 45


def test_unique_names_hold_under_concurrency(database: Database) -> None:
    ns = namespace()

    async def scenario() -> list[object]:
        creates = [
            database.write(
                partial(ns.create, request=CreateRequest(path="/same", client_name=f"c{n}"), checker=SUPERUSER)
            )
            for n in range(20)
        ]
        return await asyncio.gather(*creates, return_exceptions=True)

    results = asyncio.run(scenario())
    assert sum(1 for r in results if not isinstance(r, Exception)) == 1
    # The losers find the winner's file under construction, leased to the winner.
    assert all(isinstance(r, LeaseConflictError) for r in results if isinstance(r, Exception))
    names = database.read_sync(lambda s: s.scalars(select(Inode.name).where(Inode.name == "same")).all())
    assert names == ["same"]


def test_requeueing_a_block_only_raises_its_priority(database: Database) -> None:
    from namenode.db.models import Block, ReplicationQueueEntry
    from namenode.work_queues import enqueue_blocks

    ns = namespace()
    status = database.write_sync(
        partial(ns.create, request=CreateRequest(path="/q", client_name="c"), checker=SUPERUSER)
    )

    def add_block(session: Session) -> int:
        block = Block(inode_id=status.file_id, idx=0, offset=0, length=0, gen_stamp=1, state="complete")
        session.add(block)
        session.flush()
        return block.id

    block_id = database.write_sync(add_block)

    def priority() -> int:
        return database.read_sync(lambda s: s.get(ReplicationQueueEntry, block_id).priority)  # type: ignore[union-attr]

    database.write_sync(lambda s: enqueue_blocks(s, [block_id], 1.0, priority=2))
    database.write_sync(lambda s: enqueue_blocks(s, [block_id], 2.0, priority=0))
    assert priority() == 0
    database.write_sync(lambda s: enqueue_blocks(s, [block_id], 3.0, priority=1))
    assert priority() == 0


@pytest.mark.parametrize("depth", [1, JOIN_DEPTH - 2, JOIN_DEPTH - 1, JOIN_DEPTH, 2 * JOIN_DEPTH + 3])
def test_paths_of_any_depth_resolve_in_one_query_per_join_depth_levels(database: Database, depth: int) -> None:
    """Path resolution joins up to JOIN_DEPTH levels per query: every depth around the batch edges
    resolves to the same chain as walking one level at a time, and stops where the path stops."""
    ns = namespace()
    names = [f"d{level}" for level in range(depth)]
    deepest = "/" + "/".join(names)
    database.write_sync(partial(ns.mkdirs, request=MkdirsRequest(path=deepest), checker=SUPERUSER))
    database.write_sync(
        partial(ns.create, request=CreateRequest(path=f"{deepest}/file", client_name="c"), checker=SUPERUSER)
    )

    def walk_one_level_at_a_time(session: Session, path: str) -> list[str]:
        chain = [root(session)]
        for name in path.strip("/").split("/"):
            child = lookup_child(session, chain[-1].id, name) if chain[-1].is_dir else None
            if child is None:
                break
            chain.append(child)
        return [inode.name for inode in chain]

    def check(session: Session) -> None:
        for path in (deepest, f"{deepest}/file", f"{deepest}/file/below", f"{deepest}/missing/x", f"{deepest}/x"):
            assert [i.name for i in resolve_prefix(session, path)] == walk_one_level_at_a_time(session, path)
        assert len(resolve_prefix(session, f"{deepest}/file")) == depth + 2
        with pytest.raises(DfsNotADirectoryError):
            resolve(session, f"{deepest}/file/below")

    database.read_sync(check)


def test_reads_and_writes_survive_the_server_dropping_every_connection(database: Database) -> None:
    """PostgreSQL restarted or a connection killed: a read runs again on a fresh connection (reads
    skip the pool's pre-ping), a write pings first. Neither fails the caller."""
    if database.is_sqlite:
        pytest.skip("a PostgreSQL server drops connections; SQLite has none")
    assert database.read_sync(lambda s: root(s).id) is not None
    database.write_sync(partial(namespace().mkdirs, request=MkdirsRequest(path="/before"), checker=SUPERUSER))
    killer = create_engine(database.url, poolclass=NullPool)
    with killer.connect() as connection:
        killed = connection.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).scalar()
    killer.dispose()
    assert killed == 2  # the reader's pooled connection and the writer's
    assert database.read_sync(lambda s: root(s).id) is not None
    status = database.write_sync(partial(namespace().mkdirs, request=MkdirsRequest(path="/after"), checker=SUPERUSER))
    assert status.path == "/after"
