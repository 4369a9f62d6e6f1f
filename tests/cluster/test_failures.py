"""Failures with real processes: a killed DataNode, a corrupt replica, restarts of every node."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import httpx
import pytest

from client.block_io import read_block
from client.protocol.client_namenode import DatanodeState
from client.protocol.errors import ChecksumMismatchError
from tests.conftest import BACKENDS
from tests.faults import flip_byte, read_with_replica_first
from tests.minicluster import MiniCluster, wait_until

pytestmark = pytest.mark.cluster

BLOCK = 1024 * 1024


def write_files(cluster: MiniCluster, directory: str, count: int = 4, size: int = 3 * BLOCK + 100) -> dict[str, bytes]:
    files = {f"{directory}/f{n}": os.urandom(size + n) for n in range(count)}
    with cluster.client() as fs:
        for path, data in files.items():
            fs.write_bytes(path, data, block_size=BLOCK)
    return files


def test_every_block_is_on_three_distinct_datanodes(cluster: MiniCluster, remote_dir: str) -> None:
    files = write_files(cluster, remote_dir, count=2)
    with cluster.client() as fs:
        for path in files:
            for block in fs.block_locations(path).blocks:
                ids = [node.id for node in block.locations]
                assert len(ids) == 3 and len(set(ids)) == 3
                on_disk = cluster.nodes_holding(block.block.block_id)
                named = {cluster.node_by_id(node_id).name for node_id in ids}
                assert on_disk == named


def test_reads_survive_a_killed_datanode(healthy_cluster: MiniCluster, remote_dir: str) -> None:
    cluster = healthy_cluster
    files = write_files(cluster, remote_dir)
    with cluster.client() as fs:
        first_block = fs.block_locations(next(iter(files))).blocks[0]
    victim = cluster.node_by_id(first_block.locations[0].id)  # the replica readers try first
    cluster.kill_datanode(victim)
    with cluster.client() as fs:
        for path, data in files.items():
            assert fs.read_bytes(path) == data


@pytest.mark.parametrize("backend", BACKENDS)
def test_dead_datanode_blocks_are_re_replicated(make_cluster: Callable[..., MiniCluster], backend: str) -> None:
    cluster = make_cluster(backend)
    remote_dir = "/rereplicate"
    files = write_files(cluster, remote_dir, count=2)
    with cluster.client() as fs:
        block_ids = [b.block.block_id for path in files for b in fs.block_locations(path).blocks]
        victim = cluster.node_by_id(fs.block_locations(next(iter(files))).blocks[0].locations[0].id)
    victim_id = cluster.datanode_info(victim)["id"]
    cluster.kill_datanode(victim)

    def restored() -> bool:
        with cluster.client() as fs:
            nodes = {n.id: n.state for n in fs.report().datanodes}
            if nodes[victim_id] is not DatanodeState.DEAD:
                return False
            for path in files:
                for block in fs.block_locations(path).blocks:
                    live = [n for n in block.locations if n.id != victim_id]
                    if len(live) < 3 or len(block.locations) != len(live):
                        return False
            return True

    wait_until(restored, timeout=60, what="re-replication after a DataNode died")
    alive = [node for node in cluster.datanodes if node.alive]
    for block_id in block_ids:
        assert len({n.name for n in alive if cluster.replica_file(n, block_id)}) >= 3


def test_corrupt_replica_is_detected_and_replaced(healthy_cluster: MiniCluster, remote_dir: str) -> None:
    cluster = healthy_cluster
    path = f"{remote_dir}/victim"
    data = os.urandom(2 * BLOCK + 5)
    with cluster.client() as fs:
        fs.write_bytes(path, data, block_size=BLOCK)
        block = fs.block_locations(path).blocks[0]
    bad_id = block.locations[0].id
    bad_node = cluster.node_by_id(bad_id)
    replica = cluster.replica_file(bad_node, block.block.block_id)
    assert replica is not None
    flip_byte(replica, 12345)

    # The reader tries the corrupt replica first, gets a checksum error, fails over.
    assert read_with_replica_first(cluster, path, bad_id) == data

    with cluster.client() as fs:

        def corrupt_replaced() -> bool:
            holders = {n.id for n in fs.block_locations(path).blocks[0].locations}
            return bad_id not in holders and len(holders) == 3

        wait_until(corrupt_replaced, timeout=60, what="the corrupt replica to be replaced")
        assert fs.read_bytes(path) == data
    wait_until(
        lambda: cluster.replica_file(bad_node, block.block.block_id) is None,
        timeout=30,
        what="the corrupt replica file to be deleted",
    )


def test_datanode_refuses_to_serve_a_corrupt_replica(healthy_cluster: MiniCluster, remote_dir: str) -> None:
    cluster = healthy_cluster
    path = f"{remote_dir}/direct"
    with cluster.client() as fs:
        fs.write_bytes(path, os.urandom(BLOCK), block_size=BLOCK)
        block = fs.block_locations(path).blocks[0]
    node = block.locations[0]
    replica = cluster.replica_file(cluster.node_by_id(node.id), block.block.block_id)
    assert replica is not None
    flip_byte(replica, BLOCK - 1)

    async def direct_read() -> bytes:
        async with httpx.AsyncClient() as http:
            return b"".join(
                [bytes(piece) async for piece in read_block(http, node, block.block, 0, BLOCK, block.token)]
            )

    with pytest.raises(ChecksumMismatchError):
        asyncio.run(direct_read())
    # The DataNode reported it: the NameNode stops handing that replica out.
    with cluster.client() as fs:
        wait_until(
            lambda: node.id not in {n.id for n in fs.block_locations(path).blocks[0].locations},
            timeout=30,
            what="the NameNode to drop the corrupt replica",
        )


def test_namenode_restart_keeps_completed_files(healthy_cluster: MiniCluster, remote_dir: str) -> None:
    cluster = healthy_cluster
    files = write_files(cluster, remote_dir, count=3)
    cluster.restart_namenode(kill=True)  # kill -9: only what was committed survives
    cluster.wait_for_live_datanodes(len(cluster.datanodes))
    with cluster.client() as fs:
        for path, data in files.items():
            assert fs.status(path).length == len(data)
            assert fs.read_bytes(path) == data


def test_datanode_restart_keeps_identity_and_blocks(healthy_cluster: MiniCluster, remote_dir: str) -> None:
    cluster = healthy_cluster
    write_files(cluster, remote_dir, count=2)
    node = cluster.datanodes[1]
    before = cluster.datanode_info(node)
    cluster.restart_datanode(node)
    wait_until(lambda: cluster.datanode_info(node)["registered"], timeout=30, what="re-registration")
    after = cluster.datanode_info(node)
    assert after["id"] == before["id"]
    assert after["replicas"] == before["replicas"]
    report = {n.id: n for n in cluster.report().datanodes}
    assert report[after["id"]].state is DatanodeState.LIVE
    assert report[after["id"]].url == node.url
