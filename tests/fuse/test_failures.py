"""Failures under a mounted file system: a DataNode killed mid-read, a rotten replica, a full
cluster, a NameNode killed and restarted."""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from client.local_cluster import wait_until
from tests.minicluster import MiniCluster
from tests.mounts import Mount

pytestmark = pytest.mark.cluster

MIB = 1024 * 1024


def test_datanode_killed_during_a_read_the_read_completes_correctly(
    healthy_cluster: MiniCluster, mount: Mount, mdir: Path
) -> None:
    data = os.urandom(32 * MIB)
    remote = mount.remote(mdir / "big.bin")
    with healthy_cluster.client() as fs:
        fs.write_bytes(remote, data, block_size=4 * MIB, replication=3)
        later_block = fs.block_locations(remote, 16 * MIB, 1).blocks[0]
    victim = healthy_cluster.node_by_id(later_block.locations[0].id)  # the replica the mount reads first
    digest = hashlib.sha256()
    with open(mdir / "big.bin", "rb", buffering=0) as handle:
        digest.update(handle.read(8 * MIB))
        healthy_cluster.kill_datanode(victim)
        while piece := handle.read(MIB):
            digest.update(piece)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()


def test_every_replica_corrupt_is_eio_never_wrong_bytes(cluster: MiniCluster, mount: Mount, mdir: Path) -> None:
    remote = mount.remote(mdir / "rotten.bin")
    with cluster.client() as fs:
        fs.write_bytes(remote, os.urandom(300_000), replication=1)
        block = fs.block_locations(remote).blocks[0]
    replica = cluster.replica_file(cluster.node_by_id(block.locations[0].id), block.block.block_id)
    assert replica is not None
    with replica.open("r+b") as disk:
        disk.seek(200_000)
        byte = disk.read(1)
        disk.seek(200_000)
        disk.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(OSError) as caught:
        (mdir / "rotten.bin").read_bytes()
    assert caught.value.errno == errno.EIO
    os.unlink(mdir / "rotten.bin")


def test_a_full_cluster_is_enospc_at_write_or_close(
    make_cluster: Callable[..., MiniCluster], make_mount: Callable[..., Mount]
) -> None:
    full = make_cluster(datanodes=1, datanode_args=["--capacity", str(32 * MIB)])
    mounted = make_mount(full.url)
    small = open(mounted.path / "small", "wb")
    small.write(b"x" * 100)
    with pytest.raises(OSError) as at_close:
        small.close()
    assert at_close.value.errno == errno.ENOSPC
    fd = os.open(mounted.path / "large", os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        with pytest.raises(OSError) as at_write:
            for _ in range(32):  # the first 8 MiB segment needs a block
                os.write(fd, b"y" * MIB)
        assert at_write.value.errno == errno.ENOSPC
    finally:
        with pytest.raises(OSError):  # the failure is reported again when the file is closed
            os.close(fd)


def test_namenode_killed_and_restarted_the_mount_carries_on(
    healthy_cluster: MiniCluster, mount: Mount, mdir: Path
) -> None:
    (mdir / "before").write_bytes(b"written before the crash")
    healthy_cluster.namenode.kill()
    try:
        with pytest.raises(OSError) as caught:
            (mdir / "during").write_bytes(b"x")
        assert caught.value.errno in (errno.ECONNREFUSED, errno.EIO, errno.ETIMEDOUT)
    finally:
        healthy_cluster.namenode.start()
    healthy_cluster.wait_for_live_datanodes(len(healthy_cluster.datanodes), timeout=60)

    def works() -> bool:
        try:
            (mdir / "after").write_bytes(b"written after the restart")
        except OSError:
            return False
        return True

    wait_until(works, 60, "the mount to write again")
    assert (mdir / "before").read_bytes() == b"written before the crash"
    assert (mdir / "after").read_bytes() == b"written after the restart"
    with healthy_cluster.client() as fs:
        assert fs.read_bytes(mount.remote(mdir / "before")) == b"written before the crash"


def test_bytes_closed_before_the_mount_process_is_killed_are_kept(
    cluster: MiniCluster, make_mount: Callable[..., Mount], remote_dir: str
) -> None:
    mounted = make_mount(cluster.url)
    (mounted.path / remote_dir.lstrip("/") / "kept").write_bytes(b"durable at close")
    assert mounted.pid is not None
    os.kill(mounted.pid, 9)
    wait_until(lambda: not mounted.alive, 30, "the mount process to die")
    with cluster.client() as fs:
        assert fs.read_bytes(f"{remote_dir}/kept") == b"durable at close"
