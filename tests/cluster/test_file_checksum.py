"""Hadoop-compatible file checksums through real processes: right value, any good replica, errors."""

from __future__ import annotations

import asyncio
import os
import time

import httpx
import pytest

from client import AsyncDFSClient
from client.file_checksum import checksum_blocks, fetch_block_checksum
from client.protocol.common import DatanodeRef
from client.protocol.errors import (
    BlockMissingError,
    ChecksumMismatchError,
    DfsFileNotFoundError,
    DfsIsADirectoryError,
    InvalidArgumentError,
    ReplicaNotFoundError,
)
from client.protocol.hadoop_checksum import EMPTY_FILE_CHECKSUM, FileChecksum, block_checksum, file_checksum_of
from tests.faults import flip_byte
from tests.minicluster import MiniCluster, free_port, wait_until

pytestmark = pytest.mark.cluster

BLOCK = 1024 * 1024


def test_multi_block_checksum_equals_the_local_reference(cluster: MiniCluster, remote_dir: str) -> None:
    data = os.urandom(3 * BLOCK + 12345)  # the last block ends in a short CRC chunk
    path = f"{remote_dir}/multi"
    with cluster.client() as fs:
        fs.write_bytes(path, data, block_size=BLOCK)
        checksum = fs.file_checksum(path)
    assert checksum == file_checksum_of([data], BLOCK)
    assert checksum.algorithm == "MD5-of-2048MD5-of-512CRC32C"
    assert checksum.length == 28 and len(checksum.bytes) == 64


def test_single_block_and_empty_files(cluster: MiniCluster, remote_dir: str) -> None:
    small = b"world\n"
    with cluster.client() as fs:
        fs.write_bytes(f"{remote_dir}/small", small, block_size=BLOCK)
        fs.write_bytes(f"{remote_dir}/empty", b"", block_size=BLOCK)
        small_sum = fs.file_checksum(f"{remote_dir}/small")
        empty_sum = fs.file_checksum(f"{remote_dir}/empty")
    # Hadoop gives "world\n" this checksum whatever its block size (one block: crcPerBlock 0).
    assert (small_sum.algorithm, small_sum.md5) == ("MD5-of-0MD5-of-512CRC32C", "a74dcf6d5ba98e50ae0182c9d5d886fe")
    assert empty_sum == EMPTY_FILE_CHECKSUM


def test_equal_content_gives_equal_checksums(cluster: MiniCluster, remote_dir: str) -> None:
    data = os.urandom(2 * BLOCK + 777)
    changed = bytearray(data)
    changed[BLOCK + 5] ^= 0x01
    with cluster.client() as fs:
        fs.write_bytes(f"{remote_dir}/a", data, block_size=BLOCK)
        fs.write_bytes(f"{remote_dir}/b", data, block_size=BLOCK)
        fs.write_bytes(f"{remote_dir}/c", bytes(changed), block_size=BLOCK)
        fs.write_bytes(f"{remote_dir}/d", data, block_size=2 * BLOCK)
        a, b, c, d = (fs.file_checksum(f"{remote_dir}/{name}") for name in "abcd")
    assert a == b
    assert c != a
    assert d != a  # other blocks, other checksum: as in Hadoop, compare copies with equal block sizes
    assert d.algorithm == "MD5-of-4096MD5-of-512CRC32C"


def test_directories_and_missing_paths_have_no_checksum(cluster: MiniCluster, remote_dir: str) -> None:
    with cluster.client() as fs:
        with pytest.raises(DfsIsADirectoryError):
            fs.file_checksum(remote_dir)
        with pytest.raises(DfsFileNotFoundError):
            fs.file_checksum(f"{remote_dir}/missing")


def test_datanode_route_checks_its_arguments(cluster: MiniCluster, remote_dir: str) -> None:
    path = f"{remote_dir}/args"
    data = os.urandom(BLOCK // 2 + 3)
    with cluster.client() as fs:
        fs.write_bytes(path, data, block_size=BLOCK)
        located = fs.block_locations(path).blocks[0]
    node, block, token = located.locations[0], located.block, located.token

    async def scenario() -> None:
        async with httpx.AsyncClient() as http:
            prefix = await fetch_block_checksum(http, node, block, 1000, token=token)
            assert prefix.crc_count == 2
            assert prefix.md5_hex == block_checksum([data[:1000]]).md5.hex()
            stale = block.model_copy(update={"gen_stamp": block.gen_stamp + 1})
            with pytest.raises(ReplicaNotFoundError):
                await fetch_block_checksum(http, node, stale, len(data), token=token)
            with pytest.raises(InvalidArgumentError):
                await fetch_block_checksum(http, node, block, len(data) + 1, token=token)
            with pytest.raises(InvalidArgumentError):
                await fetch_block_checksum(http, node, block, len(data), bytes_per_crc=1000, token=token)

    asyncio.run(scenario())


def test_corrupt_replica_answers_checksum_mismatch_and_is_reported(
    healthy_cluster: MiniCluster, remote_dir: str
) -> None:
    cluster = healthy_cluster
    path = f"{remote_dir}/corrupt_direct"
    with cluster.client() as fs:
        fs.write_bytes(path, os.urandom(BLOCK), block_size=BLOCK)
        located = fs.block_locations(path).blocks[0]
    node = located.locations[0]
    replica = cluster.replica_file(cluster.node_by_id(node.id), located.block.block_id)
    assert replica is not None
    flip_byte(replica, BLOCK - 1)

    async def ask() -> None:
        async with httpx.AsyncClient() as http:
            await fetch_block_checksum(http, node, located.block, located.length, token=located.token)

    with pytest.raises(ChecksumMismatchError):
        asyncio.run(ask())
    with cluster.client() as fs:
        wait_until(
            lambda: node.id not in {n.id for n in fs.block_locations(path).blocks[0].locations},
            timeout=30,
            what="the NameNode to drop the corrupt replica",
        )


def test_checksum_fails_over_from_a_corrupt_replica(healthy_cluster: MiniCluster, remote_dir: str) -> None:
    cluster = healthy_cluster
    path = f"{remote_dir}/corrupt_failover"
    data = os.urandom(2 * BLOCK + 5)
    with cluster.client() as fs:
        fs.write_bytes(path, data, block_size=BLOCK)
        located = fs.block_locations(path)
    bad = located.blocks[0].locations[0]
    replica = cluster.replica_file(cluster.node_by_id(bad.id), located.blocks[0].block.block_id)
    assert replica is not None
    flip_byte(replica, 12345)

    async def checksum_with_bad_replica_first() -> FileChecksum:
        blocks = [
            block.model_copy(update={"locations": sorted(block.locations, key=lambda n: n.id != bad.id)})
            for block in located.blocks
        ]
        assert blocks[0].locations[0].id == bad.id
        async with httpx.AsyncClient() as http:
            return await checksum_blocks(http, path, blocks)

    assert asyncio.run(checksum_with_bad_replica_first()) == file_checksum_of([data], BLOCK)


def test_unreachable_replicas_are_skipped_and_none_left_is_block_missing(cluster: MiniCluster, remote_dir: str) -> None:
    path = f"{remote_dir}/unreachable"
    data = os.urandom(BLOCK + 1)
    with cluster.client() as fs:
        fs.write_bytes(path, data, block_size=BLOCK)
        located = fs.block_locations(path)
    nowhere = DatanodeRef(id="gone", url=f"http://127.0.0.1:{free_port()}")

    async def scenario(keep_real: bool) -> FileChecksum:
        blocks = [
            block.model_copy(update={"locations": [nowhere, *(block.locations if keep_real else [])]})
            for block in located.blocks
        ]
        async with httpx.AsyncClient() as http:
            return await checksum_blocks(http, path, blocks)

    assert asyncio.run(scenario(keep_real=True)) == file_checksum_of([data], BLOCK)
    with pytest.raises(BlockMissingError, match="could not checksum block"):
        asyncio.run(scenario(keep_real=False))


def test_open_file_is_checksummed_over_its_completed_blocks(cluster: MiniCluster, remote_dir: str) -> None:
    path = f"{remote_dir}/open"
    data = os.urandom(2 * BLOCK + 100)
    # Which blocks are complete while the writer runs depends on timing; each answer must be
    # the checksum of a whole-block prefix of the data, never of bytes still in flight.
    prefixes = {file_checksum_of([data[: k * BLOCK]], BLOCK): k for k in range(1, 3)}

    async def scenario() -> tuple[FileChecksum, FileChecksum]:
        async with AsyncDFSClient(cluster.url) as fs:
            stream = await fs.create(path, block_size=BLOCK)
            try:
                await stream.write(data)
                deadline = time.monotonic() + 30
                while not (await fs.block_locations(path)).blocks:
                    assert time.monotonic() < deadline, "no block of the open file was completed"
                    await asyncio.sleep(0.05)
                while_open = await fs.file_checksum(path)
            finally:
                await stream.close()
            return while_open, await fs.file_checksum(path)

    while_open, closed = asyncio.run(scenario())
    assert while_open in prefixes
    assert closed == file_checksum_of([data], BLOCK)
