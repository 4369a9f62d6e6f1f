"""Serving a read: verified, chunk-aligned packets of a finalised replica, read one ahead.

Each packet is read and verified in a worker thread while the previous one is being
sent. A checksum mismatch is reported to the NameNode and ends the stream with an
in-band error packet: corrupt bytes are never sent as good data.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog

from client.protocol.common import ExtendedBlock
from client.protocol.data_transfer import (
    ReadBlockHeader,
    encode_error_packet,
    encode_packet_prefix,
)
from client.protocol.errors import ChecksumMismatchError, DfsError, InternalError, ReplicaNotFoundError
from datanode.counters import DataNodeCounters, ErrorKind
from datanode.storage.block_store import BlockStore
from datanode.storage.replica_reader import ReadPlan, ReplicaReader

log = structlog.get_logger(__name__)


async def open_replica(
    store: BlockStore,
    disk: concurrent.futures.Executor,
    block_id: int,
    gen_stamp: int,
    on_corrupt: Callable[[ExtendedBlock, str], Awaitable[None]],
) -> ReplicaReader:
    """Open the finalised replica (of `gen_stamp` or newer) for reading, in the disk pool.

    A damaged meta header is reported as corrupt; files removed under us make the replica
    forgotten (the next block report says so) and answer REPLICA_NOT_FOUND."""
    replica = store.finalized(block_id, gen_stamp)
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(disk, ReplicaReader, replica)
    except ChecksumMismatchError as exc:
        await on_corrupt(ExtendedBlock(block_id=block_id, gen_stamp=replica.gen_stamp), exc.message)
        raise
    except FileNotFoundError:
        store.forget(block_id)
        log.error("replica files are missing", block=block_id)
        raise ReplicaNotFoundError(f"replica of block {block_id} is gone from this DataNode") from None


class BlockSender:
    def __init__(
        self,
        store: BlockStore,
        disk: concurrent.futures.Executor,
        packet_size: int,
        on_corrupt: Callable[[ExtendedBlock, str], Awaitable[None]],
        counters: DataNodeCounters | None = None,
    ) -> None:
        self.store = store
        self.disk = disk
        self.packet_size = packet_size
        self.on_corrupt = on_corrupt
        self.counters = counters or DataNodeCounters()

    async def open(
        self, block_id: int, gen_stamp: int, offset: int, length: int | None
    ) -> tuple[ReadBlockHeader, AsyncIterator[bytes]]:
        """Check the request and open the replica; the iterator then streams the packets."""
        reader = await open_replica(self.store, self.disk, block_id, gen_stamp, self.on_corrupt)
        replica = reader.replica
        try:
            plan = reader.plan(offset, length)
        except DfsError:
            reader.close()
            raise
        header = ReadBlockHeader(
            block_id=block_id,
            gen_stamp=replica.gen_stamp,
            replica_length=replica.length,
            offset=plan.start,
            length=plan.end - plan.start,
            bytes_per_checksum=plan.bytes_per_checksum,
        )
        return header, self._stream(reader, plan)

    async def _stream(self, reader: ReplicaReader, plan: ReadPlan) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        bpc = plan.bytes_per_checksum
        packet_size = max(bpc, self.packet_size // bpc * bpc)
        spans = list(reader.packets(plan, packet_size))
        ahead: asyncio.Future[tuple[bytes, bytes]] | None = None
        try:
            ahead = loop.run_in_executor(self.disk, reader.read_packet, *spans[0]) if spans else None
            for index, (start, _size) in enumerate(spans):
                assert ahead is not None
                try:
                    digests, data = await ahead
                except ChecksumMismatchError as exc:
                    block = ExtendedBlock(block_id=reader.replica.block_id, gen_stamp=reader.replica.gen_stamp)
                    await self.on_corrupt(block, exc.message)
                    yield encode_error_packet(exc.to_body())
                    return
                except OSError as exc:
                    log.error("read failed", block=reader.replica.block_id, error=str(exc))
                    self.counters.record_error(ErrorKind.READ_FAILED, f"read failed: {exc}", reader.replica.block_id)
                    yield encode_error_packet(InternalError(f"read failed: {exc}").to_body())
                    return
                if index + 1 < len(spans):
                    ahead = loop.run_in_executor(self.disk, reader.read_packet, *spans[index + 1])
                yield encode_packet_prefix(start, len(data), digests)
                yield data
                self.counters.bytes_sent += len(data)
        finally:
            if ahead is not None:
                # Never close the files under a read still running in a worker thread.
                with contextlib.suppress(BaseException):
                    await ahead
            reader.close()
