"""Serving a block checksum: Hadoop's MD5-of-CRC32C of a finalised replica, from verified bytes.

Our replicas carry xxh3 digests, not Hadoop's CRC32C, so the CRCs are recomputed from the
data. Every packet is read and checked against its own chunk digests first (as a read
does), so a corrupt replica answers CHECKSUM_MISMATCH (and is reported to the NameNode)
instead of a checksum of bad bytes. The CPU work runs a packet at a time in the disk
pool, like reads, so one large block neither blocks the event loop nor holds a disk
thread for its whole length.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from client.protocol.block_format import validate_bytes_per_checksum
from client.protocol.common import ExtendedBlock
from client.protocol.data_transfer import BlockChecksumResponse
from client.protocol.errors import (
    ChecksumMismatchError,
    DfsError,
    InternalError,
    InvalidArgumentError,
)
from client.protocol.hadoop_checksum import BlockChecksum, BlockMd5Crc
from datanode.block_sender import open_replica
from datanode.storage.block_store import BlockStore
from datanode.storage.replica_reader import ReplicaReader

log = structlog.get_logger(__name__)


class BlockChecksummer:
    def __init__(
        self,
        store: BlockStore,
        disk: concurrent.futures.Executor,
        packet_size: int,
        on_corrupt: Callable[[ExtendedBlock, str], Awaitable[None]],
    ) -> None:
        self.store = store
        self.disk = disk
        self.packet_size = packet_size
        self.on_corrupt = on_corrupt

    async def compute(
        self, block_id: int, gen_stamp: int, length: int | None, bytes_per_crc: int
    ) -> BlockChecksumResponse:
        """Checksum of block[0:length] (the whole replica if `length` is None)."""
        try:
            validate_bytes_per_checksum(bytes_per_crc)
        except ValueError as exc:
            raise InvalidArgumentError(f"bytes_per_crc: {exc}") from None
        replica = self.store.finalized(block_id, gen_stamp)
        end = replica.length if length is None else length
        if end > replica.length:
            raise InvalidArgumentError(f"block {block_id} holds {replica.length} bytes here, not {end}")
        block = ExtendedBlock(block_id=block_id, gen_stamp=replica.gen_stamp)
        reader = await open_replica(self.store, self.disk, block_id, gen_stamp, self.on_corrupt)
        try:
            digest = await self._digest(reader, end, bytes_per_crc)
        except ChecksumMismatchError as exc:
            await self.on_corrupt(block, exc.message)
            raise
        except DfsError:
            raise
        except OSError as exc:
            log.error("checksum read failed", block=block_id, error=str(exc))
            raise InternalError(f"read failed: {exc}") from exc
        return BlockChecksumResponse(
            block_id=block_id,
            gen_stamp=replica.gen_stamp,
            length=end,
            bytes_per_crc=bytes_per_crc,
            crc_count=digest.crc_count,
            md5_hex=digest.md5.hex(),
        )

    async def _digest(self, reader: ReplicaReader, end: int, bytes_per_crc: int) -> BlockChecksum:
        """Feed verified packets covering [0, end) to the digest, one disk-pool job per packet."""
        loop = asyncio.get_running_loop()
        digest = BlockMd5Crc(bytes_per_crc)
        plan = reader.plan(0, end)
        bpc = plan.bytes_per_checksum
        packet_size = max(bpc, self.packet_size // bpc * bpc)
        pending: asyncio.Future[None] | None = None
        try:
            for start, size in reader.packets(plan, packet_size):
                pending = loop.run_in_executor(self.disk, _digest_packet, reader, digest, start, size, end)
                await pending
            return digest.finish()
        finally:
            if pending is not None and not pending.done():
                # Never close the files under a read still running in a worker thread.
                with contextlib.suppress(BaseException):
                    await pending
            reader.close()


def _digest_packet(reader: ReplicaReader, digest: BlockMd5Crc, start: int, size: int, end: int) -> None:
    """Read and verify one packet (whole xxh3 chunks), then digest the part before `end`."""
    _, data = reader.read_packet(start, size)
    digest.update(memoryview(data)[: max(0, end - start)])
