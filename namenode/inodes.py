"""Path resolution over the inode tree: one index lookup on (parent_id, name) per component."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from client.protocol import paths
from client.protocol.client_namenode import FileStatus, FileType
from client.protocol.errors import DfsFileNotFoundError, DfsNotADirectoryError
from namenode.db.models import ROOT_INODE_ID, Inode


def lookup_child(session: Session, parent_id: int, name: str) -> Inode | None:
    """The entry `name` of directory `parent_id`, if any."""
    return session.scalars(select(Inode).where(Inode.parent_id == parent_id, Inode.name == name)).first()


def root(session: Session) -> Inode:
    inode = session.get(Inode, ROOT_INODE_ID)
    if inode is None:
        raise RuntimeError("namespace has no root inode: it was never formatted")
    return inode


def resolve_chain(session: Session, path: str) -> list[Inode]:
    """Every inode from the root down to `path` (inclusive); raises if any is missing."""
    paths.validate_path(path)
    chain = [root(session)]
    walked = ""
    for name in paths.split(path):
        current = chain[-1]
        if not current.is_dir:
            raise DfsNotADirectoryError(f"{walked or '/'} is not a directory", path=path)
        child = lookup_child(session, current.id, name)
        walked = f"{walked}/{name}"
        if child is None:
            raise DfsFileNotFoundError(f"File does not exist: {path}", path=path)
        chain.append(child)
    return chain


def resolve(session: Session, path: str) -> Inode:
    """The inode at `path`; FileNotFound / NotADirectory name the problem."""
    return resolve_chain(session, path)[-1]


def resolve_parent(session: Session, path: str) -> tuple[Inode, str]:
    """The existing directory that would contain `path`, and the new entry's name."""
    if path == paths.ROOT:
        raise DfsFileNotFoundError("the root has no parent", path=path)
    parent_path = paths.parent(path)
    try:
        parent = resolve(session, parent_path)
    except DfsFileNotFoundError:
        raise DfsFileNotFoundError(f"Parent directory does not exist: {parent_path}", path=path) from None
    if not parent.is_dir:
        raise DfsNotADirectoryError(f"Parent path is not a directory: {parent_path}", path=path)
    return parent, paths.basename(path)


def to_status(inode: Inode, path: str, children: int = 0) -> FileStatus:
    """The wire view of an inode found at `path` (`children`: a directory's entry count)."""
    return FileStatus(
        file_id=inode.id,
        name=paths.basename(path),
        path=path,
        type=FileType.DIRECTORY if inode.is_dir else FileType.FILE,
        length=inode.length,
        replication=inode.replication,
        block_size=inode.block_size,
        mode=inode.mode,
        owner=inode.owner,
        group=inode.group,
        mtime=inode.mtime,
        atime=inode.atime,
        under_construction=inode.under_construction,
        children=children,
    )


def child_counts(session: Session, directory_ids: list[int]) -> dict[int, int]:
    """Entries per directory, in one grouped index scan (for a listing page or a stat)."""
    if not directory_ids:
        return {}
    rows = session.execute(
        select(Inode.parent_id, func.count()).where(Inode.parent_id.in_(directory_ids)).group_by(Inode.parent_id)
    )
    return {parent_id: count for parent_id, count in rows if parent_id is not None}


def path_of(session: Session, inode: Inode) -> str:
    """Rebuild an inode's current path by walking up its parents (for messages and fsck)."""
    names: list[str] = []
    current: Inode | None = inode
    while current is not None and current.id != ROOT_INODE_ID:
        names.append(current.name)
        current = session.get(Inode, current.parent_id) if current.parent_id is not None else None
    return "/" + "/".join(reversed(names))
