"""Background work on clusters of their own: the block scanner, the balancer, the recovery budget.

Rates are checked only as upper bounds ("the budget is not exceeded"): a slow machine can
only make them smaller, so these assertions cannot flap on noise.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest

from client.local_cluster import NodeProcess
from client.protocol.client_namenode import DatanodeState
from tests.minicluster import MiniCluster, wait_until

pytestmark = pytest.mark.cluster

MIB = 1024 * 1024
MB = 1_000_000


def sent_bytes(cluster: MiniCluster, nodes: list[NodeProcess] | None = None) -> int:
    """Bytes the running DataNodes (all, or the given ones) have sent for re-replication and balancing so far."""
    total = 0
    for node in cluster.datanodes if nodes is None else nodes:
        if node.alive:
            total += int(cluster.datanode_info(node)["replication_bytes_sent"])
    return total


def test_scanner_finds_a_rotten_replica_that_nobody_reads(make_cluster: Callable[..., MiniCluster]) -> None:
    cluster = make_cluster(datanodes=4, racks=1, datanode_args=["--scan-period", "1", "--scan-rate", "200"])
    data = os.urandom(3 * MIB + 17)
    with cluster.client() as fs:
        fs.write_bytes("/cold", data, block_size=MIB, replication=3)
        block = fs.block_locations("/cold").blocks[1]
    bad_id = block.locations[0].id
    bad_node = cluster.node_by_id(bad_id)
    replica = cluster.replica_file(bad_node, block.block.block_id)
    assert replica is not None
    with replica.open("r+b") as handle:
        handle.seek(777)
        byte = handle.read(1)
        handle.seek(777)
        handle.write(bytes([byte[0] ^ 0x40]))
    with cluster.client() as fs:

        def replaced() -> bool:
            holders = {n.id for n in fs.block_locations("/cold").blocks[1].locations}
            return bad_id not in holders and len(holders) == 3

        wait_until(replaced, 60, "the scanner's find to be replaced from a good copy")
        assert fs.read_bytes("/cold") == data
    assert cluster.datanode_info(bad_node)["scanner"]["corrupt_found"] >= 1
    wait_until(lambda: cluster.replica_file(bad_node, block.block.block_id) is None, 30, "the rotten file to go")


def test_recovery_traffic_stays_within_the_bandwidth_budget(make_cluster: Callable[..., MiniCluster]) -> None:
    budget_mbps = 5.0
    cluster = make_cluster(datanodes=4, racks=1, namenode_args=["--replication-bandwidth", str(budget_mbps)])
    with cluster.client() as fs:
        for n in range(16):
            fs.write_bytes(f"/data/f{n}", os.urandom(4 * MIB), block_size=4 * MIB, replication=2)
        counts = {
            node.name: len(list((cluster.data_dir(node) / "current").rglob("blk_*[0-9]"))) for node in cluster.datanodes
        }
    victim = max(cluster.datanodes, key=lambda node: counts[node.name])
    lost = counts[victim.name] * 4 * MIB
    victim_id = cluster.datanode_info(victim)["id"]
    survivors = [node for node in cluster.datanodes if node is not victim]
    # The baseline is taken before the kill: the first copy can start the moment the node is
    # declared dead, before the first sample after that could be taken.
    samples: list[tuple[float, int]] = [(time.monotonic(), sent_bytes(cluster, survivors))]
    cluster.kill_datanode(victim)

    def declared_dead() -> bool:
        samples.append((time.monotonic(), sent_bytes(cluster, survivors)))
        return {n.id: n.state for n in cluster.report().datanodes}[victim_id] is DatanodeState.DEAD

    wait_until(declared_dead, 60, "the victim to be declared dead", interval=0.1)

    def recovered() -> bool:
        samples.append((time.monotonic(), sent_bytes(cluster, survivors)))
        with cluster.client() as fs:
            return all(len(b.locations) == 2 for n in range(16) for b in fs.block_locations(f"/data/f{n}").blocks)

    wait_until(recovered, 120, "re-replication of the dead node's blocks", interval=0.1)
    samples.append((time.monotonic(), sent_bytes(cluster, survivors)))  # the counter as of the last copy's report
    baseline = samples[0][1]
    moving = [(t, b) for t, b in samples if b > baseline]
    assert moving, "nothing was copied"
    # From the last sample before any byte moved to the first sample showing all of them.
    first = max(t for t, b in samples if b == baseline and t <= moving[0][0])
    last_time, total = min(((t, b) for t, b in moving if b == moving[-1][1]), key=lambda s: s[0])
    copied = total - baseline
    rate = copied / (last_time - first)
    assert copied >= lost  # everything the dead node held was copied again
    assert rate <= 1.25 * budget_mbps * MB, f"recovery ran at {rate / MB:.2f} MB/s, budget {budget_mbps} MB/s"


def test_balancer_evens_out_a_new_empty_node(make_cluster: Callable[..., MiniCluster]) -> None:
    capacity = 256 * MIB
    cluster = make_cluster(datanodes=3, racks=1, datanode_args=["--capacity", str(capacity)])
    with cluster.client() as fs:
        for n in range(8):
            fs.write_bytes(f"/fill/f{n}", os.urandom(8 * MIB), block_size=4 * MIB, replication=2)
    cluster.add_datanode()
    bandwidth = 20.0
    env = {**os.environ, "DFS_NAMENODE": cluster.url}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "client.cli", "balancer", "--threshold", "5", "--bandwidth", str(bandwidth)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "balanced" in result.stdout.splitlines()[-1]
    with cluster.client() as fs:
        status = fs.balancer()
        assert status.moves_scheduled > 0
        wait_until(lambda: all(n.state is DatanodeState.LIVE for n in fs.report().datanodes), 30, "live nodes")
        final = fs.balancer()
        spread = [n.utilization_pct for n in final.nodes]
        assert max(spread) - final.average_utilization_pct <= 5.0 + 1e-6
        assert final.average_utilization_pct - min(spread) <= 5.0 + 1e-6
        assert status.bytes_moved / elapsed <= 1.25 * bandwidth * MB
        for n in range(8):
            assert len(fs.read_bytes(f"/fill/f{n}")) == 8 * MIB
            assert all(len(b.locations) == 2 for b in fs.block_locations(f"/fill/f{n}").blocks)


def test_datanode_info_reports_scanner_progress(cluster: MiniCluster) -> None:
    node = cluster.datanodes[0]
    assert node.url is not None
    info = httpx.get(node.url + "/v1/info", timeout=10).json()
    assert info["scanner"]["period_s"] == 3600
    assert {"blocks_scanned", "bytes_scanned", "corrupt_found"} <= set(info["scanner"])
