"""The NameNode killed at the worst moments of each mutation, on SQLite and PostgreSQL.

A random kill -9 seldom lands inside the millisecond that matters, so each scenario arms a crash
point (namenode/crash_points.py): the NameNode SIGKILLs itself inside the operation's transaction
(`before_commit`: the changes are made, the commit never happens) or just after the commit,
before it answers (`after_commit`: done, but nobody was told). After the restart, for every
scenario:

- the caller got an error, not a hang and not a success;
- the outcome is all or nothing: exactly the state before the call (`before_commit`) or exactly
  the state after it (`after_commit`), and a file left open by the crash is recovered by lease
  recovery to its finished blocks and can be written again;
- the metadata is well formed (namenode/integrity.py: one tree, no orphan inodes, block lists that
  add up, leases exactly on open files);
- every operation acknowledged before, in this scenario and all earlier ones, is still there, byte
  for byte.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from client.protocol.errors import DfsError
from client.sync_client import DFSClient
from namenode.crash_points import Moment
from tests.conftest import BACKENDS, backend_database
from tests.minicluster import MiniCluster, wait_until

pytestmark = pytest.mark.cluster

BLOCK = 256 * 1024
#: Small blocks (files of several blocks), and lease limits short enough that a file the crash left
#: open is recovered within a scenario.
NAMENODE_ARGS = ["--default-block-size", str(BLOCK), "--lease-soft-limit", "1", "--lease-hard-limit", "3"]


@dataclass
class CrashCluster:
    cluster: MiniCluster
    #: Acknowledged files and their bytes: every scenario re-reads all of them.
    acknowledged: dict[str, bytes]

    def client(self) -> DFSClient:
        return self.cluster.client()


@pytest.fixture(scope="module", params=BACKENDS)
def crash_cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CrashCluster]:
    base = tmp_path_factory.mktemp("crash")
    with backend_database(request.param, None) as url:
        cluster = MiniCluster(base, datanodes=3, racks=1, db_url=url, namenode_args=NAMENODE_ARGS)
        try:
            cluster.start()
            yield CrashCluster(cluster, {})
        finally:
            cluster.stop()


def payload(size: int) -> bytes:
    return os.urandom(size)


def write(fs: DFSClient, state: CrashCluster, path: str, data: bytes) -> None:
    """An acknowledged write: from here on the file must survive every crash."""
    fs.write_bytes(path, data, overwrite=True)
    state.acknowledged[path] = data


def wait_closed(fs: DFSClient, path: str) -> None:
    """Lease recovery closes a file its crashed writer left open (hard limit: NAMENODE_ARGS)."""
    wait_until(lambda: not fs.status(path).under_construction, 60, f"lease recovery to close {path}")


@dataclass
class Scenario:
    """Set up (acknowledged), make the call that crashes, then check what must hold for each moment."""

    setup: Callable[[DFSClient, CrashCluster, str], None]
    call: Callable[[DFSClient, str], object]
    check: Callable[[DFSClient, CrashCluster, str, Moment], None]


def no_setup(fs: DFSClient, state: CrashCluster, base: str) -> None:
    pass


def check_mkdirs(fs: DFSClient, state: CrashCluster, base: str, moment: Moment) -> None:
    assert fs.exists(f"{base}/new/dir") is (moment is Moment.AFTER_COMMIT)
    if moment is Moment.AFTER_COMMIT:
        assert fs.status(f"{base}/new/dir").is_dir


def check_create(fs: DFSClient, state: CrashCluster, base: str, moment: Moment) -> None:
    path = f"{base}/file"
    if moment is Moment.BEFORE_COMMIT:
        assert not fs.exists(path)
        write(fs, state, path, payload(BLOCK + 17))
    else:
        check_empty_after_recovery(fs, state, path)


def check_add_block(fs: DFSClient, state: CrashCluster, base: str, moment: Moment) -> None:
    """The create had committed; the first block (allocated or not) never held an acknowledged byte."""
    check_empty_after_recovery(fs, state, f"{base}/file")


def check_empty_after_recovery(fs: DFSClient, state: CrashCluster, path: str) -> None:
    """A file whose writer died before finishing a block is closed empty, and can be written again."""
    wait_closed(fs, path)
    assert fs.status(path).length == 0
    assert fs.block_locations(path).blocks == []
    write(fs, state, path, payload(BLOCK + 17))


def check_complete(fs: DFSClient, state: CrashCluster, base: str, moment: Moment) -> None:
    """Every block was finalised on the DataNodes before `complete`: whether or not it committed,
    the file ends closed with all its bytes (lease recovery keeps finalised blocks)."""
    path = f"{base}/file"
    wait_closed(fs, path)
    assert fs.read_bytes(path) == COMPLETE_DATA
    state.acknowledged[path] = COMPLETE_DATA


def setup_file(fs: DFSClient, state: CrashCluster, base: str) -> None:
    write(fs, state, f"{base}/file", payload(BLOCK + BLOCK // 2))


def check_rename(fs: DFSClient, state: CrashCluster, base: str, moment: Moment) -> None:
    src, dst = f"{base}/file", f"{base}/renamed"
    data = state.acknowledged.pop(src)
    present, absent = (dst, src) if moment is Moment.AFTER_COMMIT else (src, dst)
    assert not fs.exists(absent)
    assert fs.read_bytes(present) == data
    state.acknowledged[present] = data


def check_delete(fs: DFSClient, state: CrashCluster, base: str, moment: Moment) -> None:
    path = f"{base}/file"
    data = state.acknowledged.pop(path)
    if moment is Moment.BEFORE_COMMIT:
        assert fs.read_bytes(path) == data
        state.acknowledged[path] = data
        return
    assert not fs.exists(path)


def check_append(fs: DFSClient, state: CrashCluster, base: str, moment: Moment) -> None:
    """The append never wrote a byte: the file keeps exactly its old bytes, and can be appended to."""
    path = f"{base}/file"
    wait_closed(fs, path)
    assert fs.read_bytes(path) == state.acknowledged[path]
    more = payload(1000)
    with fs.append(path) as stream:
        stream.write(more)
    state.acknowledged[path] += more


def append_to(fs: DFSClient, path: str) -> None:
    with fs.append(path) as stream:
        stream.write(payload(BLOCK))


COMPLETE_DATA = payload(2 * BLOCK + 1234)

SCENARIOS: dict[str, Scenario] = {
    "mkdirs": Scenario(no_setup, lambda fs, base: fs.mkdirs(f"{base}/new/dir"), check_mkdirs),
    "create": Scenario(no_setup, lambda fs, base: fs.write_bytes(f"{base}/file", payload(BLOCK)), check_create),
    "add_block": Scenario(
        no_setup, lambda fs, base: fs.write_bytes(f"{base}/file", payload(2 * BLOCK)), check_add_block
    ),
    "complete": Scenario(no_setup, lambda fs, base: fs.write_bytes(f"{base}/file", COMPLETE_DATA), check_complete),
    "rename": Scenario(setup_file, lambda fs, base: fs.rename(f"{base}/file", f"{base}/renamed"), check_rename),
    "delete": Scenario(setup_file, lambda fs, base: fs.delete(f"{base}/file"), check_delete),
    "append": Scenario(setup_file, lambda fs, base: append_to(fs, f"{base}/file"), check_append),
}


def restart_namenode(cluster: MiniCluster, crash_at: str | None) -> None:
    """kill -9 and start again, armed with a crash point (or disarmed), and wait until it serves."""
    node = cluster.namenode
    node.env = {**cluster.env, **({"DFS_NAMENODE_CRASH_AT": crash_at} if crash_at else {})}
    cluster.restart_namenode(kill=True)
    cluster.heal()


@pytest.mark.parametrize("moment", list(Moment))
@pytest.mark.parametrize("operation", list(SCENARIOS))
def test_a_namenode_killed_mid_operation_loses_nothing_acknowledged(
    crash_cluster: CrashCluster, operation: str, moment: Moment
) -> None:
    state, cluster = crash_cluster, crash_cluster.cluster
    scenario = SCENARIOS[operation]
    base = f"/crash/{operation}-{moment}-{uuid.uuid4().hex[:6]}"
    with state.client() as fs:
        fs.mkdirs(base)
        scenario.setup(fs, state, base)

    restart_namenode(cluster, f"{operation}:{moment}")
    with state.client() as fs, pytest.raises(DfsError):
        scenario.call(fs, base)
    wait_until(lambda: not cluster.namenode.alive, 30, "the NameNode to kill itself at the crash point")
    assert "crash point reached" in cluster.namenode.log_tail(200)

    restart_namenode(cluster, None)
    with state.client() as fs:
        scenario.check(fs, state, base, moment)
        assert_consistent(state)
        for path, data in state.acknowledged.items():
            assert fs.read_bytes(path) == data, f"acknowledged {path} changed after the crash"


def assert_consistent(state: CrashCluster) -> None:
    report = state.cluster.assert_metadata_consistent()
    assert report.files >= len(state.acknowledged)


def test_a_bad_crash_point_is_refused_at_start_up(tmp_path: Path) -> None:
    """A typo in the knob must not silently disarm a crash test."""
    from namenode.config import NameNodeSettings

    with pytest.raises(ValueError, match="expected OPERATION:MOMENT"):
        NameNodeSettings(data_dir=tmp_path, crash_at="complete:later")
