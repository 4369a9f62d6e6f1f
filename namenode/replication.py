"""Replication monitor: brings every queued block back to its target number of good replicas.

It works through the durable `replication_queue` in priority order in bounded passes.
For each block it counts good replicas (finalised, right stamp and length, node not
dead), schedules copies from a good holder to new nodes when short, deletes extras
from the fullest nodes when over, and deletes corrupt replicas once enough good ones
exist. Copies are handed to the source DataNode with its next heartbeat, a few at a
time per node, and time out if no replica shows up.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from client.protocol.client_namenode import DatanodeState
from namenode import placement
from namenode.block_manager import BLOCK_UC, REPLICA_FINALIZED
from namenode.config import NameNodeSettings
from namenode.datanode_manager import DatanodeManager
from namenode.db.models import Block, Datanode, Inode, PendingReplication, Replica, ReplicationQueueEntry
from namenode.work_queues import PRIORITY_HIGHEST, PRIORITY_UNDER_REPLICATED, invalidate

log = structlog.get_logger(__name__)

BATCH = 500


@dataclass
class PassStats:
    checked: int = 0
    scheduled: int = 0
    trimmed: int = 0
    missing: int = 0


@dataclass
class _Cluster:
    """One pass's snapshot of node load and liveness."""

    loads: dict[str, placement.NodeLoad]
    states: dict[str, DatanodeState]
    queued_per_source: Counter[str]


class ReplicationMonitor:
    def __init__(
        self,
        settings: NameNodeSettings,
        datanodes: DatanodeManager,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.datanodes = datanodes
        self.clock = clock
        self.rng = rng or random.Random()

    def run_once(self, session: Session) -> PassStats:
        """One bounded pass over the most urgent queue entries."""
        now = self.clock()
        self._expire_pending(session, now)
        nodes = list(session.scalars(select(Datanode)))
        cluster = _Cluster(
            loads={node.id: self.datanodes.load_of(node, now) for node in nodes},
            states={node.id: self.datanodes.state_of(node, now) for node in nodes},
            queued_per_source=Counter(
                dict(
                    session.execute(
                        select(PendingReplication.source_id, func.count()).group_by(PendingReplication.source_id)
                    )
                    .tuples()
                    .all()
                )
            ),
        )
        stats = PassStats()
        entries = session.scalars(
            select(ReplicationQueueEntry)
            .order_by(ReplicationQueueEntry.priority, ReplicationQueueEntry.enqueued_at)
            .limit(BATCH)
        ).all()
        for entry in entries:
            stats.checked += 1
            if self._check(session, entry, cluster, now, stats):
                session.delete(entry)
            else:
                entry.enqueued_at = now  # to the back of its priority class: no starvation
        return stats

    def _expire_pending(self, session: Session, now: float) -> None:
        cutoff = now - self.settings.pending_replication_timeout_s
        session.execute(
            delete(PendingReplication).where(
                or_(
                    and_(PendingReplication.sent_at.is_not(None), PendingReplication.sent_at < cutoff),
                    and_(PendingReplication.sent_at.is_(None), PendingReplication.scheduled_at < cutoff),
                )
            )
        )

    def _check(
        self, session: Session, entry: ReplicationQueueEntry, cluster: _Cluster, now: float, stats: PassStats
    ) -> bool:
        """Act on one block; True when it needs nothing more and can leave the queue."""
        block = session.get(Block, entry.block_id)
        if block is None or block.state == BLOCK_UC:
            return True  # gone, or still being written (completing the file re-queues it)
        inode = session.get(Inode, block.inode_id)
        if inode is None:
            return True
        replicas = list(session.scalars(select(Replica).where(Replica.block_id == block.id)))
        good = [r for r in replicas if self._is_good(r, block, cluster)]
        bad = [
            r
            for r in replicas
            if r.state != REPLICA_FINALIZED or r.gen_stamp != block.gen_stamp or r.length != block.length
        ]
        pending = list(session.scalars(select(PendingReplication).where(PendingReplication.block_id == block.id)))
        if not good:
            stats.missing += 1
            entry.priority = PRIORITY_HIGHEST
            log.error("block has no good replica", block=block.id, file_id=inode.id, replicas=len(replicas))
            return False
        target = inode.replication
        short = target - len(good) - len(pending)
        if short > 0:
            entry.priority = PRIORITY_HIGHEST if len(good) == 1 else PRIORITY_UNDER_REPLICATED
            stats.scheduled += self._schedule_copies(session, block, replicas, good, pending, short, cluster, now)
            return False
        if len(good) > target:
            excess = placement.choose_excess([cluster.loads[r.datanode_id] for r in good], keep=target)
            self._drop(session, block, {node.id for node in excess}, now)
            stats.trimmed += len(excess)
        if bad and len(good) >= target:
            self._drop(session, block, {r.datanode_id for r in bad}, now)
            stats.trimmed += len(bad)
        return not pending and len(good) >= target

    def _is_good(self, replica: Replica, block: Block, cluster: _Cluster) -> bool:
        return (
            replica.state == REPLICA_FINALIZED
            and replica.gen_stamp == block.gen_stamp
            and replica.length == block.length
            and cluster.states.get(replica.datanode_id, DatanodeState.DEAD) is not DatanodeState.DEAD
        )

    def _schedule_copies(
        self,
        session: Session,
        block: Block,
        replicas: list[Replica],
        good: list[Replica],
        pending: list[PendingReplication],
        count: int,
        cluster: _Cluster,
        now: float,
    ) -> int:
        holders = [cluster.loads[r.datanode_id] for r in good]
        holders = [n for n in holders if cluster.queued_per_source[n.id] < 2 * self.settings.max_replication_streams]
        source = placement.choose_source(holders, self.rng)
        if source is None:
            return 0
        exclude = {r.datanode_id for r in replicas} | {p.target_id for p in pending}
        targets = placement.choose_targets(
            list(cluster.loads.values()), count, block_size=block.length, exclude=exclude, rng=self.rng
        )
        for target in targets:
            session.add(
                PendingReplication(
                    block_id=block.id,
                    target_id=target.id,
                    source_id=source.id,
                    scheduled_at=now,
                    sent_at=None,
                )
            )
            cluster.queued_per_source[source.id] += 1
        return len(targets)

    def _drop(self, session: Session, block: Block, node_ids: set[str], now: float) -> None:
        if not node_ids:
            return
        rows = list(
            session.scalars(select(Replica).where(Replica.block_id == block.id, Replica.datanode_id.in_(node_ids)))
        )
        invalidate(session, [(r.datanode_id, r.block_id, r.gen_stamp) for r in rows], now)
        for row in rows:
            session.delete(row)
