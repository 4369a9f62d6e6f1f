"""Two NameNodes on one metadata database: kill -9 the leader in the middle of a stream of writes
and renames; the stream goes on through the other NameNode, which takes over the background
work, and every acknowledged file is intact."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable

import httpx
import pytest

from client import DFSClient
from client.protocol.client_namenode import NameNodeInfo, SafeModeAction, SafeModeState
from client.protocol.errors import DfsError, SafeModeError
from client.protocol.status import StatusRoutes
from tests.conftest import BACKENDS
from tests.minicluster import MiniCluster, wait_until

pytestmark = pytest.mark.cluster

BLOCK = 64 * 1024


def leaders(cluster: MiniCluster) -> list[NameNodeInfo]:
    return [info for info in cluster.report().namenodes if info.leader and info.alive]


def the_leader(cluster: MiniCluster, timeout: float = 30.0) -> NameNodeInfo:
    wait_until(lambda: len(leaders(cluster)) == 1, timeout, "exactly one leader NameNode")
    return leaders(cluster)[0]


class WriteStream:
    """Writes files (renaming every other one) until stopped, remembering what was acknowledged."""

    def __init__(self, client: DFSClient, directory: str) -> None:
        self.client = client
        self.directory = directory
        self.acknowledged: dict[str, bytes] = {}
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ha-writes", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(120)
        assert not self._thread.is_alive(), "the write stream hung"

    def _run(self) -> None:
        number = 0
        while not self._stop.is_set():
            number += 1
            path = f"{self.directory}/f{number}"
            data = os.urandom(BLOCK + number % 7 * 1000)  # two blocks each
            try:
                self.client.write_bytes(path, data, block_size=BLOCK, replication=2)
                if number % 2:
                    renamed = f"{self.directory}/renamed{number}"
                    self.client.rename(path, renamed)
                    path = renamed
            except DfsError as exc:  # the call the kill interrupted: not acknowledged, not counted
                self.failures.append(f"{path}: {exc}")
                continue
            self.acknowledged[path] = data


@pytest.mark.parametrize("backend", BACKENDS)
def test_killing_the_leader_mid_stream_loses_no_acknowledged_file(
    make_cluster: Callable[..., MiniCluster], backend: str
) -> None:
    cluster = make_cluster(backend, namenodes=2, datanodes=3, namenode_args=["--leader-lease", "3"])
    first = the_leader(cluster)
    by_url = {node.url: node for node in cluster.namenodes}
    with cluster.client() as fs:
        fs.mkdirs("/ha")
        fs.set_permission("/ha", 0o777)
        stream = WriteStream(fs, "/ha")
        stream.start()
        try:
            wait_until(lambda: len(stream.acknowledged) >= 6, 60, "writes before the kill")
            by_url[first.url].kill()
            at_kill = len(stream.acknowledged)
            try:
                wait_until(lambda: len(stream.acknowledged) >= at_kill + 6, 60, "writes through the other NameNode")
            except TimeoutError as exc:
                raise AssertionError(f"{exc}; last failures: {stream.failures[-3:]}") from None
        finally:
            stream.stop()
        wait_until(
            lambda: any(info.url != first.url for info in leaders(cluster)), 30, "the other NameNode to take the lead"
        )
        second = the_leader(cluster)

        # The background work resumed on the new leader: it re-replicates a file asked for more.
        some_path = next(iter(stream.acknowledged))
        fs.set_replication(some_path, 3)
        block_ids = [block.block.block_id for block in fs.block_locations(some_path).blocks]
        wait_until(
            lambda: all(len(cluster.nodes_holding(block_id)) == 3 for block_id in block_ids),
            60,
            "re-replication by the new leader",
        )

        for path, data in stream.acknowledged.items():
            assert fs.read_bytes(path) == data, path

        # The shell takes the same list: with the first NameNode dead it answers from the second.
        shell = subprocess.run(
            [sys.executable, "-m", "client.cli", "--namenode", cluster.urls, "report"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert shell.returncode == 0, shell.stderr
        assert f"NameNode {second.url}  LEADER" in shell.stdout

        # The old leader comes back as a follower; both serve, one leads.
        by_url[first.url].start()
        wait_until(lambda: sum(info.alive for info in cluster.report().namenodes) == 2, 30, "both NameNodes seen")
        assert the_leader(cluster).url == second.url
    with DFSClient(first.url) as old:
        assert old.read_bytes(some_path) == stream.acknowledged[some_path]


def test_operator_safe_mode_is_cluster_wide(make_cluster: Callable[..., MiniCluster]) -> None:
    cluster = make_cluster(namenodes=2, datanodes=1)
    one, two = (DFSClient(str(node.url)) for node in cluster.namenodes)
    with one, two:
        one.safemode(SafeModeAction.ENTER)
        wait_until(lambda: two.safemode().state is SafeModeState.MANUAL, 30, "the other NameNode to follow")
        with pytest.raises(SafeModeError):
            two.mkdirs("/refused")
        two.safemode(SafeModeAction.LEAVE)
        wait_until(lambda: one.safemode().state is SafeModeState.OFF, 30, "the first NameNode to follow")
        one.mkdirs("/allowed")


def test_a_namenode_started_late_serves_without_waiting_for_reports(make_cluster: Callable[..., MiniCluster]) -> None:
    """DataNodes stay with the NameNode they talk to; a new one learns from the others that the
    block map is confirmed, and does not take the lease from a live leader."""
    cluster = make_cluster(namenodes=2, datanodes=2)
    with cluster.client() as fs:
        fs.write_bytes("/data", b"x" * 1000)
    late = cluster.namenodes[1]
    late.stop()
    late.start()
    with DFSClient(str(late.url)) as fs:
        wait_until(lambda: fs.safemode().state is SafeModeState.OFF, 30, "the late NameNode to leave safe mode")
        fs.mkdirs("/through-the-late-one")
        assert fs.read_bytes("/data") == b"x" * 1000
    assert the_leader(cluster).url == cluster.url
    # Operators see both on the status page (and its JSON twin) of either NameNode.
    overview = httpx.get(f"{late.url}{StatusRoutes.OVERVIEW}", timeout=10).json()
    assert {(nn["url"], nn["leader"], nn["this"]) for nn in overview["namenodes"]} == {
        (cluster.url, True, False),
        (late.url, False, True),
    }
    page = httpx.get(f"{cluster.url}/", timeout=10).text
    assert 'id="namenodes"' in page and str(late.url) in page and "follower" in page
