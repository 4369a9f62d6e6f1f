"""Executing a truncate command: cut a local replica in place to a new length under a new stamp.

The replica goes back to rbw (as for a pipeline recovery), is cut with its last partial
chunk's checksum recomputed and its meta file renamed to the new stamp, then fsynced,
finalised and reported like any new replica. Before a finalised replica is cut, the chunk
that will be cut short is verified against its stored checksum: recomputing that checksum
over rotten bytes would otherwise make the rot look valid.

A crash part-way leaves an rbw replica at the old or the new stamp; the NameNode sends the
command again and the cut is simply redone. A replica already cut is only reported again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from collections.abc import Awaitable, Callable

import structlog

from client.protocol.block_format import META_HEADER_SIZE, decode_meta_header
from client.protocol.common import ExtendedBlock
from client.protocol.datanode_namenode import ReplicaState, TruncateBlockCommand
from client.protocol.errors import (
    ChecksumMismatchError,
    DfsError,
    InvalidArgumentError,
    ReplicaNotFoundError,
    StaleGenerationError,
)
from datanode.storage.block_store import BlockStore, ReplicaInfo
from datanode.storage.replica_reader import ReplicaReader
from datanode.storage.replica_writer import ReplicaWriter

log = structlog.get_logger(__name__)


class BlockTruncator:
    """Runs truncate commands on the disk threads, one at a time per block."""

    def __init__(
        self,
        store: BlockStore,
        disk: concurrent.futures.Executor,
        on_cut: Callable[[ReplicaInfo], Awaitable[None]],
        on_corrupt: Callable[[ExtendedBlock, str], Awaitable[None]],
    ) -> None:
        self.store = store
        self.disk = disk
        self.on_cut = on_cut
        self.on_corrupt = on_corrupt
        self._busy: set[int] = set()

    async def truncate(self, command: TruncateBlockCommand) -> bool:
        """Cut the replica and report it; False (logged) if this node cannot."""
        block_id = command.block.block_id
        if block_id in self._busy:
            return False  # the command came again while the first one runs
        self._busy.add(block_id)
        try:
            replica = await asyncio.get_running_loop().run_in_executor(self.disk, cut_replica, self.store, command)
        except ChecksumMismatchError as exc:
            # Reported under the new stamp, so the NameNode records it and stops asking this node.
            await self.on_corrupt(ExtendedBlock(block_id=block_id, gen_stamp=command.new_gen_stamp), exc.message)
            return False
        except (DfsError, OSError) as exc:
            log.warning("cannot truncate replica", block=block_id, error=str(exc))
            return False
        finally:
            self._busy.discard(block_id)
        log.info("replica truncated", block=block_id, gen_stamp=replica.gen_stamp, length=replica.length)
        await self.on_cut(replica)
        return True


def cut_replica(store: BlockStore, command: TruncateBlockCommand) -> ReplicaInfo:
    """Bring the local replica to (new stamp, new length), durably; returns it finalised."""
    block_id, length = command.block.block_id, command.new_length
    old_stamp, new_stamp = command.block.gen_stamp, command.new_gen_stamp
    replica = store.get(block_id)
    if replica is None:
        raise ReplicaNotFoundError(f"no replica of block {block_id} here to truncate")
    if replica.state is ReplicaState.FINALIZED and (replica.gen_stamp, replica.length) == (new_stamp, length):
        return replica  # cut already; the report may have been lost
    if replica.gen_stamp not in (old_stamp, new_stamp):
        raise StaleGenerationError(
            f"replica of block {block_id} is at generation {replica.gen_stamp}, not {old_stamp} or {new_stamp}"
        )
    if replica.length < length:
        raise InvalidArgumentError(f"replica of block {block_id} holds {replica.length} bytes, cannot cut to {length}")
    if replica.state is ReplicaState.FINALIZED:
        bytes_per_checksum = _verify_cut_chunk(replica, length)
        replica = store.unfinalize(replica)
    else:
        bytes_per_checksum = _bytes_per_checksum(replica)
    writer = ReplicaWriter.reopen(
        store, block_id, new_stamp, bytes_per_checksum, length, accepted_gen_stamps={old_stamp, new_stamp}
    )
    try:
        return writer.finalize()
    except BaseException:
        writer.close()
        raise


def _verify_cut_chunk(replica: ReplicaInfo, length: int) -> int:
    """Check the chunk `length` falls inside (its checksum is about to be recomputed); returns the chunk size."""
    reader = ReplicaReader(replica)  # also checks the data and meta file sizes
    try:
        bpc = reader.header.bytes_per_checksum
        start = length - length % bpc
        if start < length:
            reader.read_packet(start, min(replica.length, start + bpc) - start)
        return bpc
    finally:
        reader.close()


def _bytes_per_checksum(replica: ReplicaInfo) -> int:
    with replica.meta_path.open("rb") as meta:
        return decode_meta_header(os.pread(meta.fileno(), META_HEADER_SIZE, 0)).bytes_per_checksum
