"""A DataNode whose disk fills up: writes go elsewhere, the node reports itself full, nothing stored is damaged.

One DataNode of a 3-node cluster keeps its replicas on a small tmpfs. A ballast file fills
that file system behind the NameNode's back while a block is being written through the
node (replication 3, so it is in every pipeline), which makes the node's next packet hit
ENOSPC for real (a short write then ENOSPC, or ENOSPC at once). The test then reads the
node's own view (`/v1/info`), the NameNode's view (cluster report) and the node's disk.
"""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from client import AsyncDFSClient
from client.local_cluster import NodeProcess
from client.protocol.client_namenode import DatanodeInfo
from namenode.placement import RESERVED_BYTES
from tests.faults import read_with_replica_first
from tests.minicluster import MiniCluster, wait_until

pytestmark = pytest.mark.cluster

BLOCK = 1024 * 1024
#: The block size of the file whose write fills the disk: several segments, so it fills mid-block.
BIG_BLOCK = 4 * BLOCK
SEGMENT = 256 * 1024
#: Room for a big block plus placement's reserve, and a few MiB of files besides.
TMPFS_BYTES = RESERVED_BYTES + BIG_BLOCK + 12 * BLOCK
#: What the ballast leaves free: less than one 1 MiB packet, so the next packet is a short write
#: (the other case leaves nothing, so it fails outright).
LEFT_FREE = 300 * 1024
#: A short scan period: the node re-verifies its replicas within seconds.
DATANODE_ARGS = ["--scan-period", "2"]


@pytest.fixture()
def full_disk_cluster(tmp_path: Path) -> Iterator[tuple[MiniCluster, NodeProcess]]:
    """A 3-DataNode cluster whose first DataNode stores its replicas on a tmpfs of TMPFS_BYTES."""
    base = tmp_path / "cluster"
    disk = base / "datanode1"  # LocalCluster keeps DataNode N's replicas in BASE/datanodeN
    disk.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(disk)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {mounted.stderr.strip()}")
    cluster = MiniCluster(base, datanodes=3, racks=1, datanode_args=DATANODE_ARGS)
    try:
        cluster.start()
        yield cluster, cluster.datanodes[0]
    finally:
        cluster.stop()
        if subprocess.run(["umount", str(disk)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], check=False)


def free_bytes(directory: Path) -> int:
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


def fill(directory: Path, leave: int) -> None:
    """Grow the ballast file in `directory` until only about `leave` bytes are free."""
    with (directory / "ballast").open("ab") as ballast:
        while (room := free_bytes(directory) - leave) > 0:
            try:
                ballast.write(b"\0" * min(room, 4 * BLOCK))
                ballast.flush()
            except OSError as exc:  # the last write may overshoot on page rounding: full is full
                assert exc.errno == errno.ENOSPC
                break


def namenode_view(cluster: MiniCluster, datanode_id: str) -> DatanodeInfo:
    return next(info for info in cluster.report().datanodes if info.id == datanode_id)


def block_files(cluster: MiniCluster, node: NodeProcess, block_id: int) -> list[Path]:
    """Every file (data or meta, rbw or finalised) of a block on a node's disk."""
    current = cluster.data_dir(node) / "current"
    return [*current.rglob(f"blk_{block_id}"), *current.rglob(f"blk_{block_id}_*.meta")]


def disk_full_errors(cluster: MiniCluster, node: NodeProcess) -> list[dict[str, object]]:
    return [e for e in cluster.datanode_info(node)["recent_errors"] if e["kind"] == "disk_full"]


def write_filling_the_disk(cluster: MiniCluster, full: NodeProcess, path: str, data: bytes, leave: int) -> int:
    """Write `data` (one BIG_BLOCK block) at replication 3; the full node's disk fills (to `leave`
    bytes free) after the first segment reached it. Returns the block id."""
    disk = cluster.data_dir(full)

    async def scenario() -> int:
        async with AsyncDFSClient(cluster.url, segment_size=SEGMENT) as fs:
            stream = await fs.create(path, block_size=BIG_BLOCK, replication=3)
            await stream.write(data[:BLOCK])
            block = stream._block  # the block being written right now
            assert block is not None and {n.id for n in block.locations} == {
                cluster.datanode_info(node)["id"] for node in cluster.datanodes
            }
            rbw = disk / "current" / "rbw" / f"blk_{block.block.block_id}"
            landed = lambda: rbw.exists() and rbw.stat().st_size >= BLOCK  # noqa: E731
            # Off the event loop, which must keep sending the segment meanwhile.
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, wait_until, landed, 30, "the first segment on the node")
            await loop.run_in_executor(None, fill, disk, leave)
            await stream.write(data[BLOCK:])
            await stream.close()
            return block.block.block_id

    return asyncio.run(scenario())


@pytest.mark.parametrize("leave", [LEFT_FREE, 0], ids=["short-write", "no-room"])
def test_full_datanode_fails_writes_over_keeps_its_replicas_and_recovers(
    full_disk_cluster: tuple[MiniCluster, NodeProcess], leave: int
) -> None:
    """ENOSPC mid-block costs the writer one pipeline node, not the file; the node's partial replica
    is discarded, never finalised; the full node gets no new replicas until space is freed, then
    takes them again; and the replicas it stored before the disk filled stay intact."""
    cluster, full = full_disk_cluster
    full_id = cluster.datanode_info(full)["id"]
    disk = cluster.data_dir(full)
    before = {f"/before/{i}": os.urandom(2 * BLOCK + 777 * i) for i in range(3)}
    with cluster.client() as fs:
        for path, data in before.items():
            fs.write_bytes(path, data, replication=3, block_size=BLOCK)
        before_blocks = [b.block.block_id for path in before for b in fs.block_locations(path).blocks]
    assert all(cluster.replica_file(full, block_id) is not None for block_id in before_blocks)

    # (b) The NameNode still sees room for a big block when the write starts: ENOSPC is real.
    room = BIG_BLOCK + RESERVED_BYTES
    wait_until(lambda: namenode_view(cluster, full_id).remaining >= room, 30, "the NameNode to see free space")
    filling = os.urandom(BIG_BLOCK - 4321)
    block_id = write_filling_the_disk(cluster, full, "/filling", filling, leave)
    with cluster.client() as fs:
        assert fs.status("/filling").length == len(filling)
        assert fs.read_bytes("/filling") == filling
        (located,) = fs.block_locations("/filling").blocks
        assert full_id not in {node.id for node in located.locations}
        assert located.length == len(filling) and len(located.locations) == 2
    assert cluster.replica_file(full, block_id) is None, "a partial replica was finalised"
    errors = disk_full_errors(cluster, full)
    assert any(e["block_id"] == block_id for e in errors), cluster.datanode_info(full)["recent_errors"]
    # The node freed the partial replica's space itself when the write failed (no block report needed).
    assert not block_files(cluster, full, block_id), "the partial replica was left on the full disk"
    assert full.alive and "Traceback" not in full.log_path.read_text(errors="replace")

    # (c) Full: the node says so, and placement passes it over.
    fill(disk, LEFT_FREE)
    wait_until(lambda: namenode_view(cluster, full_id).remaining < BLOCK, 30, "the NameNode to see the node full")
    assert cluster.datanode_info(full)["remaining"] < BLOCK
    with cluster.client() as fs:
        for i in range(4):
            fs.write_bytes(f"/while-full/{i}", os.urandom(BLOCK + BLOCK // 2), replication=3, block_size=BLOCK)
            for block in fs.block_locations(f"/while-full/{i}").blocks:
                assert full_id not in {node.id for node in block.locations}
    # By block, not by count: a second segment of the filling block that was in flight when the
    # first failed may record its own ENOSPC after the writer has moved on.
    failed_blocks = {e["block_id"] for e in disk_full_errors(cluster, full)}
    assert failed_blocks == {block_id}, "a write was still sent to the full node"
    assert not list((disk / "current" / "rbw").iterdir()), "the full node was given a replica to write"

    # (d) Space freed: the node takes writes again.
    (disk / "ballast").unlink()
    wait_until(lambda: namenode_view(cluster, full_id).remaining >= room, 30, "the NameNode to see space again")
    after = os.urandom(2 * BLOCK + 99)
    with cluster.client() as fs:
        fs.write_bytes("/after", after, replication=3, block_size=BLOCK)
        for block in fs.block_locations("/after").blocks:
            assert full_id in {node.id for node in block.locations}
    assert read_with_replica_first(cluster, "/after", full_id) == after

    # (a) What the node stored before it filled is intact, byte for byte and by its own scanner.
    for path, data in before.items():
        assert read_with_replica_first(cluster, path, full_id) == data
    scanned = cluster.datanode_info(full)["scanner"]["blocks_scanned"]
    wait_until(
        lambda: cluster.datanode_info(full)["scanner"]["blocks_scanned"] >= scanned + len(before_blocks),
        60,
        "the block scanner to verify the node's replicas again",
    )
    info = cluster.datanode_info(full)
    assert info["scanner"]["corrupt_found"] == 0 and info["checksum_failures"] == 0
    assert all(cluster.replica_file(full, block_id) is not None for block_id in before_blocks)
    assert not list((disk / "current" / "rbw").iterdir()), "a replica was left half-written"
