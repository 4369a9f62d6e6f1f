"""The NameNode: wires the managers to the metadata store and runs the background work.

Each public coroutine is one API operation, run as one transaction: reads on the
reader pool, mutations through the group-committing writer. Routers only call these.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from functools import partial

import structlog
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from client.protocol import SOFTWARE_VERSION, paths
from client.protocol.client_namenode import (
    AbandonBlockRequest,
    AddBlockRequest,
    AdminState,
    AppendRequest,
    AppendResponse,
    BalancerRequest,
    BalancerStatus,
    ClusterEvent,
    ClusterInfo,
    ClusterReport,
    CompleteRequest,
    CompleteResponse,
    ConcatRequest,
    ContentSummary,
    CreateRequest,
    DatanodeInfo,
    DatanodeState,
    DeleteRequest,
    DeleteResponse,
    DirectoryListing,
    EventKind,
    FileStatus,
    FsckReport,
    FsckRequestFlags,
    LocatedBlock,
    LocatedBlocks,
    MkdirsRequest,
    RecoverLeaseRequest,
    RecoverPipelineRequest,
    RenameRequest,
    ReportBadBlocksRequest,
    SafeModeAction,
    SafeModeStatus,
    SetAttributesRequest,
    SetReplicationRequest,
    TruncateRequest,
    TruncateResponse,
)
from client.protocol.common import DatanodeRef
from client.protocol.datanode_namenode import (
    BlockReportRequest,
    Command,
    HeartbeatRequest,
    HeartbeatResponse,
    IncrementalReportRequest,
    RegisterRequest,
    RegisterResponse,
    ReplicateBlockCommand,
)
from client.protocol.errors import NotLeaderError
from namenode import placement
from namenode.auth import Authenticator
from namenode.balancer import Balancer
from namenode.block_locations import BlockLocator
from namenode.block_manager import BlockManager
from namenode.block_reports import BlockReportProcessor
from namenode.block_tokens import REPLICATE, WRITE, BlockTokenIssuer
from namenode.config import NameNodeSettings
from namenode.crash_points import CrashPoints
from namenode.datanode_manager import DatanodeManager
from namenode.db.database import Database
from namenode.db.models import Block, Invalidation, PendingReplication, Replica, ReplicationQueueEntry
from namenode.db.schema import current_os_user
from namenode.events import EventLog
from namenode.fsck import Fsck
from namenode.inodes import ListingPage, resolve_checked
from namenode.leadership import Leadership, LeaseState
from namenode.leases import LeaseManager
from namenode.namespace import Namespace
from namenode.permissions import FsAction, GroupMapping, PermissionChecker, Permissions, parse_static_mapping
from namenode.replica_receipts import ReplicaReceipts
from namenode.replication import ReplicationMonitor
from namenode.safemode import SafeMode
from namenode.states import REPLICA_CORRUPT
from namenode.throughput import ThroughputHistory
from namenode.truncation import Truncations
from namenode.user_tokens import UserTokens
from namenode.work_queues import PRIORITY_NAMES, PRIORITY_UNDER_REPLICATED
from server_common.serve import advertised_url
from server_common.webhdfs import DataOps

log = structlog.get_logger(__name__)

#: Replicas of a full block report applied per write transaction (a page is up to MAX_REPORT_PAGE).
REPORT_TRANSACTION = 5000


class NameNode:
    def __init__(
        self,
        settings: NameNodeSettings,
        db: Database,
        cluster_id: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.db = db
        self.cluster_id = cluster_id
        self.crash = CrashPoints(settings.crash_at)
        self.clock = clock
        self.started_at = clock()
        self.safemode = SafeMode(settings, clock)
        self.datanodes = DatanodeManager(settings, self.safemode, clock)
        self.leases = LeaseManager(settings, clock)
        self.blocks = BlockManager(settings, self.datanodes, self.leases, clock)
        self.locator = BlockLocator(self.datanodes, clock)
        self.namespace = Namespace(settings, self.blocks, self.leases, clock)
        self.reports = BlockReportProcessor(settings.min_replication, self.blocks.good_replica_counts, clock)
        self.replication = ReplicationMonitor(settings, self.datanodes, clock)
        self.balancer = Balancer(self.datanodes, self.replication, clock)
        self.reports.on_move_done = self.balancer.move_done
        self.truncations = Truncations(settings, self.blocks, self.leases, clock)
        self.reports.truncations = self.truncations
        self.datanodes.command_sources.append(self.truncations.commands_for)
        self.throughput = ThroughputHistory(clock)
        self.events = EventLog(db, clock)
        self.permissions = Permissions(
            superuser=self.superuser,
            supergroup=settings.supergroup,
            groups=GroupMapping(parse_static_mapping(settings.user_groups)),
            enabled=settings.permissions_enabled,
        )
        secret = settings.resolve_cluster_secret()
        self.blocks.record_receipts = ReplicaReceipts(secret).record
        self.block_tokens = BlockTokenIssuer(
            secret,
            enabled=settings.block_access_tokens,
            lifetime_s=settings.block_token_lifetime_s,
            rotation_s=settings.block_key_rotation_s,
            clock=clock,
        )
        self.user_tokens = UserTokens(
            db,
            secret,
            default_ttl_s=settings.user_token_default_ttl_s,
            max_ttl_s=settings.user_token_max_ttl_s,
            clock=clock,
        )
        self.auth = Authenticator(
            secret, self.user_tokens, token_mode=settings.auth_mode == "token", superuser=lambda: self.superuser
        )
        for part in (self.safemode, self.datanodes, self.blocks, self.replication, self.balancer):
            part.events = self.events  # one recorder, able to write events of its own
        own_url = settings.advertise_url or advertised_url(
            settings.host, settings.port, tls=settings.tls_cert_file is not None
        )
        self.leadership = Leadership(
            own_url, lease_s=settings.leader_lease_s, forget_s=settings.namenode_forget_s, clock=clock
        )
        self._background: asyncio.Task[None] | None = None
        self._leading: asyncio.Task[None] | None = None
        self._webhdfs_data: DataOps | None = None

    @property
    def superuser(self) -> str:
        """The user the NameNode itself runs as, unless configured otherwise (HDFS's rule)."""
        return self.settings.superuser or current_os_user()

    def is_superuser(self, user: str) -> bool:
        """May `user` administer the cluster (issue tokens for others, see every token)? The
        superuser, or a member of the supergroup."""
        return self.permissions.is_superuser(user)

    def checker(self, user: str) -> PermissionChecker:
        """What `user` may do to the namespace (namenode.permissions)."""
        return self.permissions.checker(user)

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self.db.read(self.user_tokens.load_revoked)
        if await self.db.write(self._first_of_cluster):
            self.events.submit(
                EventKind.SAFE_MODE_ENTERED, "NameNode started: in start-up safe mode until DataNodes report"
            )
        await self.lead_round()
        self._leading = asyncio.create_task(self._leadership_loop(), name="namenode-leadership")
        self._background = asyncio.create_task(self._background_loop(), name="namenode-background")

    def _first_of_cluster(self, session: Session) -> bool:
        """At start, when no other NameNode is running (the lease is vacant, or was held by this
        NameNode's previous process): DataNodes get a fresh grace period (silence while the
        cluster had no NameNode is not their fault), and an operator safe mode of the previous
        run ends with it, as on a single NameNode. Alongside a running NameNode neither applies:
        that would hide nodes that really died."""
        self.leadership.retire_predecessors(session)
        if not self.leadership.lease_is_vacant(session):
            return False
        self.datanodes.touch_all(session)
        self.leadership.set_manual_safemode(session, False)
        return True

    async def stop(self) -> None:
        if self._webhdfs_data is not None:
            await self._webhdfs_data.close()
        for task in (self._leading, self._background):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:  # hand the lease over now rather than after it expires
            await asyncio.wait_for(self.db.write(self.leadership.resign), timeout=5.0)
        except Exception as exc:
            log.warning("could not resign the leader lease", error=str(exc))

    async def _leadership_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.leader_lease_s / 3)
            try:
                await self.lead_round()
            except Exception:
                log.exception("leadership round failed")

    async def lead_round(self) -> LeaseState:
        """Renew our presence and the leader lease (or take it over), and follow the cluster's
        safe mode: an operator's, and the block map another NameNode has already confirmed."""
        state = await self.db.write(partial(self.leadership.round, safemode=self.safemode.state))
        self.safemode.follow(manual=state.manual_safemode, confirmed_elsewhere=state.live_peers_out_of_safemode)
        return state

    def _fenced(self, step: Callable[[Session], object]) -> Callable[[Session], object]:
        """`step` in a transaction that commits only while we still hold the leader lease."""

        def run(session: Session) -> object:
            self.leadership.fence(session)
            return step(session)

        return run

    async def _background_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.replication_interval_s)
            await self.background_pass()

    async def background_pass(self) -> None:
        """Safe mode, and on the leader liveness, lease recovery, replication, balancing: each its
        own transaction, so one failure (logged) cannot hold back the others. In safe mode only
        the first two run; on other NameNodes only safe mode."""
        try:  # renewed here too, so a pass starts with a fresh lease (and tests' clocks need no loop)
            await self.lead_round()
        except Exception:
            log.exception("background step failed", step="leadership round")
        leader = self.leadership.is_leader
        steps: list[tuple[str, Callable[[Session], object]]] = [("safe mode check", self.safemode.update)]
        if leader:
            steps.insert(0, ("dead-node check", self._fenced(self.datanodes.mark_dead_nodes)))
        if leader and not self.safemode.on:
            try:
                expired = await self.db.read(self.leases.hard_expired)
            except Exception:
                log.exception("background step failed", step="lease scan")
                expired = []
            steps += [
                (
                    f"lease recovery of file {inode_id}",
                    self._fenced(partial(self.blocks.recover_file, inode_id=inode_id)),
                )
                for inode_id in expired
            ]
            steps.append(("truncate recovery", self._fenced(self.truncations.sweep)))
            steps.append(("replication pass", self._fenced(self.replication.run_once)))
            steps.append(("balancer", self._fenced(self.balancer.step)))
        for name, step in steps:
            try:
                await self.db.write(step)
            except NotLeaderError as exc:
                log.warning("background step not committed", step=name, reason=str(exc))
                break
            except Exception:
                log.exception("background step failed", step=name)
        try:
            await self.db.read(self.user_tokens.load_revoked)
        except Exception:
            log.exception("background step failed", step="revoked-token refresh")
        if not self.leadership.is_leader:
            return
        try:
            await self.events.prune_if_needed()
        except Exception:
            log.exception("background step failed", step="event pruning")

    # --- namespace -------------------------------------------------------------------------

    async def stat(self, path: str, *, user: str) -> FileStatus:
        paths.validate_path(path)
        return await self.db.read(partial(self.namespace.stat, path=path, checker=self.checker(user)))

    async def list_dir(self, path: str, start_after: str, limit: int, *, user: str) -> DirectoryListing:
        return (await self.list_page(path, start_after, limit, user=user)).to_model()

    async def list_page(self, path: str, start_after: str, limit: int, *, user: str) -> ListingPage:
        """`list_dir` before validation into models: the client protocol encodes it to JSON directly."""
        paths.validate_path(path)
        return await self.db.read(
            partial(
                self.namespace.list_dir, path=path, start_after=start_after, limit=limit, checker=self.checker(user)
            )
        )

    async def locations(self, path: str, offset: int, length: int | None, *, user: str) -> LocatedBlocks:
        paths.validate_path(path)
        located = await self.db.read(
            partial(self.locator.locations, path=path, offset=offset, length=length, checker=self.checker(user))
        )
        return self.block_tokens.stamp_all(located, user)

    # The mutations a `put` or a shell command is made of log one line each once committed
    # (with the caller's request_id), so an operation can be followed at the default level.

    async def mkdirs(self, request: MkdirsRequest, *, user: str) -> FileStatus:
        self.safemode.check_writable()
        status = await self.db.write(
            self.crash.inside("mkdirs", partial(self.namespace.mkdirs, request=request, checker=self.checker(user)))
        )
        self.crash.after_commit("mkdirs")
        log.info("mkdirs", path=request.path, user=user)
        return status

    async def create(self, request: CreateRequest, *, user: str) -> FileStatus:
        self.safemode.check_writable()
        status = await self.db.write(
            self.crash.inside("create", partial(self.namespace.create, request=request, checker=self.checker(user)))
        )
        self.crash.after_commit("create")
        log.info("file created", path=status.path, file_id=status.file_id, replication=status.replication, user=user)
        return status

    async def rename(self, request: RenameRequest, *, user: str) -> FileStatus:
        self.safemode.check_writable()
        status = await self.db.write(
            self.crash.inside("rename", partial(self.namespace.rename, request=request, checker=self.checker(user)))
        )
        self.crash.after_commit("rename")
        log.info("renamed", path=request.src, dst=request.dst)
        return status

    async def delete(self, request: DeleteRequest, *, user: str) -> DeleteResponse:
        self.safemode.check_writable()
        answer = await self.db.write(
            self.crash.inside("delete", partial(self.namespace.delete, request=request, checker=self.checker(user)))
        )
        self.crash.after_commit("delete")
        log.info("deleted", path=request.path, files=answer.files, directories=answer.directories, blocks=answer.blocks)
        return answer

    async def set_replication(self, request: SetReplicationRequest, *, user: str) -> FileStatus:
        self.safemode.check_writable()
        return await self.db.write(partial(self.namespace.set_replication, request=request, checker=self.checker(user)))

    async def set_attributes(self, request: SetAttributesRequest, *, user: str) -> FileStatus:
        self.safemode.check_writable()
        return await self.db.write(partial(self.namespace.set_attributes, request=request, checker=self.checker(user)))

    async def append(self, request: AppendRequest, *, user: str) -> AppendResponse:
        self.safemode.check_writable()
        answer = await self.db.write(
            self.crash.inside("append", partial(self.namespace.append, request=request, checker=self.checker(user)))
        )
        self.crash.after_commit("append")
        log.info("file opened for append", path=answer.status.path, file_id=answer.status.file_id)
        return answer

    async def recover_lease(self, request: RecoverLeaseRequest, *, user: str) -> None:
        """Lease recovery at once, for a writer that gave up (instead of after the hard limit)."""
        self.safemode.check_writable()

        checker = self.checker(user)

        def recover(session: Session) -> None:
            resolve_checked(session, request.path, checker, access=FsAction.WRITE)
            inode = self.leases.check(session, request.file_id, request.client_name, request.path)
            self.blocks.recover_file(session, inode.id)

        await self.db.write(recover)

    async def concat(self, request: ConcatRequest, *, user: str) -> FileStatus:
        self.safemode.check_writable()
        return await self.db.write(partial(self.namespace.concat, request=request, checker=self.checker(user)))

    async def check_access(self, path: str, access: FsAction, *, user: str) -> None:
        """Raise DfsPermissionError unless `user` may `access` `path` (WebHDFS CHECKACCESS)."""
        paths.validate_path(path)
        await self.db.read(partial(resolve_checked, path=path, checker=self.checker(user), access=access))

    async def entries_after(self, path: str, name: str, *, user: str) -> int:
        """How many entries of directory `path` sort after `name` (WebHDFS's remainingEntries)."""
        paths.validate_path(path)
        return await self.db.read(
            partial(self.namespace.entries_after, path=path, name=name, checker=self.checker(user))
        )

    async def pick_datanode(self, client_host: str | None) -> DatanodeRef | None:
        """A live DataNode to serve a WebHDFS upload: on the client's host if one is, else the least busy."""

        def choose(session: Session) -> DatanodeRef | None:
            targets = placement.choose_targets(
                self.datanodes.all_loads(session),
                1,
                block_size=self.settings.default_block_size,
                writer_host=client_host,
                rng=self.blocks.rng,
            )
            return DatanodeRef(id=targets[0].id, url=targets[0].url, rack=targets[0].rack) if targets else None

        return await self.db.read(choose)

    def webhdfs_data_ops(self, own_url: str) -> DataOps:
        """The SDK-backed data operations proxy mode serves here (made on first use)."""
        if self._webhdfs_data is None:
            self._webhdfs_data = DataOps(own_url, ca_file=self.settings.tls_ca_file)
        return self._webhdfs_data

    async def content_summary(self, path: str, *, user: str) -> ContentSummary:
        paths.validate_path(path)
        return await self.db.read(partial(self.namespace.content_summary, path=path, checker=self.checker(user)))

    # --- writing files ---------------------------------------------------------------------

    async def add_block(self, request: AddBlockRequest, *, user: str, writer_host: str | None = None) -> LocatedBlock:
        self.safemode.check_writable()
        located = await self.db.write(
            self.crash.inside("add_block", partial(self.blocks.add_block, request=request, writer_host=writer_host))
        )
        self.crash.after_commit("add_block")
        located = self.block_tokens.stamp(located, user, WRITE)
        log.info(
            "block allocated",
            path=request.path,
            block=located.block.block_id,
            datanodes=[node.id for node in located.locations],
        )
        return located

    async def abandon_block(self, request: AbandonBlockRequest, *, user: str) -> None:
        self.safemode.check_writable()
        await self.db.write(partial(self.blocks.abandon_block, request=request))

    async def recover_pipeline(self, request: RecoverPipelineRequest, *, user: str) -> LocatedBlock:
        self.safemode.check_writable()
        located = await self.db.write(partial(self.blocks.recover_pipeline, request=request))
        return self.block_tokens.stamp(located, user, WRITE)

    async def complete(self, request: CompleteRequest, *, user: str) -> CompleteResponse:
        self.safemode.check_writable()
        answer = await self.db.write(self.crash.inside("complete", partial(self.blocks.complete, request=request)))
        self.crash.after_commit("complete")
        if answer.completed:  # a writer polls while DataNode reports catch up: log the one that closed it
            log.info("file completed", path=request.path, file_id=request.file_id)
        return answer

    async def renew_lease(self, client_name: str, *, user: str) -> None:
        await self.db.write(partial(self.leases.renew, holder=client_name))

    async def report_bad_blocks(self, request: ReportBadBlocksRequest, *, user: str) -> None:
        await self.db.write(partial(self.blocks.report_bad_blocks, request=request))

    async def truncate(self, request: TruncateRequest, *, user: str) -> TruncateResponse:
        """Cut a closed file; `done` is false while its last block is being cut on the DataNodes."""
        self.safemode.check_writable()
        return await self.db.write(partial(self.truncations.truncate, request=request, checker=self.checker(user)))

    # --- DataNodes -------------------------------------------------------------------------

    async def register(self, request: RegisterRequest) -> RegisterResponse:
        answer = await self.db.write(partial(self.datanodes.register, request=request, cluster_id=self.cluster_id))
        return answer.model_copy(update={"block_tokens": self.block_tokens.policy()})

    async def heartbeat(self, request: HeartbeatRequest) -> HeartbeatResponse:
        answer = await self.db.write(partial(self.datanodes.heartbeat, request=request))
        self.throughput.record(request.datanode_id, request.bytes_received, request.bytes_sent)
        if not self.block_tokens.enabled or not any(command.kind == "replicate" for command in answer.commands):
            return answer
        return answer.model_copy(update={"commands": [self._with_token(command) for command in answer.commands]})

    def _with_token(self, command: Command) -> Command:
        """A replicate command carrying the REPLICATE token its targets check."""
        if not isinstance(command, ReplicateBlockCommand):
            return command
        token = self.block_tokens.issue(command.block.block_id, self.superuser, REPLICATE)
        return command.model_copy(update={"token": token})

    async def block_report(self, request: BlockReportRequest) -> None:
        """One page of a full report (up to 50,000 replicas), applied in transactions of
        REPORT_TRANSACTION replicas: other writes get the writer between them, so a DataNode with
        a million blocks never holds the namespace for more than a moment."""
        replicas = request.replicas
        parts = [replicas[start : start + REPORT_TRANSACTION] for start in range(0, len(replicas), REPORT_TRANSACTION)]
        for number, part in enumerate(parts or [[]]):
            last = request.last and number == max(len(parts), 1) - 1
            piece = request.model_copy(update={"replicas": part, "last": last})
            await self.db.write(partial(self.reports.full_report, request=piece))
        if request.last:
            self.safemode.datanode_reported(request.datanode_id)
            if self.safemode.on:
                await self.db.read(self.safemode.update)  # the report may be the one safe mode waited for

    async def incremental_report(self, request: IncrementalReportRequest) -> None:
        await self.db.write(partial(self.reports.incremental_report, request=request))

    # --- cluster ---------------------------------------------------------------------------

    def info(self) -> ClusterInfo:
        s = self.settings
        return ClusterInfo(
            cluster_id=self.cluster_id,
            version=SOFTWARE_VERSION,
            default_block_size=s.default_block_size,
            default_replication=s.default_replication,
            max_replication=s.max_replication,
            min_block_size=s.min_block_size,
            max_block_size=s.max_block_size,
            bytes_per_checksum=s.bytes_per_checksum,
            lease_soft_limit_s=s.lease_soft_limit_s,
        )

    async def report(self) -> ClusterReport:
        return await self.db.read(self._report)

    def throughput_history(self) -> list[tuple[int, float, float]]:
        """Cluster throughput of the last hour, for a chart: `(bucket_start_unix, bytes_written_per_s,
        bytes_read_per_s)` per 10 s bucket, oldest first, without gaps, starting no earlier than this
        NameNode did. Written counts every replica (a put of N bytes at replication 3 writes 3N);
        read counts bytes DataNodes served to readers. From heartbeat counter deltas, so a bucket
        shows bytes when heartbeats reported them (up to one heartbeat interval late); the last
        bucket is the partial current one (its rate is over the seconds elapsed in it)."""
        return self.throughput.history()

    async def readiness(self) -> list[str]:
        """Why this NameNode should not get traffic yet (empty: ready): safe mode, or a failing database."""
        reasons = []
        if self.safemode.on:
            reasons.append(f"in safe mode ({self.safemode.state.value})")
        try:
            await asyncio.wait_for(self.db.read(lambda session: session.execute(text("SELECT 1"))), timeout=5.0)
        except Exception as exc:
            reasons.append(f"metadata database query failed: {type(exc).__name__}: {exc}")
        return reasons

    def _report(self, session: Session) -> ClusterReport:
        nodes = self.datanodes.describe(session)
        live = [node for node in nodes if node.state is not DatanodeState.DEAD]  # stale nodes still hold data
        files, directories = self.namespace.counts(session)
        queued = (
            session.execute(
                select(ReplicationQueueEntry.block_id).where(
                    ReplicationQueueEntry.priority <= PRIORITY_UNDER_REPLICATED
                )
            )
            .scalars()
            .all()
        )
        missing = self._count_missing(session, queued)
        return ClusterReport(
            cluster_id=self.cluster_id,
            capacity=sum(node.capacity for node in live),
            used=sum(node.used for node in live),
            remaining=sum(node.remaining for node in live),
            files=files,
            directories=directories,
            blocks=session.scalar(select(func.count()).select_from(Block)) or 0,
            under_replicated=len(queued) - missing,
            corrupt_replicas=session.scalar(
                select(func.count()).select_from(Replica).where(Replica.state == REPLICA_CORRUPT)
            )
            or 0,
            missing_blocks=missing,
            pending_deletions=session.scalar(select(func.count()).select_from(Invalidation)) or 0,
            live_datanodes=sum(1 for node in nodes if node.state is DatanodeState.LIVE),
            stale_datanodes=sum(1 for node in nodes if node.state is DatanodeState.STALE),
            dead_datanodes=len(nodes) - len(live),
            decommissioning_datanodes=sum(1 for n in nodes if n.admin_state is AdminState.DECOMMISSIONING),
            safe_mode=self.safemode.state,
            replication_queue={
                PRIORITY_NAMES[priority]: count
                for priority, count in session.execute(
                    select(ReplicationQueueEntry.priority, func.count()).group_by(ReplicationQueueEntry.priority)
                )
            },
            pending_replications=session.scalar(select(func.count()).select_from(PendingReplication)) or 0,
            replication_bandwidth_mbps=self.settings.replication_bandwidth_mbps,
            datanodes=nodes,
            namenodes=self.leadership.namenodes(session),
        )

    def _count_missing(self, session: Session, block_ids: Sequence[int]) -> int:
        missing = 0
        for start in range(0, len(block_ids), 1000):
            blocks = session.scalars(select(Block).where(Block.id.in_(block_ids[start : start + 1000]))).all()
            counts = self.blocks.good_replica_counts(session, blocks)
            missing += sum(1 for count in counts.values() if count == 0)
        return missing

    # --- administration --------------------------------------------------------------------

    async def safemode_status(self) -> SafeModeStatus:
        return await self.db.read(self.safemode.status)

    async def safemode_action(self, action: SafeModeAction, *, user: str) -> SafeModeStatus:
        self.checker(user).check_superuser()
        # Cluster-wide: the other NameNodes follow within one leadership round.
        entering = action is SafeModeAction.ENTER
        await self.db.write(partial(self.leadership.set_manual_safemode, on=entering))
        if entering:
            self.safemode.enter()
        else:
            self.safemode.leave()
        return await self.safemode_status()

    async def set_admin_state(self, selector: str, state: AdminState, *, user: str) -> DatanodeInfo:
        self.checker(user).check_superuser()
        return await self.db.write(partial(self.datanodes.set_admin_state, selector=selector, wanted=state))

    async def fsck(self, path: str, flags: FsckRequestFlags, *, user: str) -> FsckReport:
        """Block health under `path`: the superuser's (it names every file and block, as HDFS's fsck)."""
        paths.validate_path(path)
        self.checker(user).check_superuser()

        def run(session: Session) -> FsckReport:
            return Fsck(self.replication.view(session)).run(session, path, flags)

        return await self.db.read(run)

    async def balancer_start(self, request: BalancerRequest, *, user: str) -> BalancerStatus:
        self.checker(user).check_superuser()
        self.leadership.check_leader("the balancer")
        self.safemode.check_writable("the block map (no balancing)")
        self.balancer.start(request)
        return await self.db.read(self.balancer.status)

    async def balancer_stop(self, *, user: str) -> BalancerStatus:
        self.checker(user).check_superuser()
        self.leadership.check_leader("the balancer")
        self.balancer.stop()
        return await self.db.read(self.balancer.status)

    async def balancer_status(self) -> BalancerStatus:
        self.leadership.check_leader("the balancer")
        return await self.db.read(self.balancer.status)

    async def recent_events(self, limit: int = 100, before_id: int | None = None) -> list[ClusterEvent]:
        """Cluster events, newest first (older than `before_id` when paging)."""
        return await self.db.read(partial(self.events.recent, limit=limit, before_id=before_id))
