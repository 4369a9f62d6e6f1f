"""The block map's read side: which blocks cover a byte range, and where to read each from."""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from client.protocol.client_namenode import AdminState, DatanodeState, LocatedBlock, LocatedBlocks
from client.protocol.common import DatanodeRef, ExtendedBlock
from client.protocol.errors import DfsIsADirectoryError, InvalidArgumentError
from namenode.datanode_manager import DatanodeManager
from namenode.db.models import Block, Datanode, Replica
from namenode.inodes import resolve_checked
from namenode.permissions import FsAction, PermissionChecker
from namenode.states import BLOCK_UC, BLOCK_UNDER_RECOVERY, REPLICA_FINALIZED
from namenode.truncation import uncut_versions

#: Most blocks one answer carries; readers ask again for the rest of a huge range.
MAX_BLOCKS_PER_ANSWER = 1000


class BlockLocator:
    def __init__(
        self,
        datanodes: DatanodeManager,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.datanodes = datanodes
        self.clock = clock
        self.rng = rng or random.Random()

    def locations(
        self, session: Session, path: str, offset: int, length: int | None, checker: PermissionChecker
    ) -> LocatedBlocks:
        """Blocks overlapping [offset, offset + length) of the readable part of a file (r needed)."""
        if offset < 0 or (length is not None and length < 0):
            raise InvalidArgumentError("offset and length must not be negative", path=path)
        inode = resolve_checked(session, path, checker, access=FsAction.READ)
        if inode.is_dir:
            raise DfsIsADirectoryError(f"{path} is a directory", path=path)
        end = inode.length if length is None else min(inode.length, offset + length)
        blocks: list[Block] = []
        if offset < end:
            first = session.scalar(
                select(func.max(Block.offset)).where(Block.inode_id == inode.id, Block.offset <= offset)
            )
            blocks = list(
                session.scalars(
                    select(Block)
                    .where(
                        Block.inode_id == inode.id,
                        Block.offset >= (first or 0),
                        Block.offset < end,
                        Block.state != BLOCK_UC,
                    )
                    # offset order is idx order; ordering by the range's own column lets SQLite walk
                    # ix_blocks_inode_id_offset for just the range (tests/metadata/test_query_plans.py)
                    .order_by(Block.offset, Block.idx)
                    .limit(MAX_BLOCKS_PER_ANSWER)
                )
            )
        return LocatedBlocks(
            file_id=inode.id,
            file_length=inode.length,
            under_construction=inode.under_construction,
            blocks=self._locate(session, blocks),
        )

    def _locate(self, session: Session, blocks: list[Block]) -> list[LocatedBlock]:
        if not blocks:
            return []
        rows = session.execute(
            select(Replica, Datanode)
            .join(Datanode, Datanode.id == Replica.datanode_id)
            .where(Replica.block_id.in_([block.id for block in blocks]))
        )
        by_block: dict[int, list[tuple[Replica, Datanode]]] = defaultdict(list)
        for replica, node in rows:
            by_block[replica.block_id].append((replica, node))
        # A block being cut by a truncate: its uncut replicas hold the kept bytes too, and are
        # asked for at the old stamp (a DataNode serves any stamp at least as new as asked).
        uncut = uncut_versions(session, [block.id for block in blocks if block.state == BLOCK_UNDER_RECOVERY])
        now = self.clock()
        located = []
        for block in blocks:
            good: list[tuple[int, DatanodeRef]] = []
            corrupt: list[DatanodeRef] = []
            old_version = uncut.get(block.id)
            for replica, node in by_block[block.id]:
                state = self.datanodes.state_of(node, now)
                if state is DatanodeState.DEAD:
                    continue
                ref = self.datanodes.ref(node)
                if replica.state == REPLICA_FINALIZED and (
                    (replica.gen_stamp, replica.length) in ((block.gen_stamp, block.length), old_version)
                ):
                    leaving = node.admin_state != AdminState.NORMAL
                    good.append((2 if state is DatanodeState.STALE else int(leaving), ref))
                else:
                    corrupt.append(ref)
            # Spread readers over replicas; decommissioning nodes after in-service ones, stale ones last.
            self.rng.shuffle(good)
            good.sort(key=lambda item: item[0])
            located.append(
                LocatedBlock(
                    block=ExtendedBlock(
                        block_id=block.id, gen_stamp=block.gen_stamp if old_version is None else old_version[0]
                    ),
                    offset=block.offset,
                    length=block.length,
                    locations=[ref for _, ref in good] or corrupt,
                    corrupt=not good and bool(corrupt),
                )
            )
        return located
