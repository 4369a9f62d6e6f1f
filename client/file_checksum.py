"""A file's Hadoop-compatible checksum: one block checksum per block from a DataNode, composed here.

As Hadoop's ``FileChecksumHelper.ReplicatedFileChecksumComputer`` does, each block is
asked of one replica at a time, moving on to the next replica on any error (a dead node,
a corrupt replica: the DataNode has already reported that one to the NameNode); replicas
that were only busy are asked again after a backoff. A few
blocks are asked in parallel, since each DataNode spends a moment of CPU per block.

A file being written: Hadoop checksums whatever blocks the NameNode lists, including the
block under construction at the length the NameNode last heard of, so its answer for an
open file is a moving snapshot. Our NameNode lists only blocks whose length is settled,
so an open file's checksum covers its completed blocks: the bytes a reader can see.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import httpx

from client.backoff import RetryBudget
from client.namenode_rpc import NameNodeRPC
from client.protocol.block_format import chunk_count
from client.protocol.client_namenode import LocatedBlock
from client.protocol.common import DatanodeRef, ExtendedBlock
from client.protocol.data_transfer import BlockChecksumResponse, block_checksum_url
from client.protocol.errors import BlockMissingError, DfsError, ProtocolError, ServerBusyError
from client.protocol.hadoop_checksum import BYTES_PER_CRC, BlockChecksum, FileChecksum, compose_file_checksum
from client.protocol.security import HEADER_BLOCK_TOKEN
from client.transport import error_from_transport, raise_for_error

# A library logs through stdlib logging: silent unless the application configures it.
log = logging.getLogger(__name__)

#: Blocks checksummed at once (on different DataNodes, mostly).
PARALLEL_BLOCKS = 4
#: How long a block's replicas may all stay busy (503 BUSY) before its checksum fails.
BUSY_DEADLINE_S = 60.0


async def fetch_block_checksum(
    http: httpx.AsyncClient,
    node: DatanodeRef,
    block: ExtendedBlock,
    length: int,
    bytes_per_crc: int = BYTES_PER_CRC,
    token: str = "",
) -> BlockChecksumResponse:
    """Ask one DataNode for the checksum of block[0:length]; raises the DfsError it answers."""
    params = {"gen_stamp": block.gen_stamp, "length": length, "bytes_per_crc": bytes_per_crc}
    headers = {HEADER_BLOCK_TOKEN: token} if token else None
    try:
        response = await http.get(block_checksum_url(node.url, block.block_id), params=params, headers=headers)
    except httpx.HTTPError as exc:
        raise error_from_transport(exc, node.url) from exc
    await raise_for_error(response)
    try:
        answer = BlockChecksumResponse.model_validate_json(response.content)
    except ValueError as exc:
        raise ProtocolError(f"{node.url} sent an unreadable block checksum: {exc}") from exc
    expected = (block.block_id, length, bytes_per_crc, chunk_count(length, bytes_per_crc))
    if (answer.block_id, answer.length, answer.bytes_per_crc, answer.crc_count) != expected:
        raise ProtocolError(f"{node.url} answered a checksum of something else: {answer}")
    return answer


async def checksum_block(
    http: httpx.AsyncClient, path: str, located: LocatedBlock, bytes_per_crc: int = BYTES_PER_CRC
) -> BlockChecksum:
    """One block's checksum from the first replica that can give it, in location order; replicas
    that answered 503 BUSY are asked again after a jittered backoff (for up to BUSY_DEADLINE_S)."""
    failures: list[str] = []
    nodes = list(located.locations)
    budget: RetryBudget | None = None
    while nodes:
        busy: list[DatanodeRef] = []
        hint: float | None = None
        for node in nodes:
            try:
                answer = await fetch_block_checksum(
                    http, node, located.block, located.length, bytes_per_crc, token=located.token
                )
            except ServerBusyError as exc:
                busy.append(node)
                hint = exc.retry_after_s
                continue
            except DfsError as exc:
                failures.append(f"{node.url}: {exc}")
                log.warning(
                    "block checksum failed, trying another replica: path=%s block=%s datanode=%s error=%s",
                    path,
                    located.block.block_id,
                    node.url,
                    exc,
                )
                continue
            return BlockChecksum(bytes.fromhex(answer.md5_hex), answer.crc_count)
        if not busy:
            break
        budget = budget or RetryBudget(BUSY_DEADLINE_S)
        if not await budget.wait(hint):
            failures.extend(f"{node.url}: busy for {BUSY_DEADLINE_S:g}s" for node in busy)
            break
        nodes = busy
    raise BlockMissingError(
        f"could not checksum block {located.block.block_id} of {path} on any of "
        f"{len(located.locations)} replicas ({'; '.join(failures) or 'no locations'})",
        path=path,
    )


async def checksum_blocks(
    http: httpx.AsyncClient,
    path: str,
    blocks: Sequence[LocatedBlock],
    bytes_per_crc: int = BYTES_PER_CRC,
    parallel: int = PARALLEL_BLOCKS,
) -> FileChecksum:
    """The file checksum of `blocks` (the whole file, in order)."""
    gate = asyncio.Semaphore(parallel)

    async def one(located: LocatedBlock) -> BlockChecksum:
        async with gate:
            return await checksum_block(http, path, located, bytes_per_crc)

    # A TaskGroup cancels the other blocks' requests as soon as one block fails for good;
    # callers get that block's own error, not the group wrapping it.
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(located)) for located in blocks]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return compose_file_checksum([task.result() for task in tasks], bytes_per_crc)


async def all_blocks(rpc: NameNodeRPC, path: str) -> list[LocatedBlock]:
    """Every listed block of a file; the NameNode answers at most so many blocks per call."""
    blocks: list[LocatedBlock] = []
    seen: set[int] = set()
    offset = 0
    while True:
        located = await rpc.locations(path, offset, None)
        # A page starts at the block holding `offset`: never count a block twice.
        fresh = [b for b in located.blocks if b.block.block_id not in seen]
        if not fresh:
            return blocks
        blocks.extend(fresh)
        seen.update(b.block.block_id for b in fresh)
        offset = fresh[-1].offset + fresh[-1].length
        if offset >= located.file_length:
            return blocks


async def file_checksum(
    rpc: NameNodeRPC, http: httpx.AsyncClient, path: str, bytes_per_crc: int = BYTES_PER_CRC
) -> FileChecksum:
    """Hadoop's MD5-of-MD5-of-CRC32C checksum of the file at `path` (a validated path)."""
    return await checksum_blocks(http, path, await all_blocks(rpc, path), bytes_per_crc)
