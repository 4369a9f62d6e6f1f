"""DataNode registry: registration, heartbeats (and the commands they carry back), liveness."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from urllib.parse import urlsplit

import structlog
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from client.protocol.client_namenode import AdminState, DatanodeInfo, DatanodeState, EventKind, EventSeverity
from client.protocol.common import DatanodeRef, ExtendedBlock
from client.protocol.datanode_namenode import (
    Command,
    DeleteBlocksCommand,
    HeartbeatRequest,
    HeartbeatResponse,
    RegisterRequest,
    RegisterResponse,
    ReplicateBlockCommand,
    ReregisterCommand,
)
from client.protocol.errors import ClusterMismatchError, InvalidArgumentError, UnknownDatanodeError
from namenode.config import NameNodeSettings
from namenode.db.models import Block, Datanode, Invalidation, PendingReplication, Replica
from namenode.events import EventLog
from namenode.placement import NodeLoad
from namenode.safemode import SafeMode
from namenode.states import STATE_DEAD, STATE_LIVE
from namenode.throttle import TokenBucket
from namenode.work_queues import PRIORITY_NORMAL, PRIORITY_UNDER_REPLICATED, enqueue_blocks

log = structlog.get_logger(__name__)

MB = 1_000_000


class DatanodeManager:
    """Owns the `datanodes` table and decides what each DataNode is told to do."""

    def __init__(self, settings: NameNodeSettings, safemode: SafeMode, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.safemode = safemode
        self.clock = clock
        #: Nodes that registered with this NameNode process; others are told to register again,
        #: so that after a restart every node sends the full report safe mode waits for.
        self.registered_since_start: set[str] = set()
        burst = settings.heartbeat_interval_s
        self.recovery_budget = TokenBucket(settings.replication_bandwidth_mbps * MB, burst)
        self.balancer_budget = TokenBucket(0, burst)
        #: More sources of heartbeat commands, fn(session, node id, now), asked after deletions and
        #: copies and never in safe mode (the NameNode adds truncate recovery's).
        self.command_sources: list[Callable[[Session, str, float], Sequence[Command]]] = []
        self.events = EventLog(clock=clock)
        #: Nodes a `datanode_stale` event was recorded for and that have not heartbeated since.
        self.stale_noted: set[str] = set()

    # --- liveness --------------------------------------------------------------------------

    def state_of(self, node: Datanode, now: float) -> DatanodeState:
        """Live, stale (missed a few heartbeats: not chosen first) or dead (replicas don't count)."""
        age = now - node.last_heartbeat
        if node.state == STATE_DEAD or age > self.settings.dead_after_s:
            return DatanodeState.DEAD
        if age > self.settings.stale_after_s:
            return DatanodeState.STALE
        return DatanodeState.LIVE

    def load_of(self, node: Datanode, now: float) -> NodeLoad:
        return NodeLoad(
            id=node.id,
            url=node.url,
            rack=node.rack,
            remaining=node.remaining,
            capacity=node.capacity,
            active_transfers=node.active_transfers,
            usable=self.state_of(node, now) is DatanodeState.LIVE and node.admin_state == AdminState.NORMAL,
            host=urlsplit(node.url).hostname or "",
        )

    def all_loads(self, session: Session) -> list[NodeLoad]:
        now = self.clock()
        return [self.load_of(node, now) for node in session.scalars(select(Datanode))]

    def nodes_by_id(self, session: Session, ids: Iterable[str]) -> dict[str, Datanode]:
        wanted = set(ids)
        if not wanted:
            return {}
        return {node.id: node for node in session.scalars(select(Datanode).where(Datanode.id.in_(wanted)))}

    @staticmethod
    def ref(node: Datanode) -> DatanodeRef:
        return DatanodeRef(id=node.id, url=node.url, rack=node.rack)

    def mark_dead_nodes(self, session: Session) -> list[str]:
        """Declare nodes dead after `dead_after_s` of silence; their replicas stop counting."""
        now = self.clock()
        cutoff = now - self.settings.dead_after_s
        dead = list(
            session.scalars(select(Datanode).where(Datanode.state == STATE_LIVE, Datanode.last_heartbeat < cutoff))
        )
        for node in dead:
            node.state = STATE_DEAD
            block_ids = list(session.scalars(select(Replica.block_id).where(Replica.datanode_id == node.id)))
            session.execute(delete(Replica).where(Replica.datanode_id == node.id))
            session.execute(
                delete(PendingReplication).where(
                    or_(PendingReplication.source_id == node.id, PendingReplication.target_id == node.id)
                )
            )
            enqueue_blocks(session, block_ids, now, PRIORITY_UNDER_REPLICATED)
            log.warning("datanode declared dead", datanode=node.id, url=node.url, replicas=len(block_ids))
            self.stale_noted.discard(node.id)
            self.events.record(
                session,
                EventKind.DATANODE_DEAD,
                f"DataNode {node.url} declared dead after {now - node.last_heartbeat:.0f}s without a heartbeat; "
                f"its {len(block_ids)} replicas no longer count",
                severity=EventSeverity.ERROR,
                datanode_id=node.id,
            )
        self._note_stale(session, now)
        return [node.id for node in dead]

    def _note_stale(self, session: Session, now: float) -> None:
        """Record each node that has just gone stale (once, until it heartbeats again)."""
        silent = session.scalars(
            select(Datanode).where(
                Datanode.state == STATE_LIVE, Datanode.last_heartbeat < now - self.settings.stale_after_s
            )
        )
        for node in silent:
            if node.id not in self.stale_noted:
                self.stale_noted.add(node.id)
                self.events.record(
                    session,
                    EventKind.DATANODE_STALE,
                    f"DataNode {node.url} is stale: no heartbeat for {now - node.last_heartbeat:.0f}s",
                    severity=EventSeverity.WARNING,
                    datanode_id=node.id,
                )

    # --- registration and heartbeats -----------------------------------------------------------

    def register(self, session: Session, request: RegisterRequest, cluster_id: str) -> RegisterResponse:
        if request.cluster_id is not None and request.cluster_id != cluster_id:
            raise ClusterMismatchError(
                f"DataNode {request.datanode_id} belongs to cluster {request.cluster_id}, "
                f"this NameNode serves {cluster_id}"
            )
        now = self.clock()
        node = session.get(Datanode, request.datanode_id)
        was_dead = node is not None and node.state == STATE_DEAD
        if node is None:
            node = Datanode(id=request.datanode_id, registered_at=now, admin_state=AdminState.NORMAL.value)
            session.add(node)
        node.url = request.url
        node.rack = request.rack
        node.capacity = request.capacity
        node.used = request.used
        node.remaining = request.remaining
        node.active_transfers = 0
        node.failed_volumes = 0
        node.last_heartbeat = now
        node.state = STATE_LIVE
        node.version = request.version
        node.current_report_id = None
        # Copies already handed out to or from this node died with its previous run (a restart, or a
        # crash before it was found stale, whose copies to it were refused): without this the blocks
        # wait out pending_replication_timeout_s. A copy that did land is reported and trimmed if extra.
        lost = (
            or_(PendingReplication.source_id == node.id, PendingReplication.target_id == node.id),
            PendingReplication.sent_at.is_not(None),
            PendingReplication.is_move.is_(False),
        )
        retry = list(session.scalars(select(PendingReplication.block_id).where(*lost)))
        if retry:
            session.execute(delete(PendingReplication).where(*lost))
            enqueue_blocks(session, retry, now, PRIORITY_UNDER_REPLICATED)
        self.registered_since_start.add(node.id)
        log.info("datanode registered", datanode=node.id, url=node.url, rack=node.rack)
        self.stale_noted.discard(node.id)
        if was_dead:
            self.events.record(
                session,
                EventKind.DATANODE_LIVE,
                f"DataNode {node.url} is live again (registered after being declared dead)",
                datanode_id=node.id,
            )
        else:
            self.events.record(
                session,
                EventKind.DATANODE_REGISTERED,
                f"DataNode {node.url} registered (rack {node.rack}, version {node.version or 'unknown'})",
                datanode_id=node.id,
            )
        return RegisterResponse(
            cluster_id=cluster_id,
            heartbeat_interval_s=self.settings.heartbeat_interval_s,
            block_report_interval_s=self.settings.block_report_interval_s,
            scan_period_s=self.settings.scan_period_s,
            scan_rate_bytes_per_s=int(self.settings.scan_rate_mbps * MB),
        )

    def heartbeat(self, session: Session, request: HeartbeatRequest) -> HeartbeatResponse:
        node = session.get(Datanode, request.datanode_id)
        if node is None:
            raise UnknownDatanodeError(f"DataNode {request.datanode_id} is not registered")
        now = self.clock()
        was_dead = self.state_of(node, now) is DatanodeState.DEAD
        if node.id in self.stale_noted and not was_dead:
            self.stale_noted.discard(node.id)
            self.events.record(
                session,
                EventKind.DATANODE_LIVE,
                f"DataNode {node.url} is live again (heartbeat after {now - node.last_heartbeat:.0f}s)",
                datanode_id=node.id,
            )
        node.capacity = request.capacity
        node.used = request.used
        node.remaining = request.remaining
        node.active_transfers = request.active_transfers
        node.failed_volumes = request.failed_volumes
        node.last_heartbeat = now
        if was_dead or node.id not in self.registered_since_start:
            # Written off while dead, or known only from before our restart: only a fresh
            # registration and full block report bring its replicas back.
            return HeartbeatResponse(commands=[ReregisterCommand()])
        if self.safemode.on:
            return HeartbeatResponse(commands=[])  # nothing is deleted or copied in safe mode
        commands: list[Command] = []
        deletes = self._take_invalidations(session, node.id)
        if deletes:
            commands.append(deletes)
        commands.extend(self._take_replications(session, node.id, now))
        for source in self.command_sources:
            commands.extend(source(session, node.id, now))
        return HeartbeatResponse(commands=commands)

    def _take_invalidations(self, session: Session, node_id: str) -> DeleteBlocksCommand | None:
        rows = list(
            session.scalars(
                select(Invalidation)
                .where(Invalidation.datanode_id == node_id)
                .limit(self.settings.invalidations_per_heartbeat)
            )
        )
        if not rows:
            return None
        for row in rows:
            session.delete(row)
        return DeleteBlocksCommand(
            blocks=[ExtendedBlock(block_id=row.block_id, gen_stamp=row.gen_stamp) for row in rows]
        )

    def _take_replications(self, session: Session, node_id: str, now: float) -> list[ReplicateBlockCommand]:
        in_flight = (
            session.scalar(
                select(func.count())
                .select_from(PendingReplication)
                .where(PendingReplication.source_id == node_id, PendingReplication.sent_at.is_not(None))
            )
            or 0
        )
        room = self.settings.max_replication_streams - in_flight
        if room <= 0:
            return []
        pending = list(
            session.scalars(
                select(PendingReplication)
                .where(PendingReplication.source_id == node_id, PendingReplication.sent_at.is_(None))
                .order_by(PendingReplication.scheduled_at)
                .limit(room)
            )
        )
        if not pending:
            return []
        blocks = {b.id: b for b in session.scalars(select(Block).where(Block.id.in_([p.block_id for p in pending])))}
        targets = self.nodes_by_id(session, [p.target_id for p in pending])
        commands = []
        spent: list[TokenBucket] = []
        for item in pending:
            block = blocks.get(item.block_id)
            target = targets.get(item.target_id)
            if block is None or target is None:
                session.delete(item)
                continue
            budget = self.balancer_budget if item.is_move else self.recovery_budget
            if budget in spent or not budget.try_take(block.length):
                spent.append(budget)  # this kind waits for a later heartbeat; the other may go on
                continue
            item.sent_at = now
            commands.append(
                ReplicateBlockCommand(
                    block=ExtendedBlock(block_id=block.id, gen_stamp=block.gen_stamp),
                    length=block.length,
                    max_rate_bytes_per_s=None if budget.unlimited else max(1, int(budget.rate)),
                    targets=[self.ref(target)],
                )
            )
        return commands

    # --- reporting -------------------------------------------------------------------------

    def describe(self, session: Session) -> list[DatanodeInfo]:
        counts = dict(session.execute(select(Replica.datanode_id, func.count()).group_by(Replica.datanode_id)).all())
        return [
            self.info_of(node, counts.get(node.id, 0))
            for node in session.scalars(select(Datanode).order_by(Datanode.id))
        ]

    def info_of(self, node: Datanode, blocks: int) -> DatanodeInfo:
        now = self.clock()
        return DatanodeInfo(
            id=node.id,
            url=node.url,
            rack=node.rack,
            state=self.state_of(node, now),
            admin_state=AdminState(node.admin_state),
            capacity=node.capacity,
            used=node.used,
            remaining=node.remaining,
            blocks=blocks,
            active_transfers=node.active_transfers,
            last_heartbeat_age_s=round(max(0.0, now - node.last_heartbeat), 3),
        )

    # --- decommissioning -------------------------------------------------------------------

    def find(self, session: Session, selector: str) -> Datanode:
        """A DataNode by id, URL, host:port, or a unique prefix of its id."""
        text = selector.strip().rstrip("/")
        nodes = list(session.scalars(select(Datanode)))
        matches = [n for n in nodes if text in (n.id, n.url.rstrip("/"), urlsplit(n.url).netloc)]
        if not matches:
            matches = [n for n in nodes if n.id.startswith(text)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise UnknownDatanodeError(f"no DataNode matches {selector!r}")
        raise InvalidArgumentError(f"{selector!r} matches {len(matches)} DataNodes: {sorted(n.id for n in matches)}")

    def set_admin_state(self, session: Session, selector: str, wanted: AdminState) -> DatanodeInfo:
        """Start decommissioning (its replicas are copied elsewhere) or put a node back in service."""
        node = self.find(session, selector)
        current = AdminState(node.admin_state)
        leaving = wanted is AdminState.DECOMMISSIONING
        if (leaving and current is AdminState.NORMAL) or (not leaving and current is not AdminState.NORMAL):
            node.admin_state = wanted.value
            block_ids = list(session.scalars(select(Replica.block_id).where(Replica.datanode_id == node.id)))
            priority = PRIORITY_UNDER_REPLICATED if leaving else PRIORITY_NORMAL  # back in service: trim extras
            enqueue_blocks(session, block_ids, self.clock(), priority)
            log.warning("datanode admin state changed", datanode=node.id, state=wanted.value, blocks=len(block_ids))
            if leaving:
                kind, text = EventKind.DECOMMISSION_STARTED, f"decommissioning: {len(block_ids)} replicas to copy"
            else:
                kind, text = EventKind.DATANODE_RECOMMISSIONED, f"back in service (was {current.value})"
            self.events.record(session, kind, f"DataNode {node.url}: {text}", datanode_id=node.id)
        blocks = session.scalar(select(func.count()).select_from(Replica).where(Replica.datanode_id == node.id)) or 0
        return self.info_of(node, blocks)

    def touch_all(self, session: Session) -> None:
        """After a NameNode restart, give every node a fresh grace period before judging it."""
        session.execute(update(Datanode).where(Datanode.state == STATE_LIVE).values(last_heartbeat=self.clock()))
