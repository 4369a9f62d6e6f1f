"""Cluster membership with real processes: identity, foreign clusters, advertised addresses."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from client import DFSClient
from client.local_cluster import LocalCluster, NodeProcess, wait_until
from tests.minicluster import free_port

pytestmark = pytest.mark.cluster


@pytest.fixture()
def small_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """A one-DataNode cluster of its own, for tests that must not disturb the shared one."""
    cluster = LocalCluster(tmp_path / "c", datanodes=1, namenode_args=["--heartbeat-interval", "0.5"])
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def extra_datanode(cluster: LocalCluster, name: str, *args: str) -> NodeProcess:
    base = cluster.base_dir
    return NodeProcess(
        name,
        "datanode",
        [
            "--data-dir",
            str(base / name),
            "--namenode",
            cluster.url,
            "--cluster-secret-file",
            str(cluster.secret_file),
            *args,
        ],
        base / "run" / f"{name}.url",
        base / "logs" / f"{name}.log",
    )


def test_datanode_of_another_cluster_is_refused(small_cluster: LocalCluster) -> None:
    data_dir = small_cluster.base_dir / "foreign"
    data_dir.mkdir()
    (data_dir / "VERSION").write_text(
        json.dumps({"datanode_id": "DN-foreign", "cluster_id": "CID-some-other-cluster", "layout_version": 1})
    )
    node = extra_datanode(small_cluster, "foreign")
    try:
        node.start()
        wait_until(lambda: "another cluster" in node.log_tail(), 30, "the DataNode to refuse the NameNode")
        assert small_cluster.datanode_info(node)["registered"] is False
        assert "DN-foreign" not in {n.id for n in small_cluster.report().datanodes}
    finally:
        node.stop()


def test_datanode_advertises_the_address_it_is_told(small_cluster: LocalCluster) -> None:
    port = free_port()
    advertised = f"http://localhost:{port}"
    node = extra_datanode(small_cluster, "advertised", "--host", "127.0.0.1", "--advertise-url", advertised)
    node.port = port
    try:
        node.start()
        small_cluster.wait_for_live_datanodes(2)
        urls = {n.url for n in small_cluster.report().datanodes}
        assert advertised in urls
        with DFSClient(small_cluster.url) as fs:
            data = os.urandom(100_000)
            fs.write_bytes("/via-advertised", data, replication=2)
            assert any(n.url == advertised for n in fs.block_locations("/via-advertised").blocks[0].locations)
            assert fs.read_bytes("/via-advertised") == data
    finally:
        node.stop()


def test_a_restarted_namenode_keeps_its_cluster_id(small_cluster: LocalCluster) -> None:
    before = small_cluster.report().cluster_id
    small_cluster.namenode.kill()
    small_cluster.namenode.start()
    small_cluster.wait_for_live_datanodes(1)
    assert small_cluster.report().cluster_id == before
    version = json.loads((small_cluster.base_dir / "datanode1" / "VERSION").read_text())
    assert version["cluster_id"] == before
