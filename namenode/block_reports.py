"""Reconciling what DataNodes say they store with the block map.

Full reports arrive in pages; each reported replica is stamped with the report id, and
when the last page arrives every replica row of that node the report did not mention
is forgotten. Incremental reports stamp with the node's current report id so that a
block finalised during a full report is not forgotten by it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from client.protocol.datanode_namenode import (
    BlockReportRequest,
    IncrementalReportRequest,
    ReplicaState,
    ReportedReplica,
)
from client.protocol.errors import InvalidArgumentError, UnknownDatanodeError
from namenode.db.models import Block, Datanode, PendingReplication, Replica
from namenode.replication import is_intact
from namenode.states import (
    BLOCK_COMMITTED,
    BLOCK_COMPLETE,
    BLOCK_UC,
    REPLICA_CORRUPT,
    REPLICA_FINALIZED,
    STATE_DEAD,
)
from namenode.work_queues import enqueue_blocks, invalidate

if TYPE_CHECKING:
    from namenode.truncation import Truncations

log = structlog.get_logger(__name__)

CHUNK = 2000


class BlockReportProcessor:
    def __init__(
        self,
        min_replication: int,
        good_replica_counts: Callable[[Session, Iterable[Block]], dict[int, int]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.min_replication = min_replication
        self.good_replica_counts = good_replica_counts
        self.clock = clock
        #: Told the bytes of every balancer move that completes (the balancer's progress).
        self.on_move_done: Callable[[int], None] | None = None
        #: Judges reports of blocks being cut by a truncate (set by the NameNode).
        self.truncations: Truncations | None = None

    def _node(self, session: Session, datanode_id: str) -> Datanode:
        node = session.get(Datanode, datanode_id)
        if node is None or node.state == STATE_DEAD:
            raise UnknownDatanodeError(f"DataNode {datanode_id} must register before reporting blocks")
        return node

    def full_report(self, session: Session, request: BlockReportRequest) -> None:
        node = self._node(session, request.datanode_id)
        if request.page == 0:
            node.current_report_id = request.report_id
        elif node.current_report_id != request.report_id:
            raise InvalidArgumentError(
                f"page {request.page} of report {request.report_id} arrived, but report "
                f"{node.current_report_id} is in progress; restart the report"
            )
        for start in range(0, len(request.replicas), CHUNK):
            self._apply(session, node, request.replicas[start : start + CHUNK], request.report_id)
        if request.last:
            self._forget_unreported(session, node, request.report_id)

    def incremental_report(self, session: Session, request: IncrementalReportRequest) -> None:
        node = self._node(session, request.datanode_id)
        for start in range(0, len(request.received), CHUNK):
            self._apply(session, node, request.received[start : start + CHUNK], node.current_report_id)
        now = self.clock()
        gone = []
        for deleted in request.deleted:
            replica = session.get(Replica, (deleted.block_id, node.id))
            if replica is not None and replica.gen_stamp <= deleted.gen_stamp:
                session.delete(replica)
                gone.append(deleted.block_id)
        enqueue_blocks(session, gone, now)

    def _apply(
        self, session: Session, node: Datanode, reported: Sequence[ReportedReplica], report_id: str | None
    ) -> None:
        now = self.clock()
        ids = [replica.block_id for replica in reported]
        blocks = {block.id: block for block in session.scalars(select(Block).where(Block.id.in_(ids)))}
        known = {
            replica.block_id: replica
            for replica in session.scalars(
                select(Replica).where(Replica.datanode_id == node.id, Replica.block_id.in_(ids))
            )
        }
        doomed: list[tuple[str, int, int]] = []
        changed: list[int] = []
        truncations = self.truncations
        cutting = truncations.cutting(session, ids) if truncations is not None else {}
        for entry in reported:
            block = blocks.get(entry.block_id)
            existing = known.get(entry.block_id)
            pending = cutting.get(entry.block_id)
            if (
                block is not None
                and pending is not None
                and truncations is not None
                and truncations.absorb(session, node, block, pending, existing, entry, report_id)
            ):
                continue  # a replica still to be cut by a truncate, or being cut: kept
            if block is None or entry.gen_stamp < block.gen_stamp:
                # Deleted file, or a replica left behind by a pipeline that moved on.
                doomed.append((node.id, entry.block_id, entry.gen_stamp))
                if existing is not None:
                    session.delete(existing)
                    changed.append(entry.block_id)
                continue
            if entry.gen_stamp > block.gen_stamp:
                log.warning("replica newer than the block map", block=block.id, datanode=node.id)
                continue
            if entry.state is ReplicaState.RBW:
                if block.state != BLOCK_UC:
                    doomed.append((node.id, entry.block_id, entry.gen_stamp))
                continue
            state = REPLICA_FINALIZED
            if block.state != BLOCK_UC and entry.length != block.length:
                state = REPLICA_CORRUPT
            if existing is None:
                session.add(
                    Replica(
                        block_id=block.id,
                        datanode_id=node.id,
                        gen_stamp=entry.gen_stamp,
                        length=entry.length,
                        state=state,
                        report_id=report_id,
                    )
                )
                changed.append(block.id)
            else:
                if existing.state != REPLICA_CORRUPT:
                    existing.state = state
                existing.gen_stamp = entry.gen_stamp
                existing.length = entry.length
                existing.report_id = report_id
            if block.state == BLOCK_COMMITTED and state == REPLICA_FINALIZED:
                self._maybe_complete(session, block)
            elif pending is not None and truncations is not None and state == REPLICA_FINALIZED:
                truncations.replica_cut(session, block, pending)
        invalidate(session, doomed, now)
        if changed:
            self._finish_moves(session, node, changed, now)
            # A copy the replication monitor asked for has arrived.
            session.execute(
                delete(PendingReplication).where(
                    PendingReplication.target_id == node.id, PendingReplication.block_id.in_(changed)
                )
            )
        enqueue_blocks(session, [bid for bid in changed if bid in blocks and blocks[bid].state != BLOCK_UC], now)

    def _finish_moves(self, session: Session, node: Datanode, block_ids: list[int], now: float) -> None:
        """A balancer move landed on `node`: the source's replica goes (the block keeps its count)."""
        moves = session.scalars(
            select(PendingReplication).where(
                PendingReplication.target_id == node.id,
                PendingReplication.block_id.in_(block_ids),
                PendingReplication.is_move.is_(True),
            )
        ).all()
        for move in moves:
            block = session.get(Block, move.block_id)
            arrived = session.get(Replica, (move.block_id, node.id))
            source = session.get(Replica, (move.block_id, move.source_id))
            if block is None or arrived is None or source is None or not is_intact(arrived, block):
                continue  # keep the source's copy: the new one is not (yet) a good replacement
            invalidate(session, [(source.datanode_id, source.block_id, source.gen_stamp)], now)
            session.delete(source)
            if self.on_move_done is not None:
                self.on_move_done(block.length)

    def _maybe_complete(self, session: Session, block: Block) -> None:
        session.flush()
        if self.good_replica_counts(session, [block])[block.id] >= self.min_replication:
            block.state = BLOCK_COMPLETE

    def _forget_unreported(self, session: Session, node: Datanode, report_id: str) -> None:
        stale = or_(Replica.report_id.is_(None), Replica.report_id != report_id)
        block_ids = list(session.scalars(select(Replica.block_id).where(Replica.datanode_id == node.id, stale)))
        if block_ids:
            session.execute(delete(Replica).where(Replica.datanode_id == node.id, stale))
            enqueue_blocks(session, block_ids, self.clock())
            log.info("replicas missing from block report", datanode=node.id, count=len(block_ids))
