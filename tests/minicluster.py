"""MiniCluster: a real NameNode and DataNodes as processes on loopback, for tests.

Builds on `client.local_cluster.LocalCluster` (the same launcher `dfs cluster up` uses)
and adds what failure tests need: kill -9 / restart any node on the same port, find
replica files on disk, and heal the cluster between tests.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from client.local_cluster import LocalCluster, NodeProcess, wait_until
from client.protocol.block_format import block_file_name
from client.protocol.client_namenode import AdminRoutes, AdminState, SafeModeState
from client.protocol.common import HEADER_USER, MAX_INT64
from client.protocol.security import HEADER_BLOCK_TOKEN, BlockAccessMode, BlockTokenClaims, block_key, sign_token
from client.sync_client import DFSClient
from client.tls import TlsFiles
from namenode.config import NameNodeSettings
from namenode.db.schema import current_os_user
from namenode.integrity import IntegrityReport, check_database
from tests import tls_mode

#: Static groups of the users tests act as: eng has alice and bob, ops carol; opsadmin is a superuser;
#: the local user nobody is in no group here, whatever the OS says (tests/fuse/test_permissions.py).
TEST_USER_GROUPS = "alice=eng;bob=eng;carol=ops;opsadmin=supergroup,ops;nobody="
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
    # Groups of the test users (tests/cluster/test_permissions.py); nobody else is affected.
    "--user-groups",
    TEST_USER_GROUPS,
]
#: The NameNode's default block key rotation (tests mint tokens with the key a NameNode would use).
BLOCK_KEY_ROTATION_S = NameNodeSettings.model_fields["block_key_rotation_s"].default

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
        tls: bool | TlsFiles | None = None,
        namenodes: int = 1,
    ) -> None:
        """`tls=None`: TLS with the session's CA when DFS_TEST_TLS=1 (tests.tls_mode), else plain HTTP."""
        #: The metadata database every NameNode of this cluster uses.
        self.db_url = db_url or f"sqlite:///{(base_dir / 'namenode' / 'metadata.db').resolve()}"
        super().__init__(
            base_dir,
            datanodes=datanodes,
            racks=racks,
            db_url=db_url,
            namenode_args=[*NAMENODE_ARGS, *namenode_args],
            datanode_args=[*DATANODE_ARGS, *datanode_args],
            tls=tls_mode.cluster_tls() if tls is None else tls,
            namenodes=namenodes,
        )

    def client(self, **kwargs: Any) -> DFSClient:
        if self.ca_file is not None:
            kwargs.setdefault("ca_file", self.ca_file)
        return DFSClient(self.urls, **kwargs)

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
        for node in [*self.namenodes, *self.datanodes]:
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
        """Call the NameNode's admin API as the superuser (the OS user running the cluster); returns
        the JSON answer (raises on an error status)."""
        headers = {HEADER_USER: current_os_user()}
        url = self.answering_namenode().url
        response = httpx.request(method, f"{url}{route}", json=body, headers=headers, timeout=30.0, verify=self.verify)
        response.raise_for_status()
        return response.json()

    # --- credentials -----------------------------------------------------------------------

    def secret(self) -> str:
        return self.secret_file.read_text().strip()

    def block_token(
        self,
        block_id: int,
        modes: Sequence[BlockAccessMode] = tuple(BlockAccessMode),
        *,
        user: str = "test",
        lifetime_s: float = 600.0,
        key_epoch: int | None = None,
        secret: str | None = None,
    ) -> str:
        """A block access token signed as the NameNode would (the test plays the NameNode)."""
        now = time.time()
        epoch = int(now // BLOCK_KEY_ROTATION_S * BLOCK_KEY_ROTATION_S) if key_epoch is None else key_epoch
        claims = BlockTokenClaims(
            key_epoch=epoch,
            block_id=block_id,
            user=user,
            modes=list(modes),
            expires_ms=int((now + lifetime_s) * 1000),
        )
        return sign_token(block_key(secret or self.secret(), epoch), claims)

    def add_block_token(self, request: httpx.Request) -> None:
        """An httpx request hook giving every /v1/blocks/{id} request a valid all-modes token."""
        parts = request.url.path.split("/")
        if len(parts) > 3 and parts[1:3] == ["v1", "blocks"] and parts[3].isdigit() and 0 < int(parts[3]) <= MAX_INT64:
            request.headers.setdefault(HEADER_BLOCK_TOKEN, self.block_token(int(parts[3])))

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

    def assert_metadata_consistent(self) -> IntegrityReport:
        """The metadata tables pass the integrity check (namenode/integrity.py: one tree, block lists
        that add up, leases on exactly the open files); read in one snapshot, live NameNodes or not."""
        engine = create_engine(self.db_url, poolclass=NullPool)
        try:
            report = check_database(engine)
        finally:
            engine.dispose()
        assert report.violations == [], report.violations
        return report


__all__ = ["MiniCluster", "free_port", "wait_until"]
