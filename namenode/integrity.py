"""Integrity of the metadata tables: the invariants a crash must never break.

`fsck` answers "are the blocks healthy?"; this answers "is the namespace itself well formed?" —
after a kill -9 at any moment, the committed tables must still describe one tree of directories
and files whose block lists add up. Every check is one SQL query, so it runs on a million-file
namespace in seconds and reads one snapshot (a single read transaction). `dfs namenode check`
runs it against a database; the crash tests run it after every restart.

A block belongs to exactly one file by construction (`blocks.inode_id`), so "no block claimed by
two files" is enforced by the schema and not re-checked here; whether blocks have live replicas is
`fsck`'s question (a dead node's replicas leave the map, and that is not corruption).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from namenode.db.models import Block, Inode, Lease, PendingTruncation
from namenode.states import BLOCK_COMPLETE

#: Violations listed per check at most (a broken database could have millions).
MAX_EXAMPLES = 20


@dataclass
class IntegrityReport:
    """What a check found: counts of what was examined, and one line per violation."""

    inodes: int = 0
    files: int = 0
    blocks: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return not self.violations


def check_database(engine: Engine) -> IntegrityReport:
    """Run every check in one read transaction (one snapshot of a possibly live database)."""
    with Session(engine) as session, session.begin():
        return check_session(session)


def check_session(session: Session) -> IntegrityReport:
    report = IntegrityReport(
        inodes=session.scalar(select(func.count()).select_from(Inode)) or 0,
        files=session.scalar(select(func.count()).where(Inode.is_dir.is_(False))) or 0,
        blocks=session.scalar(select(func.count()).select_from(Block)) or 0,
    )
    for check in (
        _one_root,
        _parents_are_directories,
        _every_inode_reachable_from_the_root,
        _directories_hold_no_blocks,
        _block_lists_are_contiguous,
        _closed_files_add_up,
        _leases_match_open_files,
    ):
        report.violations.extend(check(session))
    return report


def _lines(rows: Iterable[Sequence[Any]], template: str) -> list[str]:
    return [template.format(*row) for row in list(rows)[:MAX_EXAMPLES]]


def _one_root(session: Session) -> list[str]:
    roots = session.execute(select(Inode.id, Inode.is_dir).where(Inode.parent_id.is_(None))).all()
    if len(roots) != 1:
        return [f"the namespace has {len(roots)} root inodes (inodes without a parent), not 1"]
    if not roots[0].is_dir:
        return [f"the root inode {roots[0].id} is not a directory"]
    return []


def _parents_are_directories(session: Session) -> list[str]:
    parent = aliased(Inode)
    rows = session.execute(
        select(Inode.id, Inode.name, Inode.parent_id)
        .outerjoin(parent, parent.id == Inode.parent_id)
        .where(Inode.parent_id.is_not(None), or_(parent.id.is_(None), parent.is_dir.is_(False)))
        .limit(MAX_EXAMPLES)
    )
    return _lines(rows, "inode {0} ({1!r}) has parent {2}, which is missing or not a directory")


def _every_inode_reachable_from_the_root(session: Session) -> list[str]:
    """No orphans and no cycles: walking down from the root reaches every inode exactly once."""
    tree = select(Inode.id).where(Inode.parent_id.is_(None)).cte("tree", recursive=True)
    tree = tree.union_all(select(Inode.id).join(tree, Inode.parent_id == tree.c.id))
    reachable = session.scalar(select(func.count()).select_from(tree)) or 0
    total = session.scalar(select(func.count()).select_from(Inode)) or 0
    if reachable == total:
        return []
    unreached = session.execute(
        select(Inode.id, Inode.name, Inode.parent_id)
        .where(Inode.id.not_in(select(tree.c.id)))
        .order_by(Inode.id)
        .limit(MAX_EXAMPLES)
    )
    examples = _lines(unreached, "inode {0} ({1!r}, parent {2}) is not reachable from the root")
    return [f"{total - reachable} inodes are not reachable from the root", *examples]


def _directories_hold_no_blocks(session: Session) -> list[str]:
    rows = session.execute(
        select(Inode.id, func.count(Block.id))
        .join(Block, Block.inode_id == Inode.id)
        .where(Inode.is_dir.is_(True))
        .group_by(Inode.id)
        .limit(MAX_EXAMPLES)
    )
    return _lines(rows, "directory inode {0} owns {1} blocks")


def _block_lists_are_contiguous(session: Session) -> list[str]:
    """Block i of a file starts where block i-1 ends, and the indexes run 0..n-1 without a gap."""
    previous = aliased(Block)
    misplaced = session.execute(
        select(Block.inode_id, Block.idx, Block.id, Block.offset)
        .outerjoin(previous, and_(previous.inode_id == Block.inode_id, previous.idx == Block.idx - 1))
        .where(
            or_(
                and_(Block.idx == 0, Block.offset != 0),
                and_(Block.idx > 0, previous.id.is_(None)),
                and_(Block.idx > 0, previous.offset + previous.length != Block.offset),
            )
        )
        .limit(MAX_EXAMPLES)
    )
    return _lines(misplaced, "file inode {0}: block #{1} ({2}) at offset {3} does not follow the block before it")


def _closed_files_add_up(session: Session) -> list[str]:
    """A closed file's length is the sum of its blocks, and every one of them is complete."""
    totals = (
        select(
            Block.inode_id.label("inode_id"),
            func.coalesce(func.sum(Block.length), 0).label("total"),
            func.sum(case((Block.state != BLOCK_COMPLETE, 1), else_=0)).label("open_blocks"),
        )
        .group_by(Block.inode_id)
        .subquery()
    )
    rows = session.execute(
        select(Inode.id, Inode.length, func.coalesce(totals.c.total, 0), func.coalesce(totals.c.open_blocks, 0))
        .outerjoin(totals, totals.c.inode_id == Inode.id)
        .where(
            Inode.is_dir.is_(False),
            Inode.under_construction.is_(False),
            or_(Inode.length != func.coalesce(totals.c.total, literal(0)), totals.c.open_blocks > 0),
        )
        .limit(MAX_EXAMPLES)
    )
    return _lines(rows, "closed file inode {0}: length {1}, but its blocks add up to {2} ({3} not complete)")


def _leases_match_open_files(session: Session) -> list[str]:
    """Every file being written has a writer's lease (or a truncate in progress), and only those."""
    stray = session.execute(
        select(Lease.inode_id, Lease.holder)
        .join(Inode, Inode.id == Lease.inode_id)
        .where(or_(Inode.is_dir.is_(True), Inode.under_construction.is_(False)))
        .limit(MAX_EXAMPLES)
    )
    truncating = select(Block.inode_id).join(PendingTruncation, PendingTruncation.block_id == Block.id)
    unowned = session.execute(
        select(Inode.id)
        .where(
            Inode.under_construction.is_(True),
            Inode.id.not_in(select(Lease.inode_id)),
            Inode.id.not_in(truncating),
        )
        .limit(MAX_EXAMPLES)
    )
    return _lines(stray, "lease of {1!r} on inode {0}, which is not a file being written") + _lines(
        unowned, "file inode {0} is under construction but nobody holds its lease"
    )
