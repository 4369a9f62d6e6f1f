"""Executing a re-replication command: stream a local finalised replica to new DataNodes."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import structlog

from client.block_io import send_segment
from client.protocol.common import ExtendedBlock
from client.protocol.data_transfer import WriteBlockHeader, WriteStage, encode_packet_prefix
from client.protocol.datanode_namenode import ReplicateBlockCommand
from client.protocol.errors import ChecksumMismatchError, DfsError
from datanode.counters import DataNodeCounters, ErrorKind
from datanode.storage.block_store import BlockStore
from datanode.storage.replica_reader import ReplicaReader

log = structlog.get_logger(__name__)


class Replicator:
    def __init__(
        self,
        store: BlockStore,
        http: httpx.AsyncClient,
        disk: concurrent.futures.Executor,
        packet_size: int,
        transfer_timeout_s: float,
        on_corrupt: Callable[[ExtendedBlock, str], Awaitable[None]],
        own_rate_bytes_per_s: float | None = None,
        counters: DataNodeCounters | None = None,
    ) -> None:
        self.counters = counters or DataNodeCounters()
        self.store = store
        self.http = http
        self.disk = disk
        self.packet_size = packet_size
        self.timeout = transfer_timeout_s
        self.on_corrupt = on_corrupt
        self.own_rate = own_rate_bytes_per_s
        #: Bytes sent by copies so far (for /v1/info and the recovery benchmark).
        self.bytes_sent = 0

    async def replicate(self, command: ReplicateBlockCommand) -> bool:
        """Copy the block to the command's targets (as one pipeline); True on success."""
        block = command.block
        loop = asyncio.get_running_loop()
        try:
            replica = self.store.finalized(block.block_id, block.gen_stamp)
            reader = await loop.run_in_executor(self.disk, ReplicaReader, replica)
        except ChecksumMismatchError as exc:
            await self.on_corrupt(block, exc.message)
            return False
        except (DfsError, OSError) as exc:
            log.warning("cannot replicate: replica unavailable", block=block.block_id, error=str(exc))
            self.counters.record_error(ErrorKind.REPLICATION_FAILED, f"replica unavailable: {exc}", block.block_id)
            return False
        header = WriteBlockHeader(
            block_id=block.block_id,
            gen_stamp=replica.gen_stamp,
            stage=WriteStage.REPLICATE,
            offset=0,
            final=True,
            bytes_per_checksum=reader.header.bytes_per_checksum,
            downstream=list(command.targets[1:]),
        )
        try:
            ack = await send_segment(
                self.http,
                command.targets[0],
                header,
                self._packets(reader, self._rate(command)),
                token=command.token,
                timeout=httpx.Timeout(self.timeout, connect=10.0),
            )
        except ChecksumMismatchError as exc:
            # Raised by our own packet reader while streaming: this replica is corrupt.
            await self.on_corrupt(block, exc.message)
            return False
        except DfsError as exc:
            log.warning("replication failed", block=block.block_id, target=command.targets[0].url, error=str(exc))
            self.counters.record_error(
                ErrorKind.REPLICATION_FAILED, f"copy to {command.targets[0].url} failed: {exc}", block.block_id
            )
            return False
        finally:
            reader.close()
        ok = all(node.ok for node in ack.nodes)
        if not ok:
            failed = ", ".join(node.url for node in ack.nodes if not node.ok)
            self.counters.record_error(ErrorKind.REPLICATION_FAILED, f"not acknowledged by {failed}", block.block_id)
        log.info("block replicated", block=block.block_id, targets=[t.id for t in command.targets], ok=ok)
        return ok

    def _rate(self, command: ReplicateBlockCommand) -> float | None:
        rates = [r for r in (command.max_rate_bytes_per_s, self.own_rate) if r]
        return min(rates) if rates else None

    async def _packets(self, reader: ReplicaReader, rate: float | None) -> AsyncIterator[bytes]:
        """The replica's packets, paced to at most `rate` bytes per second."""
        loop = asyncio.get_running_loop()
        bpc = reader.header.bytes_per_checksum
        plan = reader.plan(0, None)
        started, sent = loop.time(), 0
        for start, size in reader.packets(plan, max(bpc, self.packet_size // bpc * bpc)):
            digests, data = await loop.run_in_executor(self.disk, reader.read_packet, start, size)
            if rate:
                ahead = sent / rate - (loop.time() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            # Counted as handed to the transport: a generator resumed only on the next pull would
            # count the last packet after the target had already reported the replica.
            sent += len(data)
            self.bytes_sent += len(data)
            yield encode_packet_prefix(start, len(data), digests)
            yield data
