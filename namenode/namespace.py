"""Namespace operations: stat, list, mkdirs, create, append, concat, rename, delete, attributes, summaries.

Each method runs inside the caller's transaction (see `namenode.db.database`) and
raises the protocol's errors, so the HTTP layer only renders them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import case, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from client.protocol import paths
from client.protocol.client_namenode import (
    MAX_LIST_LIMIT,
    AppendRequest,
    AppendResponse,
    CommittedBlock,
    ConcatRequest,
    ContentSummary,
    CreateRequest,
    DeleteRequest,
    DeleteResponse,
    FileStatus,
    MkdirsRequest,
    RenameRequest,
    SetAttributesRequest,
    SetReplicationRequest,
)
from client.protocol.errors import (
    DfsFileExistsError,
    DfsFileNotFoundError,
    DfsIsADirectoryError,
    DfsNotADirectoryError,
    DirectoryNotEmptyError,
    InvalidArgumentError,
    LeaseConflictError,
)
from namenode.block_manager import BlockManager
from namenode.config import NameNodeSettings
from namenode.db.models import Block, Inode
from namenode.inodes import (
    STATUS_COLUMNS,
    ListingPage,
    checked_prefix,
    child_counts,
    complete_chain,
    listing_entry,
    lookup_child,
    resolve_checked,
    resolve_parent,
    resolve_prefix,
    subtree_directories,
    to_status,
)
from namenode.leases import LeaseManager
from namenode.permissions import FsAction, PermissionChecker
from namenode.states import BLOCK_UC
from namenode.work_queues import enqueue_blocks


class Namespace:
    def __init__(
        self,
        settings: NameNodeSettings,
        blocks: BlockManager,
        leases: LeaseManager,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.blocks = blocks
        self.leases = leases
        self.clock = clock

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # --- reads -----------------------------------------------------------------------------

    def stat(self, session: Session, path: str, checker: PermissionChecker) -> FileStatus:
        inode = resolve_checked(session, path, checker)
        children = child_counts(session, [inode.id]).get(inode.id, 0) if inode.is_dir else 0
        return to_status(inode, path, children)

    def list_dir(
        self, session: Session, path: str, start_after: str, limit: int, checker: PermissionChecker
    ) -> ListingPage:
        """One page of entries after `start_after`, in byte order of names."""
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidArgumentError(f"limit must be between 1 and {MAX_LIST_LIMIT}", path=path)
        inode = _resolve_listable(session, path, checker)
        if not inode.is_dir:
            return ListingPage(entries=[to_status(inode, path).model_dump(mode="json")], has_more=False)
        # On the Core connection: the ORM's execution of a column-only select adds ~30% per row.
        rows = (
            session.connection()
            .execute(
                select(*STATUS_COLUMNS)
                .where(Inode.parent_id == inode.id, Inode.name > start_after)
                .order_by(Inode.name)
                .limit(limit + 1)
            )
            .all()
        )
        page = rows[:limit]
        counts = child_counts(session, [row[0] for row in page if row[2]])  # id, is_dir
        entries = [listing_entry(row, path, counts.get(row[0], 0)) for row in page]
        return ListingPage(entries=entries, has_more=len(rows) > limit)

    def entries_after(self, session: Session, path: str, name: str, checker: PermissionChecker) -> int:
        """Entries of directory `path` whose names sort after `name` (an index range count)."""
        inode = _resolve_listable(session, path, checker)
        if not inode.is_dir:
            return 0
        return session.scalar(select(func.count()).where(Inode.parent_id == inode.id, Inode.name > name)) or 0

    # --- directories -----------------------------------------------------------------------

    def mkdirs(
        self, session: Session, request: MkdirsRequest, checker: PermissionChecker, *, inherit: bool = False
    ) -> FileStatus:
        """Create a directory (and, with `parents`, its missing ancestors), owned by the caller.

        Implicitly created ancestors get the requested mode plus u+wx, or with `inherit` (a
        create's parents) the deepest existing ancestor's: so the creator can go on (HDFS)."""
        names = paths.split(request.path)
        chain = resolve_prefix(session, request.path)
        missing = len(names) + 1 - len(chain)
        checker.check_path(request.path, chain, ancestor=FsAction.WRITE if missing else None)
        current = chain[-1]
        if not current.is_dir:
            walked = "/" + "/".join(names[: len(chain) - 1])
            if missing == 0:
                raise DfsFileExistsError(f"{walked} exists and is not a directory", path=request.path)
            raise DfsNotADirectoryError(f"{walked} is not a directory", path=request.path)
        if missing == 0:
            if not request.parents:
                raise DfsFileExistsError(f"Directory already exists: {request.path}", path=request.path)
            return to_status(current, request.path)
        if missing > 1 and not request.parents:
            raise DfsFileNotFoundError(
                f"Parent directory does not exist: {paths.parent(request.path)}", path=request.path
            )
        implicit = ((current.mode if inherit else request.mode) & 0o777) | 0o300
        for index in range(len(chain) - 1, len(names)):
            mode = request.mode if index == len(names) - 1 and not inherit else implicit
            current = self._new_dir(session, current, names[index], mode, checker.user, request.path)
        return to_status(current, request.path)

    def _new_dir(self, session: Session, parent: Inode, name: str, mode: int, user: str, path: str) -> Inode:
        now = self._now_ms()
        child = Inode(
            parent_id=parent.id,
            name=name,
            is_dir=True,
            mode=mode,
            owner=user,
            group=parent.group,
            mtime=now,
            atime=now,
            replication=0,
            block_size=0,
            length=0,
            under_construction=False,
        )
        session.add(child)
        _flush_unique(session, path)
        parent.mtime = now
        return child

    # --- files -----------------------------------------------------------------------------

    def create(self, session: Session, request: CreateRequest, checker: PermissionChecker) -> FileStatus:
        """A new, empty file under construction, leased to `request.client_name`.

        Needs w on the deepest existing ancestor, and to overwrite, w on the file replaced."""
        block_size = request.block_size or self.settings.default_block_size
        replication = request.replication or self.settings.default_replication
        self._check_file_params(block_size, replication, request.path)
        checked_prefix(
            session,
            request.path,
            checker,
            ancestor=FsAction.WRITE,
            access=FsAction.WRITE if request.overwrite else None,
        )
        parent_path = paths.parent(request.path)
        if request.create_parents and parent_path != paths.ROOT:
            try:
                self.mkdirs(session, MkdirsRequest(path=parent_path, parents=True), checker, inherit=True)
            except DfsFileExistsError:
                raise DfsNotADirectoryError(
                    f"Parent path is not a directory: {parent_path}", path=request.path
                ) from None
        parent, name = resolve_parent(session, request.path)
        existing = lookup_child(session, parent.id, name)
        if existing is not None:
            self._replace_existing(session, existing, request)
        now = self._now_ms()
        inode = Inode(
            parent_id=parent.id,
            name=name,
            is_dir=False,
            mode=request.mode,
            owner=checker.user,
            group=parent.group,
            mtime=now,
            atime=now,
            replication=replication,
            block_size=block_size,
            length=0,
            under_construction=True,
        )
        session.add(inode)
        _flush_unique(session, request.path)
        self.leases.grant(session, inode, request.client_name)
        parent.mtime = now
        return to_status(inode, request.path)

    def _check_file_params(self, block_size: int, replication: int, path: str) -> None:
        if block_size < self.settings.min_block_size or block_size % 512:
            raise InvalidArgumentError(
                f"block size {block_size} must be a multiple of 512 and at least {self.settings.min_block_size}",
                path=path,
            )
        if block_size > self.settings.max_block_size:
            raise InvalidArgumentError(
                f"block size {block_size} exceeds the maximum {self.settings.max_block_size}", path=path
            )
        if replication > self.settings.max_replication:
            raise InvalidArgumentError(
                f"replication {replication} exceeds the maximum {self.settings.max_replication}", path=path
            )

    def _replace_existing(self, session: Session, existing: Inode, request: CreateRequest) -> None:
        if existing.is_dir:
            raise DfsIsADirectoryError(f"{request.path} is a directory", path=request.path)
        lease = self.leases.lease_of(session, existing.id) if existing.under_construction else None
        if lease is not None and (lease.holder == request.client_name or not self.leases.soft_expired(lease)):
            raise LeaseConflictError(f"{request.path} is already being written by {lease.holder}", path=request.path)
        if not request.overwrite:
            raise DfsFileExistsError(f"File already exists: {request.path}", path=request.path)
        # Replacing a file whose writer is past its soft limit needs no recovery first: it is deleted.
        self._delete_subtree(session, existing)

    def set_replication(
        self, session: Session, request: SetReplicationRequest, checker: PermissionChecker
    ) -> FileStatus:
        inode = resolve_checked(session, request.path, checker, access=FsAction.WRITE)
        if inode.is_dir:
            raise DfsIsADirectoryError(f"{request.path} is a directory", path=request.path)
        self._check_file_params(inode.block_size, request.replication, request.path)
        if inode.replication != request.replication:
            inode.replication = request.replication
            block_ids = session.scalars(
                select(Block.id).where(Block.inode_id == inode.id, Block.state != BLOCK_UC)
            ).all()
            enqueue_blocks(session, block_ids, self.clock())
        return to_status(inode, request.path)

    def set_attributes(self, session: Session, request: SetAttributesRequest, checker: PermissionChecker) -> FileStatus:
        """chmod, chown, chgrp and utimes in one: only the fields given change, each if the caller may
        (chmod: the owner; chown: the superuser; chgrp: the owner, to a group of theirs; utimes: the
        owner or a writer)."""
        inode = resolve_checked(session, request.path, checker)
        if request.mode is not None:
            checker.check_owner(inode, request.path)
        if request.owner is not None or request.group is not None:
            checker.check_set_owner(inode, request.path, request.owner, request.group)
        if (request.mtime is not None and request.mtime >= 0) or (request.atime is not None and request.atime >= 0):
            checker.check_set_times(inode, request.path)
        if request.mode is not None:
            inode.mode = request.mode
        if request.owner is not None:
            inode.owner = request.owner
        if request.group is not None:
            inode.group = request.group
        if request.mtime is not None and request.mtime >= 0:
            inode.mtime = request.mtime
        if request.atime is not None and request.atime >= 0:
            inode.atime = request.atime
        return to_status(inode, request.path)

    def append(self, session: Session, request: AppendRequest, checker: PermissionChecker) -> AppendResponse:
        """Reopen a closed file for writing, leased to `request.client_name`.

        Appended bytes start a new block, so the existing blocks stay finalised and immutable
        (HDFS's NEW_BLOCK append): no replica is ever reopened, at the cost of a short block."""
        inode = resolve_checked(session, request.path, checker, access=FsAction.WRITE)
        if inode.is_dir:
            raise DfsIsADirectoryError(f"{request.path} is a directory", path=request.path)
        if inode.under_construction:
            lease = self.leases.lease_of(session, inode.id)
            holder = lease.holder if lease is not None else "a writer"
            raise LeaseConflictError(f"{request.path} is already being written by {holder}", path=request.path)
        inode.under_construction = True
        self.leases.grant(session, inode, request.client_name)
        last = self.blocks.last_block(session, inode.id)
        committed = (
            None if last is None else CommittedBlock(block_id=last.id, gen_stamp=last.gen_stamp, length=last.length)
        )
        return AppendResponse(status=to_status(inode, request.path), last=committed)

    def concat(self, session: Session, request: ConcatRequest, checker: PermissionChecker) -> FileStatus:
        """Append the blocks of `sources` to `target` by re-pointing them (no data moves), then
        remove the sources; all in one transaction. Needs w on the target, r on the sources and w
        on their parents (they are deleted)."""
        if len(set(request.sources)) != len(request.sources):
            raise InvalidArgumentError("concat: a source is named twice", path=request.target)
        if request.target in request.sources:
            raise InvalidArgumentError("concat: the target cannot also be a source", path=request.target)
        target = self._closed_file(session, request.target, checker, access=FsAction.WRITE)
        sources = [
            (path, self._closed_file(session, path, checker, access=FsAction.READ, parent=FsAction.WRITE))
            for path in request.sources
        ]
        last_idx = session.scalar(select(func.max(Block.idx)).where(Block.inode_id == target.id))
        next_idx = 0 if last_idx is None else last_idx + 1
        offset = target.length
        moved: list[int] = []
        now = self._now_ms()
        for path, source in sources:
            for block in session.scalars(select(Block).where(Block.inode_id == source.id).order_by(Block.idx)):
                block.inode_id = target.id
                block.idx = next_idx
                block.offset = offset + block.offset
                next_idx += 1
                moved.append(block.id)
            offset += source.length
            session.flush()
            parent, _ = resolve_parent(session, path)
            parent.mtime = now
            session.delete(source)
        target.length = offset
        target.mtime = now
        session.flush()
        # The moved blocks now follow the target's replication.
        enqueue_blocks(session, moved, self.clock())
        return to_status(target, request.target)

    def _closed_file(
        self, session: Session, path: str, checker: PermissionChecker, access: FsAction, parent: FsAction | None = None
    ) -> Inode:
        inode = resolve_checked(session, path, checker, access=access, parent=parent)
        if inode.is_dir:
            raise DfsIsADirectoryError(f"{path} is a directory", path=path)
        if inode.under_construction:
            raise LeaseConflictError(f"{path} is open for writing", path=path)
        return inode

    def content_summary(self, session: Session, path: str, checker: PermissionChecker) -> ContentSummary:
        """Bytes, files and directories under `path`, in one recursive query (r-x needed on
        every directory of the subtree)."""
        inode = resolve_checked(session, path, checker)
        if inode.is_dir and not checker.bypass:
            checker.check_subtree(subtree_directories(session, inode, path), FsAction.READ_EXECUTE, ignore_empty=False)
        if not inode.is_dir:
            return ContentSummary(
                length=inode.length,
                files=1,
                directories=0,
                space_consumed=inode.length * inode.replication,
            )
        tree = (
            select(Inode.id, Inode.is_dir, Inode.length, Inode.replication)
            .where(Inode.id == inode.id)
            .cte("tree", recursive=True)
        )
        tree = tree.union_all(
            select(Inode.id, Inode.is_dir, Inode.length, Inode.replication).where(Inode.parent_id == tree.c.id)
        )
        files = case((tree.c.is_dir, 0), else_=1)
        row = session.execute(
            select(
                func.coalesce(func.sum(tree.c.length * files), 0),
                func.coalesce(func.sum(files), 0),
                func.count(),
                func.coalesce(func.sum(tree.c.length * tree.c.replication * files), 0),
            )
        ).one()
        length, file_count, total, space = (int(value) for value in row)
        return ContentSummary(length=length, files=file_count, directories=total - file_count, space_consumed=space)

    # --- rename and delete -----------------------------------------------------------------

    def rename(self, session: Session, request: RenameRequest, checker: PermissionChecker) -> FileStatus:
        """Move `src` to exactly `dst` (not into it); atomic, like POSIX rename(2). Needs w on the
        source's parent (sticky bit respected) and on the destination's (deepest existing) ancestor."""
        src, dst = request.src, request.dst
        if src == paths.ROOT:
            raise InvalidArgumentError("cannot rename the root directory", path=src)
        chain = complete_chain(checked_prefix(session, src, checker, parent=FsAction.WRITE), src)
        checked_prefix(session, dst, checker, ancestor=FsAction.WRITE)
        inode, old_parent = chain[-1], chain[-2]
        if dst == src:
            return to_status(inode, dst)
        if inode.is_dir and paths.is_ancestor(src, dst):
            raise InvalidArgumentError(f"cannot move directory {src} under itself ({dst})", path=src)
        new_parent, new_name = resolve_parent(session, dst)
        existing = lookup_child(session, new_parent.id, new_name)
        if existing is not None:
            self._check_overwrite(session, inode, existing, request)
            checker.check_sticky(new_parent, paths.parent(dst), existing, dst)  # replacing removes it
            self._delete_subtree(session, existing)
        inode.parent_id = new_parent.id
        inode.name = new_name
        now = self._now_ms()
        old_parent.mtime = now
        new_parent.mtime = now
        _flush_unique(session, dst)
        return to_status(inode, dst)

    def _check_overwrite(self, session: Session, inode: Inode, existing: Inode, request: RenameRequest) -> None:
        dst = request.dst
        if not request.overwrite:
            raise DfsFileExistsError(f"Destination already exists: {dst}", path=dst)
        if existing.is_dir and not inode.is_dir:
            raise DfsIsADirectoryError(f"cannot overwrite directory {dst} with a file", path=dst)
        if inode.is_dir and not existing.is_dir:
            raise DfsNotADirectoryError(f"cannot overwrite file {dst} with a directory", path=dst)
        if existing.is_dir and self._has_children(session, existing.id):
            raise DirectoryNotEmptyError(f"Destination directory is not empty: {dst}", path=dst)

    def delete(self, session: Session, request: DeleteRequest, checker: PermissionChecker) -> DeleteResponse:
        """Remove a file or directory; a non-empty directory needs `recursive`. Needs w on the
        parent (sticky bit respected) and rwx on every non-empty directory removed (HDFS)."""
        if request.path == paths.ROOT:
            raise InvalidArgumentError("cannot delete the root directory", path=request.path)
        chain = checked_prefix(session, request.path, checker, parent=FsAction.WRITE)
        if len(chain) == len(paths.split(request.path)) + 1 and chain[-1].is_dir and not checker.bypass:
            subtree = subtree_directories(session, chain[-1], request.path)
            checker.check_subtree(subtree, FsAction.ALL, ignore_empty=True)
        parent, name = resolve_parent(session, request.path)
        inode = lookup_child(session, parent.id, name)
        if inode is None:
            raise DfsFileNotFoundError(f"File does not exist: {request.path}", path=request.path)
        if inode.is_dir and not request.recursive and self._has_children(session, inode.id):
            raise DirectoryNotEmptyError(
                f"Directory is not empty (use recursive delete): {request.path}", path=request.path
            )
        result = self._delete_subtree(session, inode)
        parent.mtime = self._now_ms()
        return result

    @staticmethod
    def _has_children(session: Session, inode_id: int) -> bool:
        return session.scalar(select(Inode.id).where(Inode.parent_id == inode_id).limit(1)) is not None

    def _delete_subtree(self, session: Session, inode: Inode) -> DeleteResponse:
        """Delete an inode and everything under it, freeing all their blocks."""
        if not inode.is_dir:
            files, directories, file_ids = 1, 0, [inode.id]
        else:
            tree = select(Inode.id, Inode.is_dir).where(Inode.id == inode.id).cte("tree", recursive=True)
            tree = tree.union_all(select(Inode.id, Inode.is_dir).where(Inode.parent_id == tree.c.id))
            rows = session.execute(select(tree.c.id, tree.c.is_dir)).all()
            file_ids = [inode_id for inode_id, is_dir in rows if not is_dir]
            files, directories = len(file_ids), len(rows) - len(file_ids)
        blocks = self.blocks.remove_file_blocks(session, file_ids)
        if inode.is_dir:
            # One statement, so the parent/child foreign key is checked only once the whole tree is gone.
            tree = select(Inode.id).where(Inode.id == inode.id).cte("doomed", recursive=True)
            tree = tree.union_all(select(Inode.id).where(Inode.parent_id == tree.c.id))
            session.execute(
                delete(Inode).where(Inode.id.in_(select(tree.c.id))).execution_options(synchronize_session=False)
            )
            session.expunge(inode)
        else:
            session.delete(inode)
        session.flush()
        return DeleteResponse(files=files, directories=directories, blocks=blocks)

    def counts(self, session: Session) -> tuple[int, int]:
        """(files, directories) in the namespace, the root included."""
        rows = dict(session.execute(select(Inode.is_dir, func.count()).group_by(Inode.is_dir)).all())
        return rows.get(False, 0), rows.get(True, 0)


def _resolve_listable(session: Session, path: str, checker: PermissionChecker) -> Inode:
    """Listing a directory needs r-x on it; "listing" a file only traversal (HDFS getListing)."""
    chain = resolve_prefix(session, path)
    is_dir = len(chain) == len(paths.split(path)) + 1 and chain[-1].is_dir
    checker.check_path(path, chain, access=FsAction.READ_EXECUTE if is_dir else None)
    return complete_chain(chain, path)[-1]


def _flush_unique(session: Session, path: str) -> None:
    """Flush, turning a (parent, name) uniqueness race into the error a client expects."""
    try:
        session.flush()
    except IntegrityError as exc:
        if not _is_unique_violation(exc):
            raise
        raise DfsFileExistsError(f"{path} was created concurrently", path=path) from exc


def _is_unique_violation(exc: IntegrityError) -> bool:
    """PostgreSQL reports SQLSTATE 23505; SQLite says so in its message."""
    return getattr(exc.orig, "sqlstate", None) == "23505" or "UNIQUE constraint failed" in str(exc.orig)
