"""The DataNode's control path to the NameNode: register, heartbeat, report blocks, obey commands.

Registration is retried until the NameNode answers; then a full block report (in
pages), then heartbeats every interval whose replies carry commands. Incremental
reports go out shortly after each replica is finalised or deleted, gathered so that a
burst of small files costs the NameNode one report instead of one per block: within
`INCREMENTAL_REPORT_DELAY_S` for a copy or a cut replica, which only the report announces,
and within `VOUCHED_REPORT_DELAY_S` for a replica a client wrote, whose receipt already
reached the NameNode with the writer's commit (block_receiver). A report that cannot be
delivered is kept and retried with the next heartbeat, so the NameNode eventually hears of
every change.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import structlog
from pydantic import BaseModel

from client.protocol import SOFTWARE_VERSION
from client.protocol.client_namenode import Ack, BadReplica, ReportBadBlocksRequest, Routes
from client.protocol.common import DatanodeRef, ExtendedBlock
from client.protocol.datanode_namenode import (
    MAX_REPORT_PAGE,
    BlockReportRequest,
    Command,
    DeleteBlocksCommand,
    HeartbeatRequest,
    HeartbeatResponse,
    IncrementalReportRequest,
    RegisterRequest,
    RegisterResponse,
    ReplicateBlockCommand,
    ReportedReplica,
    ReregisterCommand,
    TruncateBlockCommand,
)
from client.protocol.errors import (
    ClusterMismatchError,
    DfsError,
    ProtocolError,
    UnauthenticatedError,
    UnknownDatanodeError,
)
from client.protocol.security import HEADER_CLUSTER_AUTH, sign_request
from client.transport import error_from_transport, namenode_urls, raise_for_error
from datanode.counters import DataNodeCounters, ErrorKind
from datanode.storage.block_store import BlockStore, ReplicaInfo

log = structlog.get_logger(__name__)
M = TypeVar("M", bound=BaseModel)

MAX_RETRY_DELAY_S = 10.0
#: Longest a finalised replica waits for its incremental report, gathering others meanwhile.
INCREMENTAL_REPORT_DELAY_S = 0.05
#: The same for a replica whose receipt the writer hands to the NameNode (the report is a backstop).
VOUCHED_REPORT_DELAY_S = 1.0


class Reregister(Exception):  # noqa: N818 - control flow, not an error
    """The NameNode asked (or forgot us): register and report all blocks again."""


class NameNodeLink:
    def __init__(
        self,
        store: BlockStore,
        http: httpx.AsyncClient,
        namenode_url: str,
        me: Callable[[], DatanodeRef],
        stats: Callable[[], HeartbeatRequest],
        replicate: Callable[[ReplicateBlockCommand], Awaitable[bool]],
        heartbeat_interval_s: float | None,
        block_report_interval_s: float | None,
        on_registered: Callable[[RegisterResponse], None] | None = None,
        truncate: Callable[[TruncateBlockCommand], Awaitable[bool]] | None = None,
        counters: DataNodeCounters | None = None,
        cluster_key: bytes | None = None,
    ) -> None:
        self.counters = counters or DataNodeCounters()
        #: Signs every request with the cluster secret, so the NameNode knows it is one of ours.
        self.cluster_key = cluster_key
        self.store = store
        self.http = http
        #: Every NameNode of the cluster (they share one database): heartbeats and reports go to
        #: one at a time; when it stops answering the next takes over, which tells the node to
        #: register again, so that NameNode gets the full block report its safe mode counts.
        self.namenode_urls = namenode_urls(namenode_url)
        self._active = 0
        self.me = me
        self.stats = stats
        self.replicate = replicate
        self.own_heartbeat_interval_s = heartbeat_interval_s
        self.heartbeat_interval_s = heartbeat_interval_s or 3.0
        self.block_report_interval_s = block_report_interval_s
        self.on_registered = on_registered
        self.truncate = truncate
        self.registered = asyncio.Event()
        self._report_lock = asyncio.Lock()
        self._unsent_received: dict[int, ReportedReplica] = {}
        self._unsent_deleted: dict[int, ExtendedBlock] = {}
        self._tasks: set[asyncio.Task[object]] = set()
        self._report_task: asyncio.Task[None] | None = None
        #: Loop time by which the queued incremental report must go out (None: nothing queued).
        self._report_due: float | None = None
        self._report_sooner = asyncio.Event()

    @property
    def namenode_url(self) -> str:
        """The NameNode this node talks to now."""
        return self.namenode_urls[self._active]

    async def _post(self, route: str, body: BaseModel, answer: type[M], timeout: float = 30.0) -> M:
        target = self.namenode_url
        url = target + route
        content = body.model_dump_json().encode()
        headers = {"content-type": "application/json"}
        if self.cluster_key is not None:
            signed_path = httpx.URL(url).raw_path.decode("latin-1")
            headers[HEADER_CLUSTER_AUTH] = sign_request(self.cluster_key, "POST", signed_path, content)
        try:
            response = await self.http.post(url, content=content, timeout=timeout, headers=headers)
        except httpx.HTTPError as exc:
            if isinstance(exc, httpx.TransportError) and len(self.namenode_urls) > 1 and target == self.namenode_url:
                self._active = (self._active + 1) % len(self.namenode_urls)
                log.warning("NameNode not answering; moving on", failed=target, next=self.namenode_url)
            raise error_from_transport(exc, target) from exc
        await raise_for_error(response)
        try:
            return answer.model_validate_json(response.content)
        except ValueError as exc:
            raise ProtocolError(f"unreadable answer from the NameNode on {route}: {exc}") from exc

    # --- main loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Register, report, heartbeat; forever (until cancelled)."""
        while True:
            try:
                await self._register()
                await self._full_report()
                self.registered.set()
                await self._heartbeat_loop()
            except Reregister:
                self.registered.clear()
                log.info("re-registering with the NameNode")
            except ClusterMismatchError as exc:
                self.registered.clear()
                log.error("refusing NameNode of another cluster", error=str(exc))
                self.counters.record_error(ErrorKind.NAMENODE_LOST, f"refusing NameNode of another cluster: {exc}")
                await asyncio.sleep(MAX_RETRY_DELAY_S)
            except Exception as exc:  # never let the control path die: the node would be declared dead
                self.registered.clear()
                log.warning("lost the NameNode; registering again", error=str(exc), kind=type(exc).__name__)
                self.counters.record_error(
                    ErrorKind.NAMENODE_LOST, f"registering again after {type(exc).__name__}: {exc}"
                )
                await asyncio.sleep(1.0)

    async def _register(self) -> None:
        delay = 0.2
        while True:
            me = self.me()
            capacity, free = self.store.disk_usage()
            request = RegisterRequest(
                datanode_id=me.id,
                url=me.url,
                rack=me.rack,
                cluster_id=self.store.identity.cluster_id,
                capacity=capacity,
                used=self.store.used_bytes(),
                remaining=free,
                version=SOFTWARE_VERSION,
            )
            try:
                answer = await self._post(Routes.REGISTER, request, RegisterResponse)
                break
            except ClusterMismatchError:
                raise
            except UnauthenticatedError as exc:
                log.error("the NameNode refused this node's cluster secret; retrying", error=str(exc))
                self.counters.record_error(ErrorKind.NAMENODE_LOST, f"registration refused: {exc}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY_S)
            except DfsError as exc:
                log.warning("NameNode not reachable for registration; retrying", error=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY_S)
        self.store.adopt_cluster(answer.cluster_id)
        self.heartbeat_interval_s = self.own_heartbeat_interval_s or answer.heartbeat_interval_s
        if self.block_report_interval_s is None:
            self.block_report_interval_s = answer.block_report_interval_s
        if self.on_registered is not None:
            self.on_registered(answer)
        log.info("registered with NameNode", namenode=self.namenode_url, cluster_id=answer.cluster_id)

    async def _full_report(self) -> None:
        """Send every replica, in pages; replicas finalised meanwhile reach the NameNode incrementally."""
        report_id = uuid.uuid4().hex
        async with self._report_lock:
            replicas = [
                ReportedReplica(block_id=r.block_id, gen_stamp=r.gen_stamp, length=r.length, state=r.state)
                for r in self.store.snapshot()
            ]
            pages = [replicas[i : i + MAX_REPORT_PAGE] for i in range(0, len(replicas), MAX_REPORT_PAGE)] or [[]]
            await self._send_page(report_id, 0, pages[0], last=len(pages) == 1)
        for number, page in enumerate(pages[1:], start=1):
            await self._send_page(report_id, number, page, last=number == len(pages) - 1)
        log.info("full block report sent", replicas=len(replicas), pages=len(pages))

    async def _send_page(self, report_id: str, page: int, replicas: list[ReportedReplica], *, last: bool) -> None:
        request = BlockReportRequest(
            datanode_id=self.me().id, report_id=report_id, page=page, last=last, replicas=replicas
        )
        try:
            await self._post(Routes.BLOCK_REPORT, request, Ack, timeout=300.0)
        except UnknownDatanodeError as exc:
            raise Reregister() from exc

    async def _heartbeat_loop(self) -> None:
        last_report = time.monotonic()
        while True:
            await asyncio.sleep(self.heartbeat_interval_s)
            try:
                answer = await self._post(Routes.HEARTBEAT, self.stats(), HeartbeatResponse)
            except UnknownDatanodeError as exc:
                raise Reregister() from exc
            except DfsError as exc:
                log.warning("heartbeat failed", error=str(exc))
                self.counters.record_error(ErrorKind.HEARTBEAT_FAILED, f"heartbeat failed: {exc}")
                continue
            for command in answer.commands:
                self._execute(command)
            await self._flush_incremental()
            interval = self.block_report_interval_s
            if interval is not None and time.monotonic() - last_report > interval:
                await self._full_report()
                last_report = time.monotonic()

    # --- commands --------------------------------------------------------------------------

    def _execute(self, command: Command) -> None:
        if isinstance(command, ReregisterCommand):
            raise Reregister()
        if isinstance(command, DeleteBlocksCommand):
            self._spawn(self._delete_blocks(command))
        elif isinstance(command, ReplicateBlockCommand):
            self._spawn(self.replicate(command))
        elif isinstance(command, TruncateBlockCommand) and self.truncate is not None:
            self._spawn(self.truncate(command))

    def _spawn(self, coroutine: Awaitable[object]) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _delete_blocks(self, command: DeleteBlocksCommand) -> None:
        loop = asyncio.get_running_loop()
        deleted = []
        for block in command.blocks:
            if await loop.run_in_executor(None, self.store.delete, block.block_id, block.gen_stamp):
                deleted.append(block)
        if deleted:
            log.info("replicas deleted", count=len(deleted))
            for block in deleted:
                self._unsent_deleted[block.block_id] = block
            await self._flush_incremental()

    # --- incremental reports ---------------------------------------------------------------

    async def replica_finalized(self, replica: ReplicaInfo, *, vouched: bool = False) -> None:
        """Queue the report that we hold a replica (`vouched`: its receipt went to the writer)."""
        entry = ReportedReplica(
            block_id=replica.block_id, gen_stamp=replica.gen_stamp, length=replica.length, state=replica.state
        )
        self._unsent_received[replica.block_id] = entry
        due = asyncio.get_running_loop().time() + (VOUCHED_REPORT_DELAY_S if vouched else INCREMENTAL_REPORT_DELAY_S)
        if self._report_due is None or due < self._report_due:
            self._report_due = due
            self._report_sooner.set()
        if self._report_task is None or self._report_task.done():
            # In a context of its own: the report gathers many writes, it is part of none of them.
            loop = asyncio.get_running_loop()
            self._report_task = loop.create_task(self._report_when_due(), context=contextvars.Context())

    async def _report_when_due(self) -> None:
        """Send the queued report when it is due, and again for what is queued meanwhile; a failed
        send waits for the next heartbeat (or the full report after registering again)."""
        loop = asyncio.get_running_loop()
        while self._report_due is not None:
            wait = self._report_due - loop.time()
            if wait > 0:
                self._report_sooner.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._report_sooner.wait(), wait)
                continue
            self._report_due = None
            if not await self._flush_incremental():
                return

    async def _flush_incremental(self) -> bool:
        """Send the queued changes; False if they could not be delivered (they stay queued)."""
        if not (self._unsent_received or self._unsent_deleted):
            return True
        if not self.registered.is_set():
            return False
        async with self._report_lock:
            received = list(self._unsent_received.values())
            deleted = list(self._unsent_deleted.values())
            request = IncrementalReportRequest(datanode_id=self.me().id, received=received, deleted=deleted)
            try:
                await self._post(Routes.INCREMENTAL_REPORT, request, Ack, timeout=10.0)
            except DfsError as exc:
                log.warning("incremental report not delivered; will retry", error=str(exc))
                return False
            for entry in received:
                if self._unsent_received.get(entry.block_id) == entry:
                    del self._unsent_received[entry.block_id]
            for block in deleted:
                if self._unsent_deleted.get(block.block_id) == block:
                    del self._unsent_deleted[block.block_id]
        return True

    async def report_corrupt(self, block: ExtendedBlock, reason: str) -> None:
        """A read or copy found a replica here that fails its checksums."""
        log.error("corrupt replica found", block=block.block_id, reason=reason)
        request = ReportBadBlocksRequest(replicas=[BadReplica(block=block, datanode_id=self.me().id, reason=reason)])
        try:
            await self._post(Routes.REPORT_BAD_BLOCKS, request, Ack, timeout=10.0)
        except DfsError as exc:
            log.warning("could not report corrupt replica", block=block.block_id, error=str(exc))

    async def close(self) -> None:
        tasks = [*self._tasks, *([self._report_task] if self._report_task is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
