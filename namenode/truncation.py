"""Truncate, done the HDFS way: whole blocks go at once, the last kept one is cut in place on the DataNodes.

`truncate(path, length)` on a closed file removes every block that starts at or past
`length` (their replicas are invalidated, as for a delete). If `length` falls on a block
boundary that is all. Otherwise the block holding `length` must shrink: it gets the next
generation stamp and its new length, enters ``under_recovery``, and the file goes back
under construction with a lease held by the NameNode itself, so no writer, append or
other truncate can touch it meanwhile. Every DataNode holding the old version is sent a
`truncate` command with its heartbeats; it cuts its replica in place, finalises it and
reports it like a newly written one. Once `min_replication` cut replicas are reported the
block is complete and the file is closed.

The other holders keep being asked to cut theirs, and the replication monitor leaves the
block alone meanwhile (copying it now would only make surplus replicas to trim once they
report). The block is handed to the monitor once no uncut replica is left on a live node —
all cut, or their nodes stale or dead — or, at the latest, `pending_replication_timeout_s`
after the truncate, when the uncut replicas still left are deleted. Uncut replicas reported
after that (a node coming back) have an outdated stamp and are deleted like any other.

What must survive a restart lives in SQL: the block row (new stamp and length) and a
`pending_truncations` row (the old stamp and length, to recognise uncut replicas). When a
command was last sent to a node is per-process bookkeeping: a restarted NameNode sends
them all again, which is harmless because the DataNode's cut is idempotent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import structlog
from sqlalchemy import and_, delete, select
from sqlalchemy.orm import Session

from client.protocol.client_namenode import DatanodeState, TruncateRequest, TruncateResponse
from client.protocol.common import ExtendedBlock
from client.protocol.datanode_namenode import ReplicaState, ReportedReplica, TruncateBlockCommand
from client.protocol.errors import DfsIsADirectoryError, InvalidArgumentError, LeaseConflictError
from namenode.block_manager import BlockManager
from namenode.config import NameNodeSettings
from namenode.db.models import Block, Datanode, Inode, PendingReplication, PendingTruncation, Replica
from namenode.inodes import resolve_checked, to_status
from namenode.leases import NAMENODE_LEASE_HOLDER, LeaseManager
from namenode.permissions import FsAction, PermissionChecker
from namenode.states import BLOCK_COMPLETE, BLOCK_UNDER_RECOVERY, REPLICA_CORRUPT, REPLICA_FINALIZED
from namenode.work_queues import PRIORITY_NORMAL, PRIORITY_UNDER_REPLICATED, enqueue_blocks, invalidate

log = structlog.get_logger(__name__)

#: A command not answered by a cut replica is sent again after this many heartbeat intervals.
RESEND_AFTER_HEARTBEATS = 10
#: Most truncate commands one heartbeat reply carries.
MAX_COMMANDS_PER_HEARTBEAT = 100


class Truncations:
    """The truncate operation and the recovery of the blocks it leaves to cut; runs in the caller's transaction."""

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
        self.resend_after_s = RESEND_AFTER_HEARTBEATS * settings.heartbeat_interval_s
        #: (block id, DataNode id) -> when its truncate command was last handed out.
        self._sent: dict[tuple[int, str], float] = {}

    # --- the operation ---------------------------------------------------------------------

    def truncate(self, session: Session, request: TruncateRequest, checker: PermissionChecker) -> TruncateResponse:
        """Cut a closed file to `request.length` bytes (w needed); `done` is false while a block is being cut."""
        path, length = request.path, request.length
        inode = resolve_checked(session, path, checker, access=FsAction.WRITE)
        if inode.is_dir:
            raise DfsIsADirectoryError(f"{path} is a directory", path=path)
        if inode.under_construction:
            self._refuse_open_file(session, inode, path)
        if length > inode.length:
            raise InvalidArgumentError(
                f"cannot truncate {path} to {length} bytes: it holds only {inode.length}", path=path
            )
        if length == inode.length:
            return TruncateResponse(done=True, status=to_status(inode, path))
        blocks = list(session.scalars(select(Block).where(Block.inode_id == inode.id).order_by(Block.idx)))
        kept = [block for block in blocks if block.offset < length]
        dropped = self.blocks.remove_blocks(session, [block for block in blocks if block.offset >= length])
        inode.length = length
        inode.mtime = int(self.clock() * 1000)
        last = kept[-1] if kept else None
        done = last is None or last.offset + last.length == length
        if last is not None and not done:
            self._start_recovery(session, inode, last, length - last.offset)
        log.info("file truncated", path=path, length=length, dropped_blocks=dropped, done=done, by=request.client_name)
        return TruncateResponse(done=done, status=to_status(inode, path))

    def _refuse_open_file(self, session: Session, inode: Inode, path: str) -> None:
        lease = self.leases.lease_of(session, inode.id)
        if lease is not None and lease.holder == NAMENODE_LEASE_HOLDER:
            raise LeaseConflictError(f"{path} is being truncated; wait until it is closed", path=path)
        holder = lease.holder if lease is not None else "a writer"
        raise LeaseConflictError(f"{path} is open for writing by {holder}", path=path)

    def _start_recovery(self, session: Session, inode: Inode, block: Block, new_length: int) -> None:
        """Bump the block to its cut version and hold the file until the DataNodes have cut it."""
        now = self.clock()
        earlier = session.get(PendingTruncation, block.id)
        if earlier is not None:
            # Cut again before all holders had cut it the first time: theirs are outdated now.
            session.delete(earlier)
            session.flush()
        old_stamp, old_length = block.gen_stamp, block.length
        replicas = list(session.scalars(select(Replica).where(Replica.block_id == block.id)))
        uncut = [r for r in replicas if _holds(r, old_stamp, old_length)]
        bad = [r for r in replicas if not _holds(r, old_stamp, old_length)]
        # Corrupt or outdated copies of the old version would never be cut: delete them now.
        invalidate(session, [(r.datanode_id, r.block_id, r.gen_stamp) for r in bad], now)
        for replica in bad:
            session.delete(replica)
        # Copies of the old version still in flight would arrive outdated.
        session.execute(delete(PendingReplication).where(PendingReplication.block_id == block.id))
        block.gen_stamp = old_stamp + 1
        block.length = new_length
        block.state = BLOCK_UNDER_RECOVERY
        session.add(
            PendingTruncation(block_id=block.id, old_gen_stamp=old_stamp, old_length=old_length, started_at=now)
        )
        inode.under_construction = True
        self.leases.grant(session, inode, NAMENODE_LEASE_HOLDER)
        log.info(
            "truncate recovery started",
            block=block.id,
            gen_stamp=block.gen_stamp,
            length=new_length,
            holders=[r.datanode_id for r in uncut],
        )
        if not uncut:
            log.warning("truncate recovery waits: no DataNode holds the block", block=block.id, file_id=inode.id)

    # --- heartbeats ------------------------------------------------------------------------

    def commands_for(self, session: Session, node_id: str, now: float) -> list[TruncateBlockCommand]:
        """Truncate commands for a DataNode holding uncut replicas (not sent within the resend window)."""
        self._sent = {key: sent for key, sent in self._sent.items() if now - sent < self.resend_after_s}
        rows = session.execute(
            select(PendingTruncation, Block.gen_stamp, Block.length)
            .join(Block, Block.id == PendingTruncation.block_id)
            .join(Replica, and_(Replica.block_id == PendingTruncation.block_id, Replica.datanode_id == node_id))
            .where(
                Replica.state == REPLICA_FINALIZED,
                Replica.gen_stamp == PendingTruncation.old_gen_stamp,
                Replica.length == PendingTruncation.old_length,
            )
            .limit(MAX_COMMANDS_PER_HEARTBEAT)
        )
        commands = []
        for pending, new_stamp, new_length in rows:
            key = (pending.block_id, node_id)
            if key in self._sent:
                continue
            self._sent[key] = now
            commands.append(
                TruncateBlockCommand(
                    block=ExtendedBlock(block_id=pending.block_id, gen_stamp=pending.old_gen_stamp),
                    new_gen_stamp=new_stamp,
                    new_length=new_length,
                )
            )
        return commands

    # --- block reports ---------------------------------------------------------------------

    @staticmethod
    def cutting(session: Session, block_ids: Iterable[int]) -> dict[int, PendingTruncation]:
        """The pending truncations among these blocks (one lookup per report chunk)."""
        wanted = list(block_ids)
        if not wanted:
            return {}
        rows = session.scalars(select(PendingTruncation).where(PendingTruncation.block_id.in_(wanted)))
        return {row.block_id: row for row in rows}

    def absorb(
        self,
        session: Session,
        node: Datanode,
        block: Block,
        pending: PendingTruncation,
        existing: Replica | None,
        entry: ReportedReplica,
        report_id: str | None,
    ) -> bool:
        """A reported replica of a block being cut; True if it was dealt with here (else: as usual).

        An uncut replica of the old version is kept and recorded: it is a replica to cut (this is
        how one reported after a restart, or by a node that was down, joins the recovery). A
        replica in rbw at either stamp is being cut (or was, when its node crashed): left alone.
        Everything else — the cut replica itself, older versions — goes the usual way.
        """
        if entry.state is ReplicaState.RBW:
            if entry.gen_stamp not in (pending.old_gen_stamp, block.gen_stamp):
                return False
            if existing is not None:
                existing.report_id = report_id  # a full report must not forget the node's replica to cut
            return True
        if (entry.gen_stamp, entry.length) != (pending.old_gen_stamp, pending.old_length):
            return False
        if existing is None:
            session.add(
                Replica(
                    block_id=block.id,
                    datanode_id=node.id,
                    gen_stamp=entry.gen_stamp,
                    length=entry.length,
                    state=REPLICA_FINALIZED,
                    report_id=report_id,
                )
            )
        else:
            if existing.state != REPLICA_CORRUPT:
                existing.state = REPLICA_FINALIZED
            existing.gen_stamp = entry.gen_stamp
            existing.length = entry.length
            existing.report_id = report_id
        return True

    def replica_cut(self, session: Session, block: Block, pending: PendingTruncation) -> None:
        """A finalised replica at the new stamp was recorded: close the file once `min_replication`
        agree, and hand the block to the monitor once no live holder is left to cut."""
        session.flush()
        if block.state == BLOCK_UNDER_RECOVERY:
            if self.blocks.good_replica_counts(session, [block])[block.id] < self.settings.min_replication:
                return
            self._finish(session, block)
        if not self._uncut_live(session, block, pending):
            self._settle(session, block, pending)

    def _finish(self, session: Session, block: Block) -> None:
        block.state = BLOCK_COMPLETE
        inode = session.get(Inode, block.inode_id)
        if inode is None or not inode.under_construction:
            return
        lease = self.leases.lease_of(session, inode.id)
        if lease is None or lease.holder == NAMENODE_LEASE_HOLDER:
            self.blocks.close_file(session, inode)
        log.info("truncated file closed", block=block.id, file_id=inode.id, length=inode.length)

    # --- background ------------------------------------------------------------------------

    def sweep(self, session: Session) -> None:
        """Hand cut blocks to the monitor once nothing is left to wait for (background pass)."""
        now = self.clock()
        for pending in session.scalars(select(PendingTruncation)).all():
            block = session.get(Block, pending.block_id)
            if block is None or block.state == BLOCK_UNDER_RECOVERY:
                continue  # the file stays under recovery until some holder has cut its replica
            uncut = self._uncut_live(session, block, pending)
            if uncut and now - pending.started_at > self.settings.pending_replication_timeout_s:
                # Given up on: deleted while still at the old stamp, copied again from cut ones.
                invalidate(session, [(r.datanode_id, r.block_id, r.gen_stamp) for r in uncut], now)
                for replica in uncut:
                    session.delete(replica)
                log.warning("uncut replicas given up", block=block.id, datanodes=[r.datanode_id for r in uncut])
                uncut = []
            if not uncut:
                self._settle(session, block, pending)

    def _uncut_live(self, session: Session, block: Block, pending: PendingTruncation) -> list[Replica]:
        """Uncut replicas of the block on live (not stale) DataNodes: still worth waiting for."""
        now = self.clock()
        rows = session.execute(
            select(Replica, Datanode)
            .join(Datanode, Datanode.id == Replica.datanode_id)
            .where(
                Replica.block_id == block.id,
                Replica.state == REPLICA_FINALIZED,
                Replica.gen_stamp == pending.old_gen_stamp,
                Replica.length == pending.old_length,
            )
        )
        datanodes = self.blocks.datanodes
        return [replica for replica, node in rows if datanodes.state_of(node, now) is DatanodeState.LIVE]

    def _settle(self, session: Session, block: Block, pending: PendingTruncation) -> None:
        """The recovery is over: the monitor trims what was not cut and restores the replication."""
        session.delete(pending)
        self._sent = {key: sent for key, sent in self._sent.items() if key[0] != block.id}
        inode = session.get(Inode, block.inode_id)
        good = self.blocks.good_replica_counts(session, [block])[block.id]
        short = inode is not None and good < inode.replication
        enqueue_blocks(session, [block.id], self.clock(), PRIORITY_UNDER_REPLICATED if short else PRIORITY_NORMAL)
        log.info("truncate recovery settled", block=block.id, good_replicas=good)


def uncut_versions(session: Session, block_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """(old stamp, old length) of each of these blocks that is being cut; its uncut replicas still
    hold the file's bytes up to the new length, so readers may use them."""
    wanted = list(block_ids)
    if not wanted:
        return {}
    rows = session.execute(
        select(PendingTruncation.block_id, PendingTruncation.old_gen_stamp, PendingTruncation.old_length).where(
            PendingTruncation.block_id.in_(wanted)
        )
    )
    return {block_id: (stamp, length) for block_id, stamp, length in rows}


def _holds(replica: Replica, gen_stamp: int, length: int) -> bool:
    return replica.state == REPLICA_FINALIZED and replica.gen_stamp == gen_stamp and replica.length == length
