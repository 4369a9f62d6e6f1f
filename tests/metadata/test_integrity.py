"""The integrity checker (namenode/integrity.py) on SQLite and PostgreSQL: silent on a well-formed
namespace, and it names each kind of damage a crash could leave if a transaction were not atomic."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, delete, update
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from namenode.db import schema
from namenode.db.models import Block, Inode, Lease
from namenode.integrity import check_database
from namenode.states import BLOCK_COMMITTED, BLOCK_COMPLETE
from tests.conftest import BACKENDS, backend_database

BLOCK = 1024


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with backend_database(request.param, f"sqlite:///{tmp_path / 'metadata.db'}") as url:
        assert url is not None
        made = create_engine(url, poolclass=NullPool)
        schema.format_database(made, owner="root")
        try:
            yield made
        finally:
            made.dispose()


def populate(engine: Engine) -> dict[str, int]:
    """/d (a directory), /d/f (a closed file of two blocks), /d/open (being written, one block)."""
    with Session(engine) as session, session.begin():
        root = session.query(Inode).filter(Inode.parent_id.is_(None)).one()
        common = {"mode": 0o755, "owner": "u", "group": "g", "mtime": 0, "atime": 0}
        directory = Inode(parent_id=root.id, name="d", is_dir=True, **common)
        session.add(directory)
        session.flush()
        closed = Inode(
            parent_id=directory.id, name="f", is_dir=False, replication=3, block_size=BLOCK, length=1500, **common
        )
        written = Inode(
            parent_id=directory.id,
            name="open",
            is_dir=False,
            replication=3,
            block_size=BLOCK,
            under_construction=True,
            **common,
        )
        session.add_all([closed, written])
        session.flush()
        session.add_all(
            [
                Block(inode_id=closed.id, idx=0, offset=0, length=BLOCK, state=BLOCK_COMPLETE),
                Block(inode_id=closed.id, idx=1, offset=BLOCK, length=476, state=BLOCK_COMPLETE),
                Block(inode_id=written.id, idx=0, offset=0, length=BLOCK, state=BLOCK_COMMITTED),
                Lease(inode_id=written.id, holder="writer-1", last_renewed=0.0),
            ]
        )
        return {"root": root.id, "dir": directory.id, "closed": closed.id, "open": written.id}


def damage(engine: Engine, change: Callable[[Session, dict[str, int]], object], ids: dict[str, int]) -> None:
    with Session(engine) as session, session.begin():
        change(session, ids)


def test_a_well_formed_namespace_is_consistent(engine: Engine) -> None:
    populate(engine)
    report = check_database(engine)
    assert report.violations == []
    assert (report.inodes, report.files, report.blocks) == (4, 2, 3)


CASES: dict[str, tuple[Callable[[Session, dict[str, int]], object], str]] = {
    "a file's length disagrees with its blocks": (
        lambda s, ids: s.execute(update(Inode).where(Inode.id == ids["closed"]).values(length=1000)),
        "blocks add up to 1500",
    ),
    "a closed file keeps an unfinished block": (
        lambda s, ids: s.execute(
            update(Block).where(Block.inode_id == ids["closed"], Block.idx == 1).values(state=BLOCK_COMMITTED)
        ),
        "1 not complete",
    ),
    "a block is missing from the middle of a file": (
        lambda s, ids: (
            s.execute(delete(Block).where(Block.inode_id == ids["closed"], Block.idx == 0)),
            s.execute(update(Inode).where(Inode.id == ids["closed"]).values(length=476)),
        ),
        "does not follow the block before it",
    ),
    "an inode hangs under a file": (
        lambda s, ids: s.execute(update(Inode).where(Inode.id == ids["open"]).values(parent_id=ids["closed"])),
        "missing or not a directory",
    ),
    "directories form a cycle cut off from the root": (
        lambda s, ids: s.execute(update(Inode).where(Inode.id == ids["dir"]).values(parent_id=ids["dir"])),
        "not reachable from the root",
    ),
    "a directory owns a block": (
        lambda s, ids: s.execute(update(Block).where(Block.inode_id == ids["open"]).values(inode_id=ids["dir"])),
        "owns 1 blocks",
    ),
    "a file being written lost its lease": (
        lambda s, ids: s.execute(delete(Lease).where(Lease.inode_id == ids["open"])),
        "nobody holds its lease",
    ),
    "a closed file kept a lease": (
        lambda s, ids: s.add(Lease(inode_id=ids["closed"], holder="gone", last_renewed=0.0)),
        "not a file being written",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_kind_of_damage_is_named(engine: Engine, case: str) -> None:
    ids = populate(engine)
    change, expected = CASES[case]
    damage(engine, change, ids)
    report = check_database(engine)
    assert not report.consistent
    assert any(expected in line for line in report.violations), report.violations
