"""Replication monitor: brings every queued block back to its target number of well-placed replicas.

It works through the durable `replication_queue` in priority order, in bounded passes.
For each block it counts *good* replicas: finalised, right stamp and length, on a node
that is not dead and is in service (replicas on decommissioning nodes serve reads and
copies but do not count). Then:

- short of target: copy from a holder with the fewest transfers to new nodes chosen by
  the placement policy (a second rack first);
- enough replicas but all on one rack while the cluster has several: copy one to another
  rack (the now-excess replica is trimmed on a later pass, keeping the spread);
- over target: delete extras, never the last replica of a rack, fullest node first;
- corrupt or stale replicas: deleted once the good ones reach the target, or at once when
  they hold nodes a copy needs (good + bad above target, at least `min_replication` good).

Copies are handed to the source DataNode with its heartbeats, a few at a time per node
and within the cluster-wide bandwidth budget (datanode_manager), and time out if no
replica arrives. Decommissioning nodes become decommissioned once every block they hold
has its full replication elsewhere.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from client.protocol.client_namenode import AdminState, DatanodeState, EventKind, EventSeverity
from namenode import placement
from namenode.config import NameNodeSettings
from namenode.datanode_manager import DatanodeManager
from namenode.db.models import (
    Block,
    Datanode,
    Inode,
    PendingReplication,
    PendingTruncation,
    Replica,
    ReplicationQueueEntry,
)
from namenode.events import EventLog
from namenode.inodes import path_of
from namenode.states import BLOCK_COMPLETE, BLOCK_UC, REPLICA_FINALIZED
from namenode.work_queues import invalidate, priority_for

log = structlog.get_logger(__name__)

BATCH = 500


@dataclass
class PassStats:
    checked: int = 0
    scheduled: int = 0
    trimmed: int = 0
    missing: int = 0
    #: Blocks that got at least one copy scheduled in this pass.
    blocks_copied: int = 0


@dataclass
class ClusterView:
    """One pass's snapshot of every DataNode: load, liveness and service state."""

    loads: dict[str, placement.NodeLoad]
    states: dict[str, DatanodeState]
    admin: dict[str, AdminState]
    queued_per_source: Counter[str]
    #: Blocks whose replicas a truncate is still cutting (`pending_truncations`).
    cutting: set[int] = field(default_factory=set)

    @property
    def racks_available(self) -> int:
        return len({load.rack for load in self.loads.values() if load.usable})

    def counts(self, node_id: str) -> bool:
        """Does a replica on this node count toward the target?"""
        return (
            self.states.get(node_id, DatanodeState.DEAD) is not DatanodeState.DEAD
            and self.admin.get(node_id) is AdminState.NORMAL
        )

    def can_source(self, node_id: str) -> bool:
        return self.states.get(node_id) is DatanodeState.LIVE


def is_intact(replica: Replica, block: Block) -> bool:
    """The replica holds exactly this version of the block."""
    return (
        replica.state == REPLICA_FINALIZED and replica.gen_stamp == block.gen_stamp and replica.length == block.length
    )


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
        #: Blocks already reported missing, so the log says so once per loss, not every pass.
        self.missing: set[int] = set()
        self.events = EventLog(clock=clock)
        #: Blocks given copies since the queue was last empty (for the `replication_finished` event).
        self.blocks_copied_since_empty = 0

    def view(self, session: Session) -> ClusterView:
        now = self.clock()
        nodes = list(session.scalars(select(Datanode)))
        queued = session.execute(
            select(PendingReplication.source_id, func.count()).group_by(PendingReplication.source_id)
        )
        return ClusterView(
            loads={node.id: self.datanodes.load_of(node, now) for node in nodes},
            states={node.id: self.datanodes.state_of(node, now) for node in nodes},
            admin={node.id: AdminState(node.admin_state) for node in nodes},
            queued_per_source=Counter(dict(queued.all())),
            cutting=set(session.scalars(select(PendingTruncation.block_id))),
        )

    def run_once(self, session: Session) -> PassStats:
        """One bounded pass over the most urgent queue entries, then decommission progress."""
        now = self.clock()
        self._expire_pending(session, now)
        cluster = self.view(session)
        stats = PassStats()
        entries = session.scalars(
            select(ReplicationQueueEntry)
            .order_by(ReplicationQueueEntry.priority, ReplicationQueueEntry.enqueued_at)
            .limit(BATCH)
        ).all()
        for entry in entries:
            stats.checked += 1
            scheduled = stats.scheduled
            if self._check(session, entry, cluster, now, stats):
                session.delete(entry)
            else:
                entry.enqueued_at = now  # to the back of its priority class: no starvation
            stats.blocks_copied += stats.scheduled > scheduled
        self._advance_decommissions(session, cluster)
        self._note_drained(session, stats)
        return stats

    def _note_drained(self, session: Session, stats: PassStats) -> None:
        """One event when the queue empties after copies were made (not one per block)."""
        self.blocks_copied_since_empty += stats.blocks_copied
        if self.blocks_copied_since_empty == 0:
            return
        if session.scalar(select(ReplicationQueueEntry.block_id).limit(1)) is not None:
            return
        self.events.record(
            session,
            EventKind.REPLICATION_FINISHED,
            f"re-replication finished: the replication queue is empty again "
            f"({self.blocks_copied_since_empty} blocks were given new replicas)",
        )
        self.blocks_copied_since_empty = 0

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

    # --- one block ---------------------------------------------------------------------------

    def _check(
        self, session: Session, entry: ReplicationQueueEntry, cluster: ClusterView, now: float, stats: PassStats
    ) -> bool:
        """Act on one block; True when it needs nothing more and can leave the queue."""
        block = session.get(Block, entry.block_id)
        if block is None or block.state == BLOCK_UC or block.id in cluster.cutting:
            # Gone, still being written (closing the file re-queues it), or its replicas are being
            # cut by a truncate (the truncation re-queues it once that is over).
            return True
        inode = session.get(Inode, block.inode_id)
        if inode is None:
            return True
        replicas = list(session.scalars(select(Replica).where(Replica.block_id == block.id)))
        intact = [r for r in replicas if is_intact(r, block)]
        good = [r for r in intact if cluster.counts(r.datanode_id)]
        bad = [r for r in replicas if not is_intact(r, block)]
        pending = list(session.scalars(select(PendingReplication).where(PendingReplication.block_id == block.id)))
        target = inode.replication
        racks = [cluster.loads[r.datanode_id].rack for r in good]
        mis_replicated = placement.is_mis_replicated(racks, target, cluster.racks_available)
        entry.priority = priority_for(len(good), target, mis_replicated=mis_replicated)
        sources = [r for r in intact if cluster.can_source(r.datanode_id)]
        if not sources and not good:
            stats.missing += 1
            if block.id not in self.missing:
                self.missing.add(block.id)
                log.error(
                    "MISSING BLOCK: no readable replica left", block=block.id, file_id=inode.id, replicas=len(replicas)
                )
                self.events.record(
                    session,
                    EventKind.MISSING_BLOCK,
                    f"block {block.id} has no readable replica left: reads of its file fail",
                    severity=EventSeverity.ERROR,
                    path=path_of(session, inode),
                    block_id=block.id,
                )
            return False
        if block.id in self.missing:
            self.missing.discard(block.id)
            log.warning("missing block has a readable replica again", block=block.id, file_id=inode.id)
            self.events.record(
                session,
                EventKind.MISSING_BLOCK_RECOVERED,
                f"block {block.id} has a readable replica again",
                path=path_of(session, inode),
                block_id=block.id,
            )
        if bad and len(good) >= self.settings.min_replication and len(good) + len(bad) > target:
            # Bad replicas occupy nodes a copy could go to (on a small cluster, every free one): with
            # enough good replicas to copy from they are worth nothing, so free their nodes first (HDFS
            # does the same); otherwise a block with two of three replicas corrupt on four nodes is stuck.
            self._drop(session, block, {r.datanode_id for r in bad}, now)
            stats.trimmed += len(bad)
            return False
        short = target - len(good) - len(pending)
        if short > 0 or (mis_replicated and not pending and len(good) >= target):
            stats.scheduled += self._schedule_copies(
                session,
                block,
                replicas,
                sources,
                racks,
                pending,
                max(short, 1),
                cluster,
                now,
                new_rack_only=short <= 0,
            )
            return False
        if pending:
            return False
        if len(good) > target:
            excess = placement.choose_excess([cluster.loads[r.datanode_id] for r in good], keep=target)
            self._drop(session, block, {node.id for node in excess}, now)
            stats.trimmed += len(excess)
        if bad and len(good) >= target:
            self._drop(session, block, {r.datanode_id for r in bad}, now)
            stats.trimmed += len(bad)
        return len(good) >= target and not mis_replicated

    def _schedule_copies(
        self,
        session: Session,
        block: Block,
        replicas: list[Replica],
        sources: list[Replica],
        racks: list[str],
        pending: list[PendingReplication],
        count: int,
        cluster: ClusterView,
        now: float,
        *,
        new_rack_only: bool = False,
    ) -> int:
        """Schedule up to `count` copies; with `new_rack_only` (fixing rack spread) only to a rack the
        block is not on yet, or none at all (placement would otherwise fall back to the same rack)."""
        limit = 2 * self.settings.max_replication_streams
        holders = [cluster.loads[r.datanode_id] for r in sources if cluster.queued_per_source[r.datanode_id] < limit]
        # Prefer in-service holders; a decommissioning node is a source only when it must be.
        in_service = [h for h in holders if cluster.admin.get(h.id) is AdminState.NORMAL]
        source = placement.choose_source(in_service, self.rng) or _any_live(holders, self.rng)
        if source is None:
            return 0
        exclude = {r.datanode_id for r in replicas} | {p.target_id for p in pending}
        targets = placement.choose_targets(
            list(cluster.loads.values()),
            count,
            block_size=block.length,
            exclude=exclude,
            existing_racks=racks + [cluster.loads[p.target_id].rack for p in pending if p.target_id in cluster.loads],
            rng=self.rng,
        )
        if new_rack_only:
            targets = [t for t in targets if t.rack not in racks]
        for target in targets:
            session.add(
                PendingReplication(
                    block_id=block.id, target_id=target.id, source_id=source.id, scheduled_at=now, sent_at=None
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

    # --- decommissioning ---------------------------------------------------------------------

    def _advance_decommissions(self, session: Session, cluster: ClusterView) -> None:
        leaving = [node_id for node_id, admin in cluster.admin.items() if admin is AdminState.DECOMMISSIONING]
        for node_id in leaving:
            if self.blocks_still_needing(session, node_id, cluster) == 0:
                node = session.get(Datanode, node_id)
                assert node is not None
                node.admin_state = AdminState.DECOMMISSIONED.value
                log.info("datanode decommissioned", datanode=node_id)
                self.events.record(
                    session,
                    EventKind.DECOMMISSION_FINISHED,
                    f"DataNode {node.url} decommissioned: every block it holds is fully replicated elsewhere",
                    datanode_id=node_id,
                )

    def blocks_still_needing(self, session: Session, node_id: str, cluster: ClusterView, limit: int = 1) -> int:
        """How many (up to `limit`) blocks on this node lack their full replication elsewhere."""
        found = 0
        block_ids = list(session.scalars(select(Replica.block_id).where(Replica.datanode_id == node_id)))
        for start in range(0, len(block_ids), 1000):
            chunk = block_ids[start : start + 1000]
            rows = session.execute(
                select(Block, Inode.replication)
                .join(Inode, Inode.id == Block.inode_id)
                .where(Block.id.in_(chunk), Block.state == BLOCK_COMPLETE)
            )
            wanted = {block.id: (block, replication) for block, replication in rows}
            counted: Counter[int] = Counter()
            for replica in session.scalars(select(Replica).where(Replica.block_id.in_(list(wanted)))):
                block, _ = wanted[replica.block_id]
                if is_intact(replica, block) and cluster.counts(replica.datanode_id):
                    counted[replica.block_id] += 1
            found += sum(1 for block_id, (_, target) in wanted.items() if counted[block_id] < target)
            if found >= limit:
                return found
        return found


def _any_live(holders: list[placement.NodeLoad], rng: random.Random) -> placement.NodeLoad | None:
    if not holders:
        return None
    return min(rng.sample(holders, len(holders)), key=lambda n: n.active_transfers)
