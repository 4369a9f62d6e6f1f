"""MiniCluster: a real NameNode and DataNodes as processes on loopback, for tests.

Builds on `client.local_cluster.LocalCluster` (the same launcher `dfs cluster up` uses)
and adds what failure tests need: kill -9 / restart any node on the same port, find
replica files on disk, and heal the cluster between tests.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from client.local_cluster import LocalCluster, NodeProcess, wait_until
from client.protocol.block_format import block_file_name
from client.protocol.client_namenode import AdminRoutes, AdminState, SafeModeState
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
    "--safemode-extension",
    "0",
    "--replication-bandwidth",
    "0",
]
DATANODE_ARGS = ["--transfer-timeout", "20", "--scan-period", "3600"]


def free_port() -> int:
    """A port nothing listens on right now (for tests that must name a port up front)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MiniCluster(LocalCluster):
    def __init__(
        self,
        base_dir: Path,
        *,
        datanodes: int = 4,
        racks: int = 2,
        db_url: str | None = None,
        namenode_args: Sequence[str] = (),
        datanode_args: Sequence[str] = (),
    ) -> None:
        super().__init__(
            base_dir,
            datanodes=datanodes,
            racks=racks,
            db_url=db_url,
            namenode_args=[*NAMENODE_ARGS, *namenode_args],
            datanode_args=[*DATANODE_ARGS, *datanode_args],
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
        """Every node up and in service, all DataNodes live, and the NameNode out of safe mode."""
        for node in [self.namenode, *self.datanodes]:
            if node.alive:
                node.resume()  # harmless unless a test paused it
            else:
                node.start()
        self.wait_for_live_datanodes(len(self.datanodes), timeout=60)
        report = self.report()
        if report.safe_mode is SafeModeState.MANUAL:
            self.admin("POST", AdminRoutes.SAFEMODE, {"action": "leave"})
        for info in report.datanodes:
            if info.admin_state is not AdminState.NORMAL:
                self.admin("POST", AdminRoutes.RECOMMISSION, {"datanode": info.id})
        wait_until(lambda: self.report().safe_mode is SafeModeState.OFF, 60, "the NameNode to leave safe mode")

    def admin(self, method: str, route: str, body: dict[str, Any] | None = None) -> Any:
        """Call the NameNode's admin API; returns the JSON answer (raises on an error status)."""
        response = httpx.request(method, self.url + route, json=body, timeout=30.0)
        response.raise_for_status()
        return response.json()

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
