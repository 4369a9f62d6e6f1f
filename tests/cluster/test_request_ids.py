"""One operation followed through every process's log by its request id (`X-Request-ID`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from client import request_id
from client.local_cluster import NodeProcess
from client.protocol.client_namenode import Routes
from client.protocol.common import HEADER_REQUEST_ID, is_valid_request_id
from tests.minicluster import MiniCluster, wait_until

pytestmark = pytest.mark.cluster

BLOCK = 1024 * 1024


def log_text(node: NodeProcess) -> str:
    return node.log_path.read_text(errors="replace")


def lines_with(node: NodeProcess, needle: str) -> list[str]:
    return [line for line in log_text(node).splitlines() if needle in line]


def block_holders(cluster: MiniCluster, path: str) -> dict[int, list[NodeProcess]]:
    """Every block of `path` with the DataNodes that have its replica on disk."""
    with cluster.client() as fs:
        blocks = [b.block.block_id for b in fs.block_locations(path).blocks]
    by_name = {node.name: node for node in cluster.datanodes}
    return {block_id: [by_name[name] for name in sorted(cluster.nodes_holding(block_id))] for block_id in blocks}


def assert_followable(cluster: MiniCluster, rid: str, path: str) -> None:
    """The NameNode logged the operation's mutations, and every replica holder its writes, under `rid`."""
    tag = f"request_id={rid}"
    holders = block_holders(cluster, path)
    assert holders and all(len(nodes) == 3 for nodes in holders.values()), holders

    def logged() -> bool:
        namenode = lines_with(cluster.namenode, tag)
        if not any("file created" in line and f"path={path}" in line for line in namenode):
            return False
        if not any("file completed" in line for line in namenode):
            return False
        for block_id, nodes in holders.items():
            if not any("block allocated" in line and f"block={block_id}" in line for line in namenode):
                return False
            for node in nodes:
                if not any("block written" in line and f"block={block_id} " in line for line in lines_with(node, tag)):
                    return False
        return True

    wait_until(logged, timeout=30, what=f"request {rid} in the NameNode's and every replica holder's log")


def test_a_put_is_followable_in_every_log(cluster: MiniCluster, remote_dir: str, tmp_path: Path) -> None:
    local = tmp_path / "data.bin"
    local.write_bytes(os.urandom(2 * BLOCK + 1234))
    path = f"{remote_dir}/followed"
    with cluster.client() as fs, request_id("test-put-0001") as rid:
        fs.put(local, path, replication=3, block_size=BLOCK)
    assert_followable(cluster, rid, path)

    # A read under another id shows up on the DataNode that served it.
    with cluster.client() as fs, request_id("test-get-0001"):
        assert fs.read_bytes(path) == local.read_bytes()
    wait_until(
        lambda: any(lines_with(node, "request_id=test-get-0001") for node in cluster.datanodes),
        timeout=30,
        what="the read's request id in a DataNode log",
    )
    served = [line for node in cluster.datanodes for line in lines_with(node, "request_id=test-get-0001")]
    assert any("block read" in line and "complete=True" in line for line in served)


def test_responses_echo_a_valid_id_and_replace_a_malformed_one(cluster: MiniCluster, remote_dir: str) -> None:
    datanode = cluster.datanodes[0]
    assert datanode.url is not None
    for base in (cluster.url, datanode.url):
        answer = httpx.get(base + "/healthz", headers={HEADER_REQUEST_ID: "echo-me_1.0"}, timeout=10)
        assert answer.headers[HEADER_REQUEST_ID] == "echo-me_1.0"
        fresh = httpx.get(base + "/healthz", timeout=10).headers[HEADER_REQUEST_ID]
        assert is_valid_request_id(fresh)

    junk = "junk<script>zz9 x"
    path = f"{remote_dir}/junk"
    answer = httpx.post(cluster.url + Routes.MKDIRS, json={"path": path}, headers={HEADER_REQUEST_ID: junk}, timeout=10)
    assert answer.status_code == 200, answer.text
    replaced = answer.headers[HEADER_REQUEST_ID]
    assert replaced != junk and is_valid_request_id(replaced)
    wait_until(
        lambda: any(f"path={path}" in line for line in lines_with(cluster.namenode, f"request_id={replaced}")),
        timeout=30,
        what="the replacement id in the NameNode log",
    )
    assert "zz9" not in log_text(cluster.namenode)


def test_a_cli_put_has_one_id_across_processes(cluster: MiniCluster, remote_dir: str, tmp_path: Path) -> None:
    local = tmp_path / "cli.bin"
    local.write_bytes(os.urandom(BLOCK + 77))
    path = f"{remote_dir}/cli"
    env = {**os.environ, "DFS_NAMENODE": cluster.url}
    result = subprocess.run(
        [sys.executable, "-m", "client.cli", "put", "-r", "3", "--block-size", str(BLOCK), str(local), path],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr

    created: list[str] = []

    def found() -> bool:
        created[:] = [line for line in lines_with(cluster.namenode, "file created") if f"path={path} " in line]
        return bool(created)

    wait_until(found, timeout=30, what="the CLI's create in the NameNode log")
    match = re.search(r"request_id=([A-Za-z0-9._-]+)", created[0])
    assert match is not None, created[0]
    assert_followable(cluster, match.group(1), path)
