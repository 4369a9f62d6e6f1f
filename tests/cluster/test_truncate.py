"""Truncate, end to end: whole blocks dropped at once, the last one cut in place on the DataNodes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from client.local_cluster import NodeProcess
from client.protocol.block_format import parse_meta_file_name
from client.protocol.client_namenode import DatanodeState, LocatedBlock
from client.protocol.errors import (
    DfsFileNotFoundError,
    DfsIsADirectoryError,
    InvalidArgumentError,
    LeaseConflictError,
)
from client.sync_client import DFSClient
from tests.conftest import BACKENDS
from tests.minicluster import MiniCluster, wait_until

pytestmark = pytest.mark.cluster

BLOCK = 256 * 1024


def write(fs: DFSClient, path: str, size: int, replication: int = 3) -> bytes:
    data = os.urandom(size)
    fs.write_bytes(path, data, block_size=BLOCK, replication=replication)
    return data


def last_block(fs: DFSClient, path: str) -> LocatedBlock:
    return fs.block_locations(path).blocks[-1]


def replicas_on_disk(cluster: MiniCluster, block_id: int) -> dict[str, tuple[int, int]]:
    """(generation stamp, data file size) of every replica of a block on any DataNode's disk."""
    found: dict[str, tuple[int, int]] = {}
    for node in cluster.datanodes:
        for meta in (cluster.data_dir(node) / "current").rglob(f"blk_{block_id}_*.meta"):
            parsed = parse_meta_file_name(meta.name)
            with contextlib.suppress(FileNotFoundError):  # moved or deleted while we looked
                if parsed is not None:
                    found[node.name] = (parsed[1], (meta.parent / f"blk_{block_id}").stat().st_size)
    return found


def holders(cluster: MiniCluster, block: LocatedBlock) -> list[NodeProcess]:
    return [cluster.node_by_id(node.id) for node in block.locations]


def test_truncate_on_a_block_boundary_is_done_at_once(cluster: MiniCluster, remote_dir: str) -> None:
    path = f"{remote_dir}/boundary"
    with cluster.client() as fs:
        data = write(fs, path, 3 * BLOCK + 1000, replication=2)
        before = fs.status(path)
        dropped = [b.block.block_id for b in fs.block_locations(path).blocks[2:]]
        assert fs.truncate(path, 2 * BLOCK) is True
        status = fs.status(path)
        assert (status.length, status.under_construction) == (2 * BLOCK, False)
        assert status.mtime >= before.mtime
        assert fs.read_bytes(path) == data[: 2 * BLOCK]
        assert [b.block.gen_stamp for b in fs.block_locations(path).blocks] == [1, 1]
        assert fs.truncate(path, 2 * BLOCK) is True  # the same length: nothing to do
    wait_until(lambda: not any(cluster.nodes_holding(b) for b in dropped), 30, "dropped blocks to be deleted")


def test_truncate_to_zero_drops_every_block(cluster: MiniCluster, remote_dir: str) -> None:
    path = f"{remote_dir}/zero"
    with cluster.client() as fs:
        write(fs, path, 2 * BLOCK + 5, replication=2)
        dropped = [b.block.block_id for b in fs.block_locations(path).blocks]
        assert fs.truncate(path, 0) is True
        assert fs.status(path).length == 0
        assert fs.read_bytes(path) == b""
        assert fs.block_locations(path).blocks == []
    wait_until(lambda: not any(cluster.nodes_holding(b) for b in dropped), 30, "every replica to be deleted")


def test_truncate_inside_a_block_cuts_every_replica_in_place(cluster: MiniCluster, remote_dir: str) -> None:
    path = f"{remote_dir}/mid"
    new_length = 2 * BLOCK + 12345
    with cluster.client() as fs:
        data = write(fs, path, 3 * BLOCK + 5000)
        cut_id = fs.block_locations(path).blocks[2].block.block_id
        assert fs.truncate(path, new_length) is False  # as Hadoop: the last block is being recovered
        # Readers see the new length at once, and exactly the kept bytes, even while the cut runs.
        assert fs.status(path).length == new_length
        assert fs.read_bytes(path) == data[:new_length]
        wait_until(lambda: not fs.status(path).under_construction, 60, "the truncated file to be closed")
        assert fs.read_bytes(path) == data[:new_length]
        block = last_block(fs, path)
        assert (block.block.block_id, block.block.gen_stamp, block.length) == (cut_id, 2, 12345)
        wait_until(
            lambda: list(replicas_on_disk(cluster, cut_id).values()) == [(2, 12345)] * 3,
            60,
            "three cut replicas on disk, and no uncut one",
        )
        wait_until(lambda: len(last_block(fs, path).locations) == 3, 30, "three good replicas")
        report = fs.fsck(path)
        assert (report.status, report.blocks, report.healthy, report.open_files) == ("HEALTHY", 3, 3, 0)
        # Closed like any other file: it can be appended to and written again.
        with fs.append(path) as stream:
            stream.write(b"more")
        assert fs.read_bytes(path) == data[:new_length] + b"more"
        fs.write_bytes(path, b"new life", overwrite=True)
        assert fs.read_bytes(path) == b"new life"


def test_truncate_refuses_what_it_cannot_do(cluster: MiniCluster, remote_dir: str) -> None:
    path = f"{remote_dir}/f"
    with cluster.client() as fs:
        data = write(fs, path, 1000, replication=1)
        with pytest.raises(InvalidArgumentError, match="holds only 1000"):
            fs.truncate(path, 1001)
        with pytest.raises(InvalidArgumentError):
            fs.truncate(path, -1)
        with pytest.raises(DfsIsADirectoryError):
            fs.truncate(remote_dir, 0)
        with pytest.raises(DfsFileNotFoundError):
            fs.truncate(f"{remote_dir}/missing", 0)
        with fs.open(f"{remote_dir}/open", "wb") as stream:
            stream.write(b"x" * 100)
            stream.flush()
            with pytest.raises(LeaseConflictError, match="open for writing"):
                fs.truncate(f"{remote_dir}/open", 10)
        assert fs.read_bytes(path) == data


def test_the_shell_truncates_and_waits(cluster: MiniCluster, remote_dir: str) -> None:
    path = f"{remote_dir}/shell"
    with cluster.client(user="alice") as fs:  # the shell acts as alice: her file
        data = write(fs, path, BLOCK + 300, replication=2)
    done = dfs(cluster, "truncate", "-w", str(BLOCK + 100), path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"Truncated {path} to length: {BLOCK + 100}"
    started = dfs(cluster, "truncate", "50", path)
    assert started.returncode == 0, started.stderr
    assert started.stdout.startswith(f"Truncating {path} to length: 50. Wait for block recovery")
    with cluster.client() as fs:
        wait_until(lambda: not fs.status(path).under_construction, 60, "the truncated file to be closed")
        assert fs.read_bytes(path) == data[:50]
    refused = dfs(cluster, "truncate", "51", path)
    assert refused.returncode == 1 and "holds only 50" in refused.stderr and "Traceback" not in refused.stderr


def test_a_replica_down_during_the_truncate_is_discarded(make_cluster: Callable[..., MiniCluster]) -> None:
    cluster = make_cluster()
    path = "/down/f"
    new_length = BLOCK + 777
    with cluster.client() as fs:
        data = write(fs, path, 2 * BLOCK + 10)
        block = fs.block_locations(path).blocks[1]  # the block to cut; the last one is dropped
        victim = holders(cluster, block)[0]
        cluster.kill_datanode(victim)
        assert fs.truncate(path, new_length) is False
        # The other holders cut theirs: the file closes without waiting for the missing node.
        wait_until(lambda: not fs.status(path).under_construction, 60, "the truncated file to be closed")
        assert fs.read_bytes(path) == data[:new_length]
        # Once the victim is dead, the cut replicas are copied back to three.
        wait_until(lambda: len(last_block(fs, path).locations) == 3, 60, "replication back to 3")
    assert replicas_on_disk(cluster, block.block.block_id).get(victim.name) == (1, BLOCK)
    cluster.restart_datanode(victim)  # it comes back with the uncut replica of the old stamp
    wait_until(
        lambda: victim.name not in replicas_on_disk(cluster, block.block.block_id),
        60,
        "the returning node's uncut replica to be deleted",
    )
    with cluster.client() as fs:
        served = {node.id for node in last_block(fs, path).locations}
        assert cluster.datanode_info(victim)["id"] not in served
        assert fs.read_bytes(path) == data[:new_length]
        assert fs.fsck(path).status == "HEALTHY"


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncate_recovery_survives_a_namenode_restart_with_its_holders_gone(
    make_cluster: Callable[..., MiniCluster], backend: str
) -> None:
    cluster = make_cluster(backend)
    path = "/restart/f"
    new_length = 2 * BLOCK + 100
    with cluster.client(retry_wait=0) as fs:
        data = write(fs, path, 3 * BLOCK + 777)
        block = fs.block_locations(path).blocks[2]  # the block to cut; the last one is dropped
        paused = holders(cluster, block)
        for node in paused:
            node.pause()  # the commands cannot be carried out before the restart
        assert fs.truncate(path, new_length) is False
        # Under recovery: held by the NameNode, no other writer or truncate gets in.
        with pytest.raises(LeaseConflictError, match="being truncated"):
            fs.truncate(path, 10)
        with pytest.raises(LeaseConflictError):
            fs.write_bytes(path, b"overwrite", overwrite=True)
        # Every holder is declared dead (and the lease hard limit, 8 s, passes): nobody can cut the
        # block now, and the file stays under recovery instead of being closed by lease recovery.
        wait_until(
            lambda: sum(n.state is DatanodeState.DEAD for n in fs.report().datanodes) == len(paused),
            60,
            "the paused holders to be declared dead",
        )
        assert fs.status(path).under_construction
    cluster.restart_namenode()
    for node in paused:
        node.resume()  # they register again and report their uncut replicas, which join the recovery
    with cluster.client() as fs:
        wait_until(lambda: not fs.status(path).under_construction, 90, "the truncated file to be closed")
        assert fs.status(path).length == new_length
        assert fs.read_bytes(path) == data[:new_length]
        cut = last_block(fs, path)
        assert (cut.block.gen_stamp, cut.length) == (2, 100)
    wait_until(
        lambda: list(replicas_on_disk(cluster, block.block.block_id).values()) == [(2, 100)] * 3,
        60,
        "every replica cut",
    )


def dfs(cluster: MiniCluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DFS_NAMENODE": cluster.url, "DFS_USER": "alice"}
    return subprocess.run(
        [sys.executable, "-m", "client.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )
