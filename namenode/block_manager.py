"""The block map's write side: allocating blocks, committing them, completing files, freeing blocks.

Block life: ``under_construction`` (allocated, pipeline streaming) -> ``committed`` (the
writer reported the length every pipeline node acknowledged) -> ``complete`` (at least
`min_replication` DataNodes reported a finalised replica of that length and stamp).
A file completes once all of its blocks are complete.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterable

import structlog
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from client.protocol.client_namenode import (
    AbandonBlockRequest,
    AddBlockRequest,
    CommittedBlock,
    CompleteRequest,
    CompleteResponse,
    EventKind,
    EventSeverity,
    LocatedBlock,
    RecoverPipelineRequest,
    ReportBadBlocksRequest,
)
from client.protocol.common import ExtendedBlock
from client.protocol.data_transfer import MAX_PIPELINE_LENGTH
from client.protocol.errors import (
    InvalidArgumentError,
    NotEnoughDatanodesError,
)
from namenode import placement
from namenode.config import NameNodeSettings
from namenode.datanode_manager import DatanodeManager
from namenode.db.models import Block, Datanode, Inode, PendingReplication, Replica
from namenode.events import EventLog
from namenode.inodes import path_of, to_status
from namenode.leases import LeaseManager
from namenode.states import (
    BLOCK_COMMITTED,
    BLOCK_COMPLETE,
    BLOCK_UC,
    REPLICA_CORRUPT,
    REPLICA_FINALIZED,
    STATE_LIVE,
)
from namenode.work_queues import PRIORITY_HIGHEST, PRIORITY_UNDER_REPLICATED, enqueue_blocks, invalidate

log = structlog.get_logger(__name__)


class BlockManager:
    """Allocation, commit and completion of blocks; every method runs inside the caller's transaction."""

    def __init__(
        self,
        settings: NameNodeSettings,
        datanodes: DatanodeManager,
        leases: LeaseManager,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.datanodes = datanodes
        self.leases = leases
        self.clock = clock
        self.rng = rng or random.Random()
        self.events = EventLog(clock=clock)
        #: Records the replicas a commit's receipts vouch for (namenode.replica_receipts; set by the NameNode).
        self.record_receipts: Callable[[Session, Block, CommittedBlock], None] | None = None

    # --- queries ---------------------------------------------------------------------------

    @staticmethod
    def last_block(session: Session, inode_id: int) -> Block | None:
        return session.scalars(select(Block).where(Block.inode_id == inode_id).order_by(Block.idx.desc())).first()

    def good_replica_counts(self, session: Session, blocks: Iterable[Block]) -> dict[int, int]:
        """Finalised replicas with the block's stamp and length on nodes not dead, per block."""
        wanted = {block.id: block for block in blocks}
        if not wanted:
            return {}
        cutoff = self.clock() - self.settings.dead_after_s
        rows = session.execute(
            select(Replica.block_id, Replica.gen_stamp, Replica.length)
            .join(Datanode, Datanode.id == Replica.datanode_id)
            .where(
                Replica.block_id.in_(wanted),
                Replica.state == REPLICA_FINALIZED,
                Datanode.state == STATE_LIVE,
                Datanode.last_heartbeat >= cutoff,
            )
        )
        counts: Counter[int] = Counter()
        for block_id, gen_stamp, length in rows:
            block = wanted[block_id]
            if gen_stamp == block.gen_stamp and (block.state == BLOCK_UC or length == block.length):
                counts[block_id] += 1
        return {block_id: counts.get(block_id, 0) for block_id in wanted}

    # --- allocation ------------------------------------------------------------------------

    def add_block(self, session: Session, request: AddBlockRequest, writer_host: str | None = None) -> LocatedBlock:
        inode = self.leases.check(session, request.file_id, request.client_name, request.path)
        last = self.last_block(session, inode.id)
        if request.previous is not None:
            if last is None:
                raise InvalidArgumentError(f"{request.path} has no block {request.previous.block_id}")
            if last.id != request.previous.block_id:
                retried = self._retried_allocation(session, last, request.previous)
                if retried is not None:
                    return retried
                raise InvalidArgumentError(
                    f"previous block {request.previous.block_id} is not the last block of {request.path}"
                )
            self._commit(session, inode, last, request.previous)
        elif last is not None and last.state == BLOCK_UC:
            if last.idx == 0 and not self._has_replicas(session, last.id):
                return self._located(session, last)  # a retried first allocation
            raise InvalidArgumentError(f"the last block of {request.path} must be committed first")
        targets = placement.choose_targets(
            self.datanodes.all_loads(session),
            min(inode.replication, MAX_PIPELINE_LENGTH),  # beyond that the monitor copies after complete
            block_size=inode.block_size,
            exclude=set(request.excluded_nodes),
            writer_host=writer_host,
            rng=self.rng,
        )
        if not targets:
            raise NotEnoughDatanodesError(
                f"no live DataNode with room for a {inode.block_size}-byte block "
                f"(excluded: {len(request.excluded_nodes)})",
                path=request.path,
            )
        block = Block(
            inode_id=inode.id,
            idx=0 if last is None else last.idx + 1,
            offset=inode.length,
            length=0,
            gen_stamp=1,
            state=BLOCK_UC,
            pipeline=",".join(target.id for target in targets),
        )
        session.add(block)
        session.flush()
        return self._located(session, block)

    def _retried_allocation(self, session: Session, last: Block, previous: CommittedBlock) -> LocatedBlock | None:
        """add_block answered but the answer was lost: hand out the same new block again."""
        if last.state != BLOCK_UC or self._has_replicas(session, last.id):
            return None
        before = session.scalars(
            select(Block).where(Block.inode_id == last.inode_id, Block.idx == last.idx - 1)
        ).first()
        if before is None or before.id != previous.block_id or before.length != previous.length:
            return None
        return self._located(session, last)

    @staticmethod
    def _has_replicas(session: Session, block_id: int) -> bool:
        return session.scalar(select(Replica.block_id).where(Replica.block_id == block_id).limit(1)) is not None

    def _located(self, session: Session, block: Block) -> LocatedBlock:
        ids = [node_id for node_id in block.pipeline.split(",") if node_id]
        nodes = self.datanodes.nodes_by_id(session, ids)
        return LocatedBlock(
            block=ExtendedBlock(block_id=block.id, gen_stamp=block.gen_stamp),
            offset=block.offset,
            length=block.length,
            locations=[self.datanodes.ref(nodes[node_id]) for node_id in ids if node_id in nodes],
        )

    def abandon_block(self, session: Session, request: AbandonBlockRequest) -> None:
        """Drop the last, still empty block (the writer could not start any pipeline for it)."""
        inode = self.leases.check(session, request.file_id, request.client_name, request.path)
        last = self.last_block(session, inode.id)
        if last is None or last.id != request.block.block_id or last.state != BLOCK_UC:
            raise InvalidArgumentError(f"block {request.block.block_id} is not the block being written")
        self.remove_blocks(session, [last])

    def recover_pipeline(self, session: Session, request: RecoverPipelineRequest) -> LocatedBlock:
        """Continue a block on the surviving nodes under a new generation stamp."""
        inode = self.leases.check(session, request.file_id, request.client_name, request.path)
        last = self.last_block(session, inode.id)
        if last is None or last.id != request.block.block_id or last.state != BLOCK_UC:
            raise InvalidArgumentError(f"block {request.block.block_id} is not the block being written")
        if request.block.gen_stamp != last.gen_stamp:
            raise InvalidArgumentError(
                f"block {last.id} is at generation {last.gen_stamp}, not {request.block.gen_stamp}"
            )
        survivors = self.datanodes.nodes_by_id(session, request.surviving)
        unknown = set(request.surviving) - set(survivors)
        if unknown:
            raise InvalidArgumentError(f"unknown DataNodes in pipeline: {sorted(unknown)}")
        now = self.clock()
        old_pipeline = [node_id for node_id in last.pipeline.split(",") if node_id]
        # Whatever the failed nodes hold is stale from now on.
        invalidate(
            session,
            [(node_id, last.id, last.gen_stamp) for node_id in old_pipeline if node_id not in survivors],
            now,
        )
        session.execute(delete(Replica).where(Replica.block_id == last.id))
        last.gen_stamp += 1
        last.pipeline = ",".join(request.surviving)
        log.info("pipeline recovered", block=last.id, gen_stamp=last.gen_stamp, nodes=request.surviving)
        return self._located(session, last)

    # --- commit and completion -------------------------------------------------------------

    def _commit(self, session: Session, inode: Inode, block: Block, committed: CommittedBlock) -> None:
        if block.state != BLOCK_UC:
            if block.gen_stamp == committed.gen_stamp and block.length == committed.length:
                return  # a retried commit
            raise InvalidArgumentError(f"block {block.id} is already committed with another length")
        if committed.gen_stamp != block.gen_stamp:
            raise InvalidArgumentError(
                f"block {block.id} is at generation {block.gen_stamp}, the writer reported {committed.gen_stamp}"
            )
        if committed.length > inode.block_size:
            raise InvalidArgumentError(
                f"block {block.id} length {committed.length} exceeds the block size {inode.block_size}"
            )
        if committed.replicas and self.record_receipts is not None:
            self.record_receipts(session, block, committed)
        block.length = committed.length
        block.state = BLOCK_COMMITTED
        block.pipeline = ""
        inode.length = block.offset + block.length
        session.execute(
            update(Replica)
            .where(Replica.block_id == block.id, Replica.state == REPLICA_FINALIZED, Replica.length != block.length)
            .values(state=REPLICA_CORRUPT)
        )
        if self.good_replica_counts(session, [block])[block.id] >= self.settings.min_replication:
            block.state = BLOCK_COMPLETE

    def complete(self, session: Session, request: CompleteRequest) -> CompleteResponse:
        inode = session.get(Inode, request.file_id)
        if inode is not None and not inode.under_construction and self._is_retried_complete(session, inode, request):
            return CompleteResponse(completed=True, status=to_status(inode, request.path))
        inode = self.leases.check(session, request.file_id, request.client_name, request.path)
        last = self.last_block(session, inode.id)
        if request.last is not None:
            if last is None or last.id != request.last.block_id:
                raise InvalidArgumentError(f"block {request.last.block_id} is not the last block of {request.path}")
            self._commit(session, inode, last, request.last)
        elif last is not None and last.state == BLOCK_UC:
            raise InvalidArgumentError(f"the last block of {request.path} was never committed")
        if not self._complete_blocks(session, inode):
            return CompleteResponse(completed=False)
        self.close_file(session, inode)
        return CompleteResponse(completed=True, status=to_status(inode, request.path))

    def _is_retried_complete(self, session: Session, inode: Inode, request: CompleteRequest) -> bool:
        last = self.last_block(session, inode.id)
        if request.last is None:
            return last is None
        return last is not None and last.id == request.last.block_id and last.length == request.last.length

    def _complete_blocks(self, session: Session, inode: Inode) -> bool:
        """Promote committed blocks that now have enough replicas; True if all are complete."""
        waiting = list(session.scalars(select(Block).where(Block.inode_id == inode.id, Block.state != BLOCK_COMPLETE)))
        counts = self.good_replica_counts(session, waiting)
        done = True
        for block in waiting:
            if block.state == BLOCK_COMMITTED and counts[block.id] >= self.settings.min_replication:
                block.state = BLOCK_COMPLETE
            else:
                done = False
        return done

    def close_file(self, session: Session, inode: Inode) -> None:
        """Finish a file: no longer under construction, lease released, replication checked."""
        now = self.clock()
        inode.under_construction = False
        inode.mtime = int(now * 1000)
        self.leases.release(session, inode.id)
        blocks = list(session.scalars(select(Block).where(Block.inode_id == inode.id)))
        counts = self.good_replica_counts(session, blocks)
        short = [block_id for block_id, count in counts.items() if count < inode.replication]
        enqueue_blocks(session, short, now, PRIORITY_UNDER_REPLICATED)

    def recover_file(self, session: Session, inode_id: int) -> None:
        """Lease recovery: keep every block some DataNode finalised, drop the unfinished tail, close."""
        inode = session.get(Inode, inode_id)
        if inode is None:
            return
        if not inode.under_construction:
            self.leases.release(session, inode_id)
            return
        dropped: list[Block] = []
        for block in session.scalars(
            select(Block).where(Block.inode_id == inode.id, Block.state != BLOCK_COMPLETE).order_by(Block.idx)
        ):
            if block.state == BLOCK_COMMITTED:
                block.state = BLOCK_COMPLETE
                continue
            lengths = Counter(
                session.scalars(
                    select(Replica.length).where(
                        Replica.block_id == block.id,
                        Replica.state == REPLICA_FINALIZED,
                        Replica.gen_stamp == block.gen_stamp,
                        Replica.length <= inode.block_size,  # longer cannot be a copy of this block
                    )
                )
            )
            if not lengths:
                dropped.append(block)
                continue
            length = max(lengths, key=lambda value: (lengths[value], value))
            self._commit(
                session,
                inode,
                block,
                CommittedBlock(block_id=block.id, gen_stamp=block.gen_stamp, length=length),
            )
            block.state = BLOCK_COMPLETE
        self.remove_blocks(session, dropped)
        inode.length = (
            session.scalar(select(func.coalesce(func.sum(Block.length), 0)).where(Block.inode_id == inode.id)) or 0
        )
        self.close_file(session, inode)
        log.warning("lease recovered", file_id=inode.id, length=inode.length, dropped_blocks=len(dropped))

    # --- freeing ---------------------------------------------------------------------------

    def remove_blocks(self, session: Session, blocks: Iterable[Block]) -> int:
        """Delete blocks from the map and schedule their replicas for deletion on the DataNodes."""
        blocks = list(blocks)
        if not blocks:
            return 0
        ids = [block.id for block in blocks]
        doomed: set[tuple[str, int, int]] = {
            (node_id, block_id, gen_stamp)
            for node_id, block_id, gen_stamp in session.execute(
                select(Replica.datanode_id, Replica.block_id, Replica.gen_stamp).where(Replica.block_id.in_(ids))
            )
        }
        for block in blocks:
            doomed.update((node_id, block.id, block.gen_stamp) for node_id in block.pipeline.split(",") if node_id)
        invalidate(session, doomed, self.clock())
        session.execute(delete(Block).where(Block.id.in_(ids)))
        return len(ids)

    def remove_file_blocks(self, session: Session, inode_ids: list[int]) -> int:
        """Free every block of these files (they are being deleted or overwritten)."""
        removed = 0
        for start in range(0, len(inode_ids), 500):
            chunk = inode_ids[start : start + 500]
            removed += self.remove_blocks(session, session.scalars(select(Block).where(Block.inode_id.in_(chunk))))
        return removed

    def report_bad_blocks(self, session: Session, request: ReportBadBlocksRequest) -> None:
        """A reader or a DataNode found a replica whose bytes do not match their checksums."""
        now = self.clock()
        for bad in request.replicas:
            block = session.get(Block, bad.block.block_id)
            if block is None or block.gen_stamp != bad.block.gen_stamp:
                continue
            if session.get(Datanode, bad.datanode_id) is None:
                continue
            replica = session.get(Replica, (block.id, bad.datanode_id))
            if replica is None:
                session.add(
                    Replica(
                        block_id=block.id,
                        datanode_id=bad.datanode_id,
                        gen_stamp=block.gen_stamp,
                        length=block.length,
                        state=REPLICA_CORRUPT,
                    )
                )
            else:
                replica.state = REPLICA_CORRUPT
            # A copy from this replica fails its checksums at the source and never arrives: forget it
            # now, or the block waits out pending_replication_timeout_s before another source is tried.
            session.execute(
                delete(PendingReplication).where(
                    PendingReplication.block_id == block.id, PendingReplication.source_id == bad.datanode_id
                )
            )
            log.warning("corrupt replica reported", block=block.id, datanode=bad.datanode_id, reason=bad.reason)
            inode = session.get(Inode, block.inode_id)
            self.events.record(
                session,
                EventKind.CORRUPT_REPLICA,
                f"corrupt replica of block {block.id}: {bad.reason}",
                severity=EventSeverity.WARNING,
                datanode_id=bad.datanode_id,
                path=path_of(session, inode) if inode is not None else None,
                block_id=block.id,
            )
            enqueue_blocks(session, [block.id], now, PRIORITY_HIGHEST)
