"""Self-healing with real processes: racks, dead nodes coming back, decommissioning, safe mode, fsck."""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from client.protocol.client_namenode import AdminState, DatanodeState, SafeModeState
from client.protocol.errors import SafeModeError
from tests.minicluster import MiniCluster, wait_until

pytestmark = pytest.mark.cluster

BLOCK = 1024 * 1024


def write_files(cluster: MiniCluster, directory: str, count: int = 3, size: int = 2 * BLOCK + 10) -> dict[str, bytes]:
    files = {f"{directory}/f{n}": os.urandom(size + n) for n in range(count)}
    with cluster.client() as fs:
        for path, data in files.items():
            fs.write_bytes(path, data, block_size=BLOCK, replication=3)
    return files


def rack_of(cluster: MiniCluster, datanode_id: str) -> str:
    return next(n.rack for n in cluster.report().datanodes if n.id == datanode_id)


def dfs(cluster: MiniCluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DFS_NAMENODE": cluster.url}
    return subprocess.run(
        [sys.executable, "-m", "client.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_every_block_spans_both_racks_and_survives_a_whole_rack(healthy_cluster: MiniCluster, remote_dir: str) -> None:
    cluster = healthy_cluster
    files = write_files(cluster, remote_dir)
    racks = {n.id: n.rack for n in cluster.report().datanodes}
    assert len(set(racks.values())) == 2
    with cluster.client() as fs:
        for path in files:
            for block in fs.block_locations(path).blocks:
                assert len({racks[n.id] for n in block.locations}) == 2
    for node in cluster.datanodes:
        if cluster.rack_of(int(node.name.removeprefix("datanode"))) == "/rack1":
            cluster.kill_datanode(node)
    with cluster.client() as fs:
        for path, data in files.items():
            assert fs.read_bytes(path) == data


def test_a_dead_node_that_returns_has_its_excess_replicas_trimmed(make_cluster: Callable[..., MiniCluster]) -> None:
    cluster = make_cluster()
    remote_dir = "/trim"
    files = write_files(cluster, remote_dir, count=2)
    with cluster.client() as fs:
        victim_id = fs.block_locations(next(iter(files))).blocks[0].locations[0].id
    victim = cluster.node_by_id(victim_id)
    cluster.kill_datanode(victim)

    def replicas_per_block() -> list[int]:
        with cluster.client() as fs:
            return [len(b.locations) for path in files for b in fs.block_locations(path).blocks]

    def back_to_three_without_victim() -> bool:
        with cluster.client() as fs:
            state = {n.id: n.state for n in fs.report().datanodes}[victim_id]
            blocks = [b for path in files for b in fs.block_locations(path).blocks]
        return state is DatanodeState.DEAD and all(len(b.locations) == 3 for b in blocks)

    wait_until(back_to_three_without_victim, 60, "re-replication on the surviving nodes")
    cluster.restart_datanode(victim)  # its old replicas come back: every block is now over target
    wait_until(lambda: all(n == 3 for n in replicas_per_block()), 60, "excess replicas to be trimmed")
    with cluster.client() as fs:
        block_ids = [b.block.block_id for path in files for b in fs.block_locations(path).blocks]
    wait_until(
        lambda: all(len(cluster.nodes_holding(b)) == 3 for b in block_ids), 60, "trimmed replica files to be deleted"
    )


def test_decommissioned_node_can_be_stopped_with_nothing_under_replicated(
    make_cluster: Callable[..., MiniCluster],
) -> None:
    cluster = make_cluster()
    remote_dir = "/decommission"
    files = write_files(cluster, remote_dir)
    with cluster.client() as fs:
        leaving_id = fs.block_locations(next(iter(files))).blocks[0].locations[0].id
    result = dfs(cluster, "admin", "decommission", leaving_id[:12], "--wait", "--timeout", "120")
    assert result.returncode == 0, result.stderr
    assert "decommissioned" in result.stdout.splitlines()[-1]
    with cluster.client() as fs:
        info = next(n for n in fs.report().datanodes if n.id == leaving_id)
        assert info.admin_state is AdminState.DECOMMISSIONED
        for path, data in files.items():
            for block in fs.block_locations(path).blocks:
                assert len([n for n in block.locations if n.id != leaving_id]) >= 3
            assert fs.read_bytes(path) == data
    cluster.node_by_id(leaving_id).kill()
    with cluster.client() as fs:
        report = fs.fsck(remote_dir)
        assert (report.healthy, report.under_replicated, report.missing) == (report.blocks, 0, 0)
        for path, data in files.items():
            assert fs.read_bytes(path) == data


def test_safe_mode_after_a_restart_without_datanodes(healthy_cluster: MiniCluster, remote_dir: str) -> None:
    cluster = healthy_cluster
    write_files(cluster, remote_dir, count=1)
    for node in cluster.datanodes:
        node.kill()
    cluster.restart_namenode()
    with cluster.client(retry_wait=0) as fs:
        status = fs.safemode()
        assert status.state is SafeModeState.STARTUP and status.blocks_total > 0 and status.blocks_safe == 0
        with pytest.raises(SafeModeError, match="safe mode"):
            fs.mkdirs(f"{remote_dir}/refused")
        assert fs.exists(f"{remote_dir}/f0")  # reads are served
    refused = dfs(cluster, "--retry-wait", "0", "mkdir", f"{remote_dir}/refused")
    assert refused.returncode == 1 and "safe mode" in refused.stderr
    # A patient writer (the default) waits out start-up safe mode instead of failing.
    with concurrent.futures.ThreadPoolExecutor(1) as pool, cluster.client(retry_wait=120) as patient:
        waiting = pool.submit(patient.write_bytes, f"{remote_dir}/waited", b"patience")
        time.sleep(1.0)  # let it hit safe mode at least once before the DataNodes return
        assert not waiting.done()
        for node in cluster.datanodes:
            node.start()
        waiting.result(timeout=120)
        assert patient.read_bytes(f"{remote_dir}/waited") == b"patience"
    result = dfs(cluster, "admin", "safemode", "wait", "--timeout", "60")
    assert result.returncode == 0 and "OFF" in result.stdout
    with cluster.client() as fs:
        fs.mkdirs(f"{remote_dir}/accepted")


def test_manual_safe_mode(healthy_cluster: MiniCluster, remote_dir: str) -> None:
    cluster = healthy_cluster
    assert "ON (manual)" in dfs(cluster, "admin", "safemode", "enter").stdout
    with cluster.client(retry_wait=0) as fs, pytest.raises(SafeModeError, match="safemode leave"):
        fs.mkdirs(f"{remote_dir}/refused")
    status = json.loads(dfs(cluster, "admin", "safemode", "get", "--json").stdout)
    assert status["state"] == "manual"
    assert "OFF" in dfs(cluster, "admin", "safemode", "leave").stdout
    with cluster.client() as fs:
        fs.mkdirs(f"{remote_dir}/accepted")


def test_fsck_reports_health_and_exits_non_zero_on_missing_blocks(make_cluster: Callable[..., MiniCluster]) -> None:
    cluster = make_cluster()
    remote_dir = "/fsck"
    write_files(cluster, f"{remote_dir}/ok", count=2)
    result = dfs(cluster, "fsck", remote_dir, "--json")
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)
    assert {"files", "blocks", "healthy", "under_replicated", "mis_replicated", "corrupt", "missing"} <= set(counts)
    assert (counts["files"], counts["blocks"], counts["healthy"], counts["status"]) == (2, 6, 6, "HEALTHY")
    detail = dfs(cluster, "fsck", remote_dir, "--files", "--blocks", "--locations").stdout
    assert f"{remote_dir}/ok/f0" in detail and "blk_" in detail and "is HEALTHY" in detail

    lonely = f"{remote_dir}/lonely"
    with cluster.client() as fs:
        fs.write_bytes(lonely, os.urandom(1000), replication=1)
        holder = cluster.node_by_id(fs.block_locations(lonely).blocks[0].locations[0].id)
    cluster.kill_datanode(holder)
    # Once the holder is declared dead its block has no replica anywhere: missing.
    wait_until(
        lambda: json.loads(dfs(cluster, "fsck", remote_dir, "--json").stdout)["missing"] == 1,
        60,
        "fsck to report the missing block",
    )
    result = dfs(cluster, "fsck", remote_dir)
    assert result.returncode == 1
    assert "MISSING" in result.stdout and "is CORRUPT" in result.stdout
    holder.start()
    wait_until(lambda: dfs(cluster, "fsck", remote_dir).returncode == 0, 60, "the block to come back")


def test_report_shows_racks_states_and_queues(cluster: MiniCluster) -> None:
    report = json.loads(dfs(cluster, "report", "--json").stdout)
    assert {n["rack"] for n in report["datanodes"]} == {"/rack1", "/rack2"}
    for node in report["datanodes"]:
        assert {"id", "url", "rack", "state", "admin_state"} <= set(node)
    assert {"safe_mode", "replication_queue", "pending_replications", "decommissioning_datanodes"} <= set(report)
    text = dfs(cluster, "report").stdout
    assert "Replication queue:" in text and "Safe mode: off" in text
