"""MiniCluster: a real NameNode and DataNodes as processes on loopback, for tests.

Builds on `client.local_cluster.LocalCluster` (the same launcher `dfs cluster up` uses)
and adds what failure tests need: kill -9 / restart any node on the same port, find
replica files on disk, and heal the cluster between tests.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from client.local_cluster import LocalCluster, NodeProcess, wait_until
from client.protocol.block_format import block_file_name
from client.sync_client import DFSClient

#: Timing knobs: fast enough for tests, slow enough not to flap on a loaded 2-core machine.
NAMENODE_ARGS = [
    "--heartbeat-interval",
    "0.5",
    "--stale-after",
    "4",
    "--dead-after",
    "8",
    "--replication-interval",
    "0.5",
    "--lease-soft-limit",
    "3",
    "--lease-hard-limit",
    "8",
]
DATANODE_ARGS = ["--transfer-timeout", "20"]


def free_port() -> int:
    """A port nothing listens on right now (for tests that must name a port up front)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MiniCluster(LocalCluster):
    def __init__(self, base_dir: Path, *, datanodes: int = 4, db_url: str | None = None) -> None:
        super().__init__(
            base_dir, datanodes=datanodes, db_url=db_url, namenode_args=NAMENODE_ARGS, datanode_args=DATANODE_ARGS
        )

    def client(self, **kwargs: Any) -> DFSClient:
        return DFSClient(self.url, **kwargs)

    # --- faults ----------------------------------------------------------------------------

    def restart_namenode(self, *, kill: bool = True) -> None:
        """Stop (kill -9 by default) and start the NameNode on the same port."""
        if kill:
            self.namenode.kill()
        else:
            self.namenode.stop()
        self.namenode.start()

    def kill_datanode(self, node: NodeProcess) -> None:
        node.kill()

    def restart_datanode(self, node: NodeProcess) -> None:
        if node.alive:
            node.kill()
        node.start()

    def heal(self) -> None:
        """Bring every node back up and wait until all DataNodes are live again."""
        for node in [self.namenode, *self.datanodes]:
            if node.alive:
                node.resume()  # harmless unless a test paused it
            else:
                node.start()
        self.wait_for_live_datanodes(len(self.datanodes), timeout=60)

    # --- inspection ------------------------------------------------------------------------

    def node_by_id(self, datanode_id: str) -> NodeProcess:
        for node in self.datanodes:
            if self.datanode_info(node)["id"] == datanode_id:
                return node
        raise KeyError(datanode_id)

    def data_dir(self, node: NodeProcess) -> Path:
        return self.base_dir / node.name

    def replica_file(self, node: NodeProcess, block_id: int) -> Path | None:
        """The finalised data file of a block on a node's disk, if there is one."""
        matches = list((self.data_dir(node) / "current" / "finalized").rglob(block_file_name(block_id)))
        return matches[0] if matches else None

    def nodes_holding(self, block_id: int) -> set[str]:
        return {node.name for node in self.datanodes if self.replica_file(node, block_id) is not None}


__all__ = ["MiniCluster", "free_port", "wait_until"]
