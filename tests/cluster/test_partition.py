"""A network partition between a DataNode and the rest of the cluster, made with a network namespace.

One DataNode runs in a namespace of its own (`ip netns exec`), joined to this machine by a
veth pair; the NameNode, the other DataNodes and the test's clients use the host end. The
partition is silent: an nftables table inside the namespace drops every packet in and out
(nothing is refused or reset), so the NameNode learns of it only by missing heartbeats and
clients only by timeouts, as with a pulled cable. Healing deletes the table. Needs root (CI
runs as root; `scripts/setup-system` installs iproute2 and nftables).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import random
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from client.local_cluster import LocalCluster, NodeProcess
from client.protocol.block_format import BLOCK_FILE_PREFIX, META_SUFFIX, block_file_name, parse_meta_file_name
from client.protocol.client_namenode import DatanodeState
from client.protocol.common import DatanodeRef, ExtendedBlock
from client.tls import TlsFiles
from tests import tls_mode
from tests.faults import read_asking_first
from tests.minicluster import DATANODE_ARGS, NAMENODE_ARGS, MiniCluster, wait_until

pytestmark = pytest.mark.cluster

T = TypeVar("T")
BLOCK = 1024 * 1024
#: Segments of the interrupted write: the first reaches every pipeline node before the partition, the
#: second (not the block's last, which would be acknowledged by the survivors as it stands) needs a
#: pipeline recovery, which gives the block a new generation stamp.
SEGMENT = 1024 * 1024
#: Generous bounds for a loaded 2-core machine (deadlines, not timing assertions).
DEADLINE_S = 120.0
NFT_TABLE = "dfs_partition"


def run(*command: str, stdin: str | None = None) -> str:
    """Run a command; CalledProcessError naming its stderr if it fails."""
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, command, done.stdout, done.stderr)
    return done.stdout


@dataclass
class NamespaceLink:
    """A network namespace joined to this machine by a veth pair, which we can cut and heal."""

    netns: str
    host_veth: str
    host_ip: str  # this machine's end: the NameNode, the other DataNodes, the clients
    node_ip: str  # the namespace's end: the DataNode to be partitioned

    @property
    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns]

    def cut(self) -> None:
        """Drop every packet in and out of the namespace (loopback aside): a silent partition."""
        rules = f"""
        table inet {NFT_TABLE} {{
            chain input {{ type filter hook input priority 0; policy drop; iifname "lo" accept; }}
            chain output {{ type filter hook output priority 0; policy drop; oifname "lo" accept; }}
        }}
        """
        run(*self.prefix, "nft", "-f", "-", stdin=rules)

    def heal(self) -> None:
        run(*self.prefix, "nft", "delete", "table", "inet", NFT_TABLE)


def unused_subnet() -> str:
    """A 10.x.y /24 prefix no interface or route here uses (random, so parallel runs do not meet)."""
    taken = run("ip", "-o", "-4", "addr", "show") + run("ip", "-4", "route", "show", "table", "all")
    for _ in range(100):
        prefix = f"10.{random.randrange(200, 255)}.{random.randrange(256)}"
        if f"{prefix}." not in taken:
            return prefix
    raise RuntimeError("no free 10.x.y.0/24 subnet found")


@pytest.fixture()
def link() -> Iterator[NamespaceLink]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CI runs this test as root)")
    missing = [tool for tool in ("ip", "nft") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not installed: run scripts/setup-system")
    tag = uuid.uuid4().hex[:8]
    prefix = unused_subnet()
    ns = NamespaceLink(f"dfs-part-{tag}", f"dp{tag}h", f"{prefix}.1", f"{prefix}.2")
    peer = f"dp{tag}n"
    try:
        run("ip", "netns", "add", ns.netns)
        run("ip", "link", "add", ns.host_veth, "type", "veth", "peer", "name", peer)
        run("ip", "link", "set", peer, "netns", ns.netns)
        run("ip", "addr", "add", f"{ns.host_ip}/24", "dev", ns.host_veth)
        run("ip", "link", "set", ns.host_veth, "up")
        run(*ns.prefix, "ip", "addr", "add", f"{ns.node_ip}/24", "dev", peer)
        run(*ns.prefix, "ip", "link", "set", peer, "up")
        run(*ns.prefix, "ip", "link", "set", "lo", "up")
        yield ns
    finally:
        # Processes of ours the cluster's own clean-up missed would keep the namespace alive.
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            for pid in run("ip", "netns", "pids", ns.netns).split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), 9)
        with contextlib.suppress(subprocess.SubprocessError):
            run("ip", "link", "del", ns.host_veth)  # takes its peer with it
        with contextlib.suppress(subprocess.SubprocessError):
            run("ip", "netns", "del", ns.netns)


class PartitionCluster(MiniCluster):
    """A MiniCluster on the host end of a veth pair (MiniCluster itself always binds loopback)."""

    def __init__(self, base_dir: Path, link: NamespaceLink) -> None:
        tls: bool | TlsFiles = False
        if tls_mode.enabled():  # the session's certificate names loopback only: one naming both ends
            from client.tls_certs import make_certs

            tls = make_certs(base_dir / "tls", ips=["127.0.0.1", link.host_ip, link.node_ip])
        LocalCluster.__init__(
            self,
            base_dir,
            datanodes=2,
            host=link.host_ip,
            namenode_args=NAMENODE_ARGS,
            datanode_args=DATANODE_ARGS,
            tls=tls,
        )


@pytest.fixture()
def netns_cluster(link: NamespaceLink, tmp_path: Path) -> Iterator[MiniCluster]:
    """Two DataNodes on the host; the test adds the one in the namespace."""
    mini = PartitionCluster(tmp_path / "cluster", link)
    try:
        mini.start()
        yield mini
    finally:
        mini.stop()


def in_thread(function: Callable[[], T]) -> concurrent.futures.Future[T]:
    """Run `function` on a thread of its own (a hung call then fails the test at `.result(timeout)`)."""
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    future = executor.submit(function)
    executor.shutdown(wait=False)
    return future


def read_trying_first(cluster: MiniCluster, path: str, node: DatanodeRef) -> bytes:
    return read_asking_first(cluster, path, node)


def state_of(cluster: MiniCluster, datanode_id: str) -> DatanodeState:
    return next(n.state for n in cluster.report().datanodes if n.id == datanode_id)


def rbw_files(cluster: MiniCluster, node: NodeProcess) -> list[Path]:
    """A node's replicas being written (data and meta files)."""
    return sorted((cluster.data_dir(node) / "current" / "rbw").glob(f"{BLOCK_FILE_PREFIX}*"))


def first_segment_arrived(cluster: MiniCluster, node: NodeProcess) -> bool:
    """The node holds a replica being written, with its checksums, of at least one segment."""
    files = rbw_files(cluster, node)
    sizes = [p.stat().st_size for p in files if p.suffix != META_SUFFIX]
    return any(p.suffix == META_SUFFIX for p in files) and any(size >= SEGMENT for size in sizes)


def stale_copies(cluster: MiniCluster, node: NodeProcess, block: ExtendedBlock, length: int) -> list[Path]:
    """Files of a node's copies of `block` that are not its current version (stamp and length)."""
    stale = []
    for meta in (cluster.data_dir(node) / "current").rglob(f"{block_file_name(block.block_id)}_*{META_SUFFIX}"):
        parsed = parse_meta_file_name(meta.name)
        data = meta.with_name(block_file_name(block.block_id))
        if parsed is None or parsed[1] != block.gen_stamp or not data.exists() or data.stat().st_size != length:
            stale += [meta, data]
    return stale


def replicated_without(cluster: MiniCluster, paths: list[str], node: NodeProcess, datanode_id: str) -> bool:
    """Every block of `paths` has three replicas, on disk and in the block map, none of them on the node."""
    with cluster.client() as fs:
        blocks = [block for path in paths for block in fs.block_locations(path).blocks]
    for block in blocks:
        ids = {n.id for n in block.locations}
        others = cluster.nodes_holding(block.block.block_id) - {node.name}
        if datanode_id in ids or len(ids) != 3 or len(others) < 3:
            return False
    return True


def test_partitioned_datanode_is_replaced_and_rejoins_without_stale_data(
    netns_cluster: MiniCluster, link: NamespaceLink
) -> None:
    """The NameNode declares a DataNode it cannot hear dead and re-replicates its blocks elsewhere;
    readers fail over from it; once the partition heals the node registers again, the replicas that
    went stale meanwhile (of a file deleted and rewritten, of a write whose pipeline dropped it, of a
    block truncated under a new generation stamp) are deleted from its disk on the NameNode's word,
    and no read ever returns anything but current bytes, even one that asks that node first."""
    cluster = netns_cluster
    isolated = cluster.add_datanode(host=link.node_ip, command_prefix=link.prefix)
    info = cluster.datanode_info(isolated)
    node = DatanodeRef(id=info["id"], url=isolated.url or "")
    assert node.url.startswith(f"{tls_mode.scheme()}://{link.node_ip}:")

    # Before: with three DataNodes, every replica-3 block has a copy on the isolated node.
    old = os.urandom(2 * BLOCK + 100)
    interrupted = os.urandom(2 * SEGMENT + BLOCK // 2)  # a middle segment, then a final one
    whole = os.urandom(BLOCK - 1000)
    cut = whole[: BLOCK // 3 + 17]  # /t after a truncate in the middle of its block
    writer_client = cluster.client(segment_size=SEGMENT)
    writer = writer_client.open("/b", "wb", replication=3, block_size=4 * BLOCK)
    try:
        with cluster.client() as fs:
            fs.write_bytes("/a", old, replication=3, block_size=BLOCK)
            old_blocks = [block.block.block_id for block in fs.block_locations("/a").blocks]
            fs.write_bytes("/t", whole, replication=3, block_size=BLOCK)
            cut_block = fs.block_locations("/t").blocks[0].block
        old_files = [cluster.replica_file(isolated, block_id) for block_id in old_blocks]
        assert all(old_files) and cluster.replica_file(isolated, cut_block.block_id)
        writer.write(interrupted[:SEGMENT])
        writer.flush()  # the first segment goes down the pipeline, the isolated node included
        wait_until(lambda: first_segment_arrived(cluster, isolated), DEADLINE_S, "the first segment of /b there")
        stale_rbw = rbw_files(cluster, isolated)
        stale_gen_stamp = next(filter(None, (parse_meta_file_name(p.name) for p in stale_rbw)))[1]
        cluster.add_datanode()  # room to re-replicate to without the isolated node

        link.cut()
        # A client that still believes the node holds /a, and the writer whose pipeline includes it.
        read_during = in_thread(lambda: read_trying_first(cluster, "/a", node))

        def finish_write() -> None:
            writer.write(interrupted[SEGMENT:])
            writer.close()

        finished = in_thread(finish_write)
        assert read_during.result(timeout=DEADLINE_S) == old
        finished.result(timeout=DEADLINE_S)
    finally:
        with contextlib.suppress(Exception):
            writer.close()
        writer_client.close()

    wait_until(lambda: state_of(cluster, node.id) is DatanodeState.DEAD, DEADLINE_S, "the node declared dead")
    wait_until(lambda: replicated_without(cluster, ["/a", "/b", "/t"], isolated, node.id), DEADLINE_S, "re-replication")
    with cluster.client() as fs:
        assert fs.block_locations("/b").blocks[0].block.gen_stamp > stale_gen_stamp
        assert fs.read_bytes("/a") == old
        assert fs.read_bytes("/b") == interrupted
        # While the node is away, /a is replaced and /t cut short (its block gets a new stamp):
        # the node's copies of both become stale too.
        fs.delete("/a")
        new = os.urandom(len(old))
        fs.write_bytes("/a", new, replication=3, block_size=BLOCK)
        fs.truncate("/t", len(cut), wait=True, timeout=DEADLINE_S)
        cut_block = fs.block_locations("/t").blocks[0].block
        assert fs.read_bytes("/t") == cut
    assert stale_copies(cluster, isolated, cut_block, len(cut))
    assert all(path is not None and path.exists() for path in [*old_files, *stale_rbw])

    link.heal()
    # Straight away (it may still hold its stale copies): asked first, it must not answer with them.
    assert read_trying_first(cluster, "/a", node) == new
    assert read_trying_first(cluster, "/b", node) == interrupted
    assert read_trying_first(cluster, "/t", node) == cut

    wait_until(lambda: state_of(cluster, node.id) is DatanodeState.LIVE, DEADLINE_S, "the node to rejoin")
    wait_until(
        lambda: not any(path is not None and path.exists() for path in [*old_files, *stale_rbw]),
        DEADLINE_S,
        "the stale replicas deleted from the rejoined node",
    )
    # Its old version of /t's block is deleted, or cut to the current one: nothing stale stays.
    wait_until(lambda: not stale_copies(cluster, isolated, cut_block, len(cut)), DEADLINE_S, "/t's stale copy gone")
    assert not any(cluster.replica_file(isolated, block_id) for block_id in old_blocks)
    with cluster.client() as fs:
        # In service again: a new file with a copy on every node lists it, and it serves its copy.
        fresh = os.urandom(BLOCK + 7)
        fs.write_bytes("/c", fresh, replication=4, block_size=BLOCK)
        assert node.id in {n.id for n in fs.block_locations("/c").blocks[0].locations}
        assert fs.read_bytes("/a") == new
        assert fs.read_bytes("/b") == interrupted
        assert fs.read_bytes("/t") == cut
    assert read_trying_first(cluster, "/c", node) == fresh
    assert read_trying_first(cluster, "/a", node) == new
    assert read_trying_first(cluster, "/b", node) == interrupted
    assert read_trying_first(cluster, "/t", node) == cut
    assert all(n.state is DatanodeState.LIVE for n in cluster.report().datanodes)
