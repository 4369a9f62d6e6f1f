"""Balancer: moves replicas from over-used to under-used DataNodes until all are near the average.

`dfs balancer` starts it on the NameNode and follows its progress; it runs in *waves*:
plan moves worth about WAVE_SECONDS of the bandwidth budget, let them finish (each is a
copy to the target, after which the source's replica is deleted), wait for heartbeats
to report the new usage, plan again. It stops when every in-service node's utilisation
is within the threshold of the cluster average, or when no move would help. A move is
only planned if it keeps the block's replicas on as many racks as placement wants, so
balancing never breaks placement. Interrupting it leaves moves already under way to
finish; running it again simply plans from the usage at that moment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from client.protocol.client_namenode import (
    AdminState,
    BalancerNode,
    BalancerRequest,
    BalancerStatus,
    DatanodeState,
    EventKind,
)
from namenode import placement
from namenode.datanode_manager import MB, DatanodeManager
from namenode.db.models import Block, Datanode, Inode, PendingReplication, Replica
from namenode.events import EventLog
from namenode.replication import ClusterView, ReplicationMonitor, is_intact
from namenode.states import BLOCK_COMPLETE, REPLICA_FINALIZED

log = structlog.get_logger(__name__)

WAVE_SECONDS = 10.0
CANDIDATES_PER_SOURCE = 200


@dataclass
class _Usage:
    node: Datanode
    used: int
    capacity: int

    @property
    def utilization(self) -> float:
        return 100.0 * self.used / self.capacity


class Balancer:
    def __init__(
        self, datanodes: DatanodeManager, monitor: ReplicationMonitor, clock: Callable[[], float] = time.time
    ) -> None:
        self.datanodes = datanodes
        self.monitor = monitor
        self.clock = clock
        self.running = False
        self.request = BalancerRequest()
        self.moves_scheduled = 0
        self.bytes_moved = 0
        self.message = "not started"
        self._settle_until = 0.0
        self.events = EventLog(clock=clock)

    def start(self, request: BalancerRequest) -> None:
        self.running = True
        self.request = request
        self.moves_scheduled = 0
        self.bytes_moved = 0
        self.message = "started"
        self._settle_until = 0.0
        self.datanodes.balancer_budget.set_rate(request.bandwidth_mbps * MB)
        log.info("balancer started", threshold=request.threshold_pct, bandwidth_mbps=request.bandwidth_mbps)
        self.events.submit(
            EventKind.BALANCER_STARTED,
            f"balancer started (threshold {request.threshold_pct:g}%, {request.bandwidth_mbps:g} MB/s)",
        )

    def stop(self, message: str = "stopped by the operator") -> None:
        if not self.running:
            return
        log.info("balancer stopped", reason=message, moves=self.moves_scheduled)
        self.events.submit(
            EventKind.BALANCER_STOPPED,
            f"balancer stopped: {message} ({self.moves_scheduled} moves, {self.bytes_moved} bytes moved)",
        )
        self.running = False
        self.message = message

    def move_done(self, length: int) -> None:
        """A move's replica landed and the source's copy is scheduled for deletion."""
        self.bytes_moved += length

    # --- one step of the background loop -------------------------------------------------

    def step(self, session: Session) -> None:
        if not self.running:
            # Moves not yet handed to a DataNode are dropped; ones under way finish.
            session.execute(
                delete(PendingReplication).where(
                    PendingReplication.is_move.is_(True), PendingReplication.sent_at.is_(None)
                )
            )
            return
        if self._in_flight(session):
            self._settle_until = self.clock() + 2 * self.datanodes.settings.heartbeat_interval_s
            return
        if self.clock() < self._settle_until:
            return  # let heartbeats report the usage the last wave left
        usage = self._usage(session)
        if len(usage) < 2:
            self.stop("fewer than two in-service DataNodes: nothing to balance")
            return
        average = self._average(usage)
        threshold = self.request.threshold_pct
        over = [u for u in usage if u.utilization > average + threshold]
        under = [u for u in usage if u.utilization < average - threshold]
        if not over and not under:
            self.stop(f"balanced: every DataNode within {threshold:g}% of the average {average:.1f}%")
            return
        sources = over or [u for u in usage if u.utilization > average]
        targets = under or [u for u in usage if u.utilization < average]
        planned = self._plan_wave(session, sources, targets, average)
        if planned == 0:
            self.stop("no move can improve the balance without breaking placement")
        else:
            self.message = f"wave of {planned} moves planned"

    def _in_flight(self, session: Session) -> int:
        return (
            session.scalar(
                select(func.count()).select_from(PendingReplication).where(PendingReplication.is_move.is_(True))
            )
            or 0
        )

    def _usage(self, session: Session) -> list[_Usage]:
        now = self.clock()
        return [
            _Usage(node, node.used, node.capacity)
            for node in session.scalars(select(Datanode).where(Datanode.admin_state == AdminState.NORMAL.value))
            if node.capacity > 0 and self.datanodes.state_of(node, now) is DatanodeState.LIVE
        ]

    @staticmethod
    def _average(usage: list[_Usage]) -> float:
        return 100.0 * sum(u.used for u in usage) / sum(u.capacity for u in usage)

    def _plan_wave(self, session: Session, sources: list[_Usage], targets: list[_Usage], average: float) -> int:
        budget = max(1, int(self.request.bandwidth_mbps * MB * WAVE_SECONDS))
        cluster = self.monitor.view(session)
        planned = 0
        for source in sorted(sources, key=lambda u: -u.utilization):
            shed = int((source.utilization - average) / 100 * source.capacity)
            for target in sorted(targets, key=lambda u: u.utilization):
                room = int((average - target.utilization) / 100 * target.capacity)
                if budget <= 0 or shed <= 0:
                    break
                moved, count = self._move_blocks(session, source, target, min(shed, room, budget), cluster)
                target.used += moved
                shed -= moved
                budget -= moved
                planned += count
        return planned

    def _move_blocks(
        self, session: Session, source: _Usage, target: _Usage, allowance: int, cluster: ClusterView
    ) -> tuple[int, int]:
        """Schedule moves of source's intact replicas to target worth at most `allowance` bytes (at
        least one block); returns (bytes, moves)."""
        candidates = session.execute(
            select(Block, Inode.replication)
            .join(Replica, Replica.block_id == Block.id)
            .join(Inode, Inode.id == Block.inode_id)
            .where(Replica.datanode_id == source.node.id, Block.state == BLOCK_COMPLETE)
            .where(
                Replica.state == REPLICA_FINALIZED,
                Replica.gen_stamp == Block.gen_stamp,
                Replica.length == Block.length,
            )
            .where(~Block.id.in_(select(PendingReplication.block_id)))
            .where(~Block.id.in_(select(Replica.block_id).where(Replica.datanode_id == target.node.id)))
            .order_by(Block.length.desc())
            .limit(CANDIDATES_PER_SOURCE)
        ).all()
        moved = count = 0
        for block, replication in candidates:
            if moved and moved + block.length > allowance:
                continue
            if not self._keeps_placement(session, block, replication, source, target, cluster):
                continue
            session.add(
                PendingReplication(
                    block_id=block.id,
                    target_id=target.node.id,
                    source_id=source.node.id,
                    scheduled_at=self.clock(),
                    sent_at=None,
                    is_move=True,
                )
            )
            moved += block.length
            count += 1
            self.moves_scheduled += 1
            if moved >= allowance:
                break
        return moved, count

    @staticmethod
    def _keeps_placement(
        session: Session, block: Block, replication: int, source: _Usage, target: _Usage, cluster: ClusterView
    ) -> bool:
        others = [
            r.datanode_id
            for r in session.scalars(select(Replica).where(Replica.block_id == block.id))
            if r.datanode_id != source.node.id and is_intact(r, block) and cluster.counts(r.datanode_id)
        ]
        other_racks = [cluster.loads[n].rack for n in others]
        racks_after = [*other_racks, target.node.rack]
        racks_before = [*other_racks, source.node.rack]
        wanted = placement.racks_wanted(replication, cluster.racks_available)
        return len(set(racks_after)) >= min(wanted, len(set(racks_before)))

    # --- reporting -------------------------------------------------------------------------

    def status(self, session: Session) -> BalancerStatus:
        usage = self._usage(session)
        in_flight = self._in_flight(session)
        return BalancerStatus(
            running=self.running,
            threshold_pct=self.request.threshold_pct,
            bandwidth_mbps=self.request.bandwidth_mbps,
            average_utilization_pct=round(self._average(usage), 3) if usage else 0.0,
            nodes=[BalancerNode(datanode_id=u.node.id, utilization_pct=round(u.utilization, 3)) for u in usage],
            moves_scheduled=self.moves_scheduled,
            moves_in_flight=in_flight,
            bytes_moved=self.bytes_moved,
            message=self.message,
        )
