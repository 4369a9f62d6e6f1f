"""The DataNode: storage, the data path (receiver, sender, replicator) and the NameNode link."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Iterator

import httpx

from client.protocol.common import DatanodeRef, ExtendedBlock
from client.protocol.datanode_namenode import HeartbeatRequest, RegisterResponse, ReplicateBlockCommand
from client.protocol.errors import ServerBusyError
from client.protocol.security import cluster_request_key, replica_receipt_key
from client.request_id import new_request_id
from client.tls import client_ssl_context, default_ca_file
from client.transport import make_http_client
from datanode.block_checksum import BlockChecksummer
from datanode.block_receiver import BlockReceiver
from datanode.block_sender import BlockSender
from datanode.block_tokens import BlockTokenVerifier
from datanode.block_truncator import BlockTruncator
from datanode.config import DataNodeSettings
from datanode.counters import DataNodeCounters, ErrorKind
from datanode.namenode_link import NameNodeLink
from datanode.replicator import Replicator
from datanode.scanner import BlockScanner
from datanode.storage.block_store import BlockStore, ReplicaInfo
from server_common.request_id import bound_request_id
from server_common.webhdfs import DataOps

#: What a busy DataNode asks senders to wait: transfers last milliseconds to seconds, and the
#: SDK tries the other replicas first and jitters its own backoff anyway.
BUSY_RETRY_AFTER_S = 0.5


class DataNode:
    def __init__(self, settings: DataNodeSettings, advertise_url: str) -> None:
        self.settings = settings
        self.advertise_url = advertise_url.rstrip("/")
        secret = settings.resolve_cluster_secret()
        #: Every data request shows a block access token the NameNode signed (datanode.block_tokens).
        self.block_tokens = BlockTokenVerifier(secret)
        self.store = BlockStore(settings.data_dir, settings.capacity_bytes, direct_io=settings.direct_io)
        self.disk = concurrent.futures.ThreadPoolExecutor(settings.disk_threads, thread_name_prefix="disk")
        self.http = make_http_client(
            timeout=httpx.Timeout(settings.transfer_timeout_s, connect=10.0),
            verify=client_ssl_context(settings.tls_ca_file or default_ca_file()),
        )
        self.active_transfers = 0
        #: Requests answered 503 BUSY because `max_transfers` were in progress.
        self.transfers_refused = 0
        #: Bytes moved, checksum failures and recent errors (for /v1/info, /metrics and heartbeats).
        self.counters = DataNodeCounters()
        self.replicator = Replicator(
            self.store,
            self.http,
            self.disk,
            settings.packet_size,
            settings.transfer_timeout_s,
            on_corrupt=self._report_corrupt,
            own_rate_bytes_per_s=_mb(settings.replication_bandwidth_mbps),
            counters=self.counters,
        )
        self.scanner = BlockScanner(
            self.store,
            self.disk,
            self._report_corrupt,
            period_s=settings.scan_period_s,
            rate_bytes_per_s=_mb(settings.scan_rate_mbps),
            counters=self.counters,
        )
        self.truncator = BlockTruncator(self.store, self.disk, on_cut=self._cut, on_corrupt=self._report_corrupt)
        self.link = NameNodeLink(
            self.store,
            self.http,
            settings.namenode_url,
            me=self.ref,
            stats=self.stats,
            replicate=self._replicate,
            heartbeat_interval_s=settings.heartbeat_interval_s,
            block_report_interval_s=settings.block_report_interval_s,
            on_registered=self._registered,
            truncate=self.truncator.truncate,
            counters=self.counters,
            cluster_key=cluster_request_key(secret),
        )
        self.receiver = BlockReceiver(
            self.store,
            self.http,
            self.disk,
            self.ref,
            self._finalized,
            settings.transfer_timeout_s,
            counters=self.counters,
            max_block_size=settings.max_block_size,
            receipt_key=replica_receipt_key(secret),
        )
        self.sender = BlockSender(self.store, self.disk, settings.packet_size, self._report_corrupt, self.counters)
        self.checksummer = BlockChecksummer(self.store, self.disk, settings.packet_size, self._report_corrupt)
        self._link_task: asyncio.Task[None] | None = None
        self._scanner_task: asyncio.Task[None] | None = None
        #: WebHDFS data operations the NameNode redirects here, served through the SDK.
        self.webhdfs = DataOps(settings.namenode_url, ca_file=settings.tls_ca_file)

    def _registered(self, answer: RegisterResponse) -> None:
        self.scanner.configure(answer.scan_period_s, answer.scan_rate_bytes_per_s)
        self.block_tokens.configure(answer.block_tokens)

    def ref(self) -> DatanodeRef:
        return DatanodeRef(id=self.store.identity.datanode_id, url=self.advertise_url, rack=self.settings.rack)

    def stats(self) -> HeartbeatRequest:
        capacity, free = self.store.disk_usage()
        return HeartbeatRequest(
            datanode_id=self.store.identity.datanode_id,
            capacity=capacity,
            used=self.store.used_bytes(),
            remaining=free,
            active_transfers=self.active_transfers,
            bytes_received=self.counters.bytes_received,
            bytes_sent=self.counters.bytes_sent,
        )

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self.disk, self.store.open)
        self._link_task = asyncio.create_task(self.link.run(), name="namenode-link")
        self._scanner_task = asyncio.create_task(self.scanner.run(), name="block-scanner")

    async def stop(self) -> None:
        for task in (self._scanner_task, self._link_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.webhdfs.close()
        await self.link.close()
        await self.http.aclose()
        self.disk.shutdown(wait=True)

    @contextlib.contextmanager
    def transfer(self) -> Iterator[None]:
        """Count a data transfer in progress (reported with heartbeats, used for placement)."""
        self.active_transfers += 1
        try:
            yield
        finally:
            self.active_transfers -= 1

    def admit(self) -> contextlib.AbstractContextManager[None]:
        """A transfer slot for a client or pipeline request, or ServerBusyError (503 + Retry-After)
        while `max_transfers` are in progress. Raised before the request's body is read, so the
        refusal changed nothing and the sender may retry or go to another replica."""
        limit = self.settings.max_transfers
        if self.active_transfers >= limit:
            self.transfers_refused += 1
            raise ServerBusyError(
                f"DataNode {self.advertise_url} is busy: {self.active_transfers} transfers in progress (limit {limit})",
                retry_after_s=BUSY_RETRY_AFTER_S,
            )
        return self.transfer()

    async def _replicate(self, command: ReplicateBlockCommand) -> bool:
        # A copy is no client's request: give it an id of its own, shared with its targets' lines.
        with self.transfer(), bound_request_id(new_request_id()):
            return await self.replicator.replicate(command)

    async def _finalized(self, replica: ReplicaInfo, vouched: bool) -> None:
        self.scanner.mark_verified(replica.block_id)  # every chunk was verified on its way in
        await self.link.replica_finalized(replica, vouched=vouched)

    async def _cut(self, replica: ReplicaInfo) -> None:
        await self.link.replica_finalized(replica)  # a truncated replica is reported like a new one

    async def _report_corrupt(self, block: ExtendedBlock, reason: str) -> None:
        # Every reader of stored replicas (serve, copy, scan, checksum, cut) reports corruption here.
        self.counters.checksum_failure(ErrorKind.CORRUPT_REPLICA, reason, block.block_id)
        await self.link.report_corrupt(block, reason)


def _mb(value: float | None) -> float | None:
    return None if value is None else value * 1_000_000
