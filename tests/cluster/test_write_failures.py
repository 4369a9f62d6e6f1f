"""Writers under failure: a DataNode killed mid-pipeline, a writer killed holding its lease."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import pytest

from client import AsyncDFSClient
from client.local_cluster import NodeProcess
from client.protocol.client_namenode import LocatedBlock, Routes
from tests.minicluster import MiniCluster, wait_until

pytestmark = pytest.mark.cluster

BLOCK = 1024 * 1024
SEGMENT = 256 * 1024


@pytest.mark.parametrize("position", [0, 1, 2], ids=["first", "middle", "last"])
def test_write_survives_a_pipeline_node_killed_mid_block(
    healthy_cluster: MiniCluster, remote_dir: str, position: int
) -> None:
    cluster = healthy_cluster
    path = f"{remote_dir}/pipelined"
    data = os.urandom(4 * BLOCK + 4321)
    half = BLOCK + BLOCK // 2

    async def scenario() -> tuple[NodeProcess, int]:
        async with AsyncDFSClient(cluster.url, segment_size=SEGMENT) as fs:
            stream = await fs.create(path, block_size=BLOCK, replication=3)
            await stream.write(data[:half])
            block = stream._block  # the block being written right now
            assert block is not None and len(block.locations) == 3
            victim = cluster.node_by_id(block.locations[position].id)
            await asyncio.get_running_loop().run_in_executor(None, cluster.kill_datanode, victim)
            await stream.write(data[half:])
            await stream.close()
            return victim, block.block.block_id

    victim, block_id = asyncio.run(scenario())
    with cluster.client() as fs:
        assert fs.read_bytes(path) == data
        assert fs.status(path).length == len(data)
        # Nothing is lost and the NameNode brings every block back to 3 replicas on the live nodes.
        wait_until(
            lambda: all(len(b.locations) == 3 for b in fs.block_locations(path).blocks),
            timeout=60,
            what="replication back to 3",
        )
    # The victim comes back holding a replica of the old generation: it is discarded, never served.
    cluster.restart_datanode(victim)
    on_disk = cluster.data_dir(victim) / "current"
    wait_until(lambda: not list(on_disk.rglob(f"blk_{block_id}_1.meta")), 60, "the stale replica to be deleted")
    with cluster.client() as fs:
        assert fs.read_bytes(path) == data


WRITER = textwrap.dedent(
    """
    import asyncio, os, sys
    from client import AsyncDFSClient

    async def main():
        fs = AsyncDFSClient(sys.argv[1], segment_size=256 * 1024)
        stream = await fs.create(sys.argv[2], block_size=1024 * 1024)
        data = bytes(range(256)) * 4096 * 2  # 2 MiB, deterministic
        await stream.write(data[: 1024 * 1024])  # exactly one block: its final segment ships
        await stream._wait_inflight()  # ... and is acknowledged: finalised on every pipeline node
        await stream.write(data[1024 * 1024 : 1024 * 1024 + 300 * 1024])  # never acknowledged
        print("written", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


def test_lease_recovery_after_writer_is_killed(healthy_cluster: MiniCluster, remote_dir: str) -> None:
    cluster = healthy_cluster
    path = f"{remote_dir}/orphan"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, cluster.url, path], stdout=subprocess.PIPE)
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == b"written"
    finally:
        writer.kill()
        writer.wait()
    with cluster.client() as fs:
        assert fs.status(path).under_construction
        # Past the hard limit the NameNode closes the file at its last finished block.
        wait_until(lambda: not fs.status(path).under_construction, timeout=60, what="lease recovery")
        expected = (bytes(range(256)) * 4096 * 2)[:BLOCK]
        assert fs.status(path).length == BLOCK
        assert fs.read_bytes(path) == expected
        fs.write_bytes(path, b"new life", overwrite=True)  # and the file can be written again
        assert fs.read_bytes(path) == b"new life"


def test_another_writer_takes_over_after_the_soft_limit(cluster: MiniCluster, remote_dir: str) -> None:
    import httpx

    path = f"{remote_dir}/abandoned"
    with httpx.Client(base_url=cluster.url) as api:
        first = api.post(Routes.CREATE, json={"path": path, "client_name": "gone-client"})
        assert first.status_code == 200
        refused = api.post(Routes.CREATE, json={"path": path, "client_name": "new-client", "overwrite": True})
        assert refused.status_code == 409 and refused.json()["code"] == "LEASE_CONFLICT"
    with cluster.client() as fs:
        # The soft limit is 3 s in the MiniCluster: after it, overwriting recovers the file first.
        wait_until(lambda: _try_overwrite(fs, path), timeout=30, what="soft-limit takeover")
        assert fs.read_bytes(path) == b"mine now"


def _try_overwrite(fs: object, path: str) -> bool:
    from client import DFSClient
    from client.protocol.errors import LeaseConflictError

    assert isinstance(fs, DFSClient)
    try:
        fs.write_bytes(path, b"mine now", overwrite=True)
    except LeaseConflictError:
        return False
    return True


def test_a_writer_refuses_further_writes_after_a_failed_block_allocation(cluster: MiniCluster, remote_dir: str) -> None:
    from client.protocol.errors import PipelineFailedError

    async def scenario() -> None:
        async with AsyncDFSClient(cluster.url) as fs:
            stream = await fs.create(f"{remote_dir}/doomed", block_size=BLOCK)
            await fs.delete(f"{remote_dir}/doomed")  # the file vanishes under the writer
            with pytest.raises(FileNotFoundError):
                await stream.write(os.urandom(BLOCK))  # a full block ships: add_block fails
            with pytest.raises(PipelineFailedError):
                await stream.write(b"more")  # the lost bytes are not papered over
            with pytest.raises(PipelineFailedError):
                await stream.close()

    asyncio.run(scenario())


def test_a_block_whose_whole_pipeline_dies_before_any_byte_is_allocated_elsewhere(
    make_cluster: Callable[..., MiniCluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every node of a new block's pipeline is killed right after the NameNode allocated it, before a
    byte reached them: the writer abandons the block, gets one on other nodes, and the file closes
    with all its bytes and no trace of the abandoned block."""
    cluster = make_cluster(datanodes=5, racks=1)
    path = "/whole-pipeline-lost"
    data = os.urandom(3 * BLOCK + 777)
    allocated: list[LocatedBlock] = []

    async def scenario() -> None:
        async with AsyncDFSClient(cluster.url, segment_size=SEGMENT) as fs:
            allocate = fs.rpc.add_block

            async def allocate_then_kill_the_second(*args: Any, **kwargs: Any) -> LocatedBlock:
                located = await allocate(*args, **kwargs)
                allocated.append(located)
                if len(allocated) == 2:  # the second block: kill its whole pipeline before it gets a byte
                    victims = [cluster.node_by_id(node.id) for node in located.locations]
                    loop = asyncio.get_running_loop()
                    for victim in victims:
                        await loop.run_in_executor(None, cluster.kill_datanode, victim)
                return located

            monkeypatch.setattr(fs.rpc, "add_block", allocate_then_kill_the_second)
            async with await fs.create(path, block_size=BLOCK, replication=2) as stream:
                await stream.write(data)

    asyncio.run(scenario())
    lost = allocated[1]
    dead = {node.id for node in lost.locations}
    # Placement is random, so the first block may have had both replicas on the victims: bring them back
    # (their disks survived the kill) before reading, as an operator would.
    cluster.heal()
    with cluster.client() as fs:
        wait_until(
            lambda: all(len(b.locations) == 2 for b in fs.block_locations(path).blocks), 60, "replication back to 2"
        )
        assert fs.read_bytes(path) == data
        blocks = fs.block_locations(path).blocks
        assert len(blocks) == 4
        assert lost.block.block_id not in {block.block.block_id for block in blocks}  # abandoned, not kept
        assert allocated[2].block.block_id == blocks[1].block.block_id  # its replacement took its place
        assert not dead & {node.id for node in allocated[2].locations}  # on other nodes
