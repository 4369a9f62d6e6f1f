"""Prometheus `/metrics`, `/readyz`, the DataNode byte counters and recent errors, on real processes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping

import httpx
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from client.block_io import read_block
from client.local_cluster import NodeProcess
from client.protocol.client_namenode import AdminRoutes, Routes
from client.protocol.errors import ChecksumMismatchError
from tests.faults import flip_byte
from tests.minicluster import MiniCluster, wait_until

pytestmark = pytest.mark.cluster

BLOCK = 1024 * 1024
BLOCK_ROUTE = "/v1/blocks/{block_id}"

NAMENODE_FAMILIES = [
    "dfs_namenode_requests",
    "dfs_namenode_request_duration_seconds",
    "dfs_namenode_db_query_duration_seconds",
    "dfs_namenode_safe_mode",
    "dfs_namenode_files",
    "dfs_namenode_directories",
    "dfs_namenode_blocks",
    "dfs_namenode_under_replicated_blocks",
    "dfs_namenode_corrupt_replicas",
    "dfs_namenode_missing_blocks",
    "dfs_namenode_pending_deletions",
    "dfs_namenode_pending_replications",
    "dfs_namenode_replication_queue",
    "dfs_namenode_capacity_bytes",
    "dfs_namenode_used_bytes",
    "dfs_namenode_remaining_bytes",
    "dfs_namenode_datanodes",
    "dfs_namenode_datanode_heartbeat_age_seconds",
    "dfs_namenode_datanode_state",
    "dfs_namenode_datanode_admin_state",
    "dfs_namenode_datanode_capacity_bytes",
    "dfs_namenode_datanode_used_bytes",
    "dfs_namenode_datanode_remaining_bytes",
    "dfs_namenode_datanode_blocks",
    "dfs_namenode_cluster_bytes_written",
    "dfs_namenode_cluster_bytes_read",
    "dfs_namenode_cluster_write_bytes_per_second",
    "dfs_namenode_cluster_read_bytes_per_second",
]
DATANODE_FAMILIES = [
    "dfs_datanode_requests",
    "dfs_datanode_request_duration_seconds",
    "dfs_datanode_bytes_written",
    "dfs_datanode_bytes_read",
    "dfs_datanode_checksum_failures",
    "dfs_datanode_replication_bytes_sent",
    "dfs_datanode_registered",
    "dfs_datanode_replicas",
    "dfs_datanode_used_bytes",
    "dfs_datanode_capacity_bytes",
    "dfs_datanode_remaining_bytes",
    "dfs_datanode_active_transfers",
    "dfs_datanode_scanner_blocks_scanned",
    "dfs_datanode_scanner_bytes_scanned",
    "dfs_datanode_scanner_corrupt_found",
    "dfs_datanode_scanner_pass_blocks_total",
    "dfs_datanode_scanner_pass_blocks_done",
]


def scrape(url: str) -> dict[str, Metric]:
    response = httpx.get(url + "/metrics", timeout=10.0)
    response.raise_for_status()
    assert response.headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def value(families: Mapping[str, Metric], sample: str, **labels: str) -> float:
    """Sum of the samples called `sample` whose labels include `labels` (0 if there are none)."""
    family = families[sample.removesuffix("_total").removesuffix("_count").removesuffix("_sum")]
    return sum(
        s.value
        for s in family.samples
        if s.name == sample and all(s.labels.get(key) == wanted for key, wanted in labels.items())
    )


def datanode_sum(cluster: MiniCluster, sample: str) -> float:
    return sum(value(scrape(_url(node)), sample) for node in cluster.datanodes)


def _url(node: NodeProcess) -> str:
    assert node.url is not None
    return node.url


def rises_to(read: Callable[[], float], target: float) -> Callable[[], bool]:
    return lambda: read() >= target


def test_every_family_is_exported(cluster: MiniCluster) -> None:
    families = scrape(cluster.url)
    assert [name for name in NAMENODE_FAMILIES if name not in families] == []
    assert value(families, "dfs_namenode_safe_mode", state="off") == 1
    assert value(families, "dfs_namenode_datanodes", state="live") == len(cluster.datanodes)
    ids = {s.labels["datanode"] for s in families["dfs_namenode_datanode_heartbeat_age_seconds"].samples}
    assert len(ids) >= len(cluster.datanodes)
    for node in cluster.datanodes:
        families = scrape(_url(node))
        assert [name for name in DATANODE_FAMILIES if name not in families] == []
        assert value(families, "dfs_datanode_registered") == 1


def test_requests_are_labelled_by_route_template(cluster: MiniCluster) -> None:
    httpx.get(cluster.url + "/v1/no/such/route/abc123", timeout=10.0)
    families = scrape(cluster.url)
    routes = {s.labels["route"] for s in families["dfs_namenode_requests"].samples}
    assert "/v1/no/such/route/abc123" not in routes
    assert "<unmatched>" in routes
    wait_until(
        lambda: value(scrape(cluster.url), "dfs_namenode_requests_total", route=Routes.HEARTBEAT, status="2xx") > 0,
        30,
        "heartbeats to be counted under their route",
    )


def test_counters_move_with_a_put_and_a_get(cluster: MiniCluster, remote_dir: str) -> None:
    size = 2 * BLOCK + 12345
    data = os.urandom(size)
    path = f"{remote_dir}/counted"
    namenode_before = scrape(cluster.url)
    written_before = datanode_sum(cluster, "dfs_datanode_bytes_written_total")
    read_before = datanode_sum(cluster, "dfs_datanode_bytes_read_total")
    block_writes_before = sum(
        value(scrape(_url(n)), "dfs_datanode_requests_total", route=BLOCK_ROUTE, method="POST")
        for n in cluster.datanodes
    )
    with cluster.client() as fs:
        fs.write_bytes(path, data, block_size=BLOCK)
        replication = fs.status(path).replication
        # Every replica's bytes were received before the write was acknowledged.
        assert datanode_sum(cluster, "dfs_datanode_bytes_written_total") >= written_before + size * replication
        assert fs.read_bytes(path) == data
    wait_until(
        rises_to(lambda: datanode_sum(cluster, "dfs_datanode_bytes_read_total"), read_before + size),
        30,
        "the DataNodes' bytes-read counters to count the get",
    )
    block_writes = sum(
        value(scrape(_url(n)), "dfs_datanode_requests_total", route=BLOCK_ROUTE, method="POST")
        for n in cluster.datanodes
    )
    assert block_writes >= block_writes_before + 3 * replication  # three blocks down a pipeline each
    namenode = scrape(cluster.url)
    for route in (Routes.CREATE, Routes.ADD_BLOCK, Routes.COMPLETE, Routes.LOCATIONS):
        before = value(namenode_before, "dfs_namenode_requests_total", route=route, status="2xx")
        assert value(namenode, "dfs_namenode_requests_total", route=route, status="2xx") > before, route
    assert value(namenode, "dfs_namenode_request_duration_seconds_count", route=Routes.CREATE) > 0
    assert value(namenode, "dfs_namenode_db_query_duration_seconds_count", kind="select") > 0
    assert value(namenode, "dfs_namenode_db_query_duration_seconds_count", kind="insert") > 0
    # The report gauges come from a snapshot at most a few seconds old.
    wait_until(lambda: value(scrape(cluster.url), "dfs_namenode_files") >= 1, 30, "the report gauges to count the file")


def test_cluster_throughput_follows_heartbeats(cluster: MiniCluster, remote_dir: str) -> None:
    size = BLOCK + 777
    before = value(scrape(cluster.url), "dfs_namenode_cluster_bytes_written_total")
    read_before = value(scrape(cluster.url), "dfs_namenode_cluster_bytes_read_total")
    with cluster.client() as fs:
        fs.write_bytes(f"{remote_dir}/flow", os.urandom(size), block_size=BLOCK)
        replication = fs.status(f"{remote_dir}/flow").replication

        def written_counted() -> bool:
            families = scrape(cluster.url)
            total = value(families, "dfs_namenode_cluster_bytes_written_total")
            rate = value(families, "dfs_namenode_cluster_write_bytes_per_second")
            return total >= before + size * replication and rate > 0

        wait_until(written_counted, 30, "heartbeats to bring the write into the cluster throughput")
        fs.read_bytes(f"{remote_dir}/flow")
    wait_until(
        rises_to(lambda: value(scrape(cluster.url), "dfs_namenode_cluster_bytes_read_total"), read_before + size),
        30,
        "heartbeats to bring the read into the cluster throughput",
    )


def test_corrupt_replica_counts_a_checksum_failure_and_a_recent_error(
    healthy_cluster: MiniCluster, remote_dir: str
) -> None:
    cluster = healthy_cluster
    path = f"{remote_dir}/rotten"
    with cluster.client() as fs:
        fs.write_bytes(path, os.urandom(BLOCK), block_size=BLOCK)
        block = fs.block_locations(path).blocks[0]
    node = block.locations[0]
    process = cluster.node_by_id(node.id)
    failures_before = value(scrape(_url(process)), "dfs_datanode_checksum_failures_total")
    replica = cluster.replica_file(process, block.block.block_id)
    assert replica is not None
    flip_byte(replica, 4321)

    async def direct_read() -> bytes:
        async with httpx.AsyncClient() as http:
            return b"".join(
                [bytes(piece) async for piece in read_block(http, node, block.block, 0, BLOCK, block.token)]
            )

    with pytest.raises(ChecksumMismatchError):
        asyncio.run(direct_read())
    assert value(scrape(_url(process)), "dfs_datanode_checksum_failures_total") >= failures_before + 1
    info = cluster.datanode_info(process)
    assert info["checksum_failures"] >= failures_before + 1
    assert any(
        error["kind"] == "corrupt_replica" and error["block_id"] == block.block.block_id and error["message"]
        for error in info["recent_errors"]
    )
    assert info["bytes_received"] >= BLOCK and "bytes_sent" in info


def test_readyz_on_a_healthy_cluster_and_in_safe_mode(healthy_cluster: MiniCluster) -> None:
    cluster = healthy_cluster
    for url in [cluster.url, *(_url(node) for node in cluster.datanodes)]:
        response = httpx.get(url + "/readyz", timeout=10.0)
        assert response.status_code == 200, url
        assert response.json() == {"status": "ready"}
    cluster.admin("POST", AdminRoutes.SAFEMODE, {"action": "enter"})
    try:
        response = httpx.get(cluster.url + "/readyz", timeout=10.0)
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "not ready"
        assert any("safe mode" in reason for reason in body["reasons"])
        assert value(scrape(cluster.url), "dfs_namenode_safe_mode", state="manual") == 1
        assert httpx.get(cluster.url + "/healthz", timeout=10.0).status_code == 200  # alive all the same
    finally:
        cluster.admin("POST", AdminRoutes.SAFEMODE, {"action": "leave"})
    assert httpx.get(cluster.url + "/readyz", timeout=10.0).status_code == 200


def test_readyz_of_a_datanode_without_a_namenode(make_cluster: Callable[..., MiniCluster]) -> None:
    mini = make_cluster(datanodes=1, racks=1)
    node = mini.datanodes[0]
    mini.namenode.stop()
    mini.restart_datanode(node)  # comes up, but cannot register
    response = httpx.get(_url(node) + "/readyz", timeout=10.0)
    assert response.status_code == 503
    assert response.json() == {"status": "not ready", "reasons": ["not registered with the NameNode"]}
    assert value(scrape(_url(node)), "dfs_datanode_registered") == 0
    assert httpx.get(_url(node) + "/healthz", timeout=10.0).status_code == 200
    mini.namenode.start()
    wait_until(
        lambda: httpx.get(_url(node) + "/readyz", timeout=10.0).status_code == 200,
        60,
        "the DataNode to register with the restarted NameNode",
    )
