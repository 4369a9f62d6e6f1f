"""The mount and the SDK see the same files: bytes, sizes, modes and times agree both ways,
and the write strategies (streaming, append, spooled rewrite) each leave the right bytes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from client.local_cluster import wait_until
from tests.minicluster import MiniCluster
from tests.mounts import Mount

pytestmark = pytest.mark.cluster

MIB = 1024 * 1024


def dfs_get(cluster: MiniCluster, remote: str, local: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "client.cli", "--namenode", cluster.url, "get", remote, str(local)],
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_written_through_the_mount_read_through_the_sdk_and_dfs_get(
    cluster: MiniCluster, mount: Mount, mdir: Path, tmp_path: Path
) -> None:
    data = os.urandom(9 * MIB + 17)
    with open(mdir / "w.bin", "wb") as out:
        for start in range(0, len(data), 100_000):  # odd-sized writes
            out.write(data[start : start + 100_000])
    remote = mount.remote(mdir / "w.bin")
    with cluster.client() as fs:
        assert fs.read_bytes(remote) == data
        status = fs.status(remote)
    assert status.length == len(data) and not status.under_construction
    dfs_get(cluster, remote, tmp_path / "got.bin")
    assert (tmp_path / "got.bin").read_bytes() == data
    assert os.stat(mdir / "w.bin").st_ino == status.file_id


def test_written_through_the_sdk_read_through_the_mount(cluster: MiniCluster, mount: Mount, mdir: Path) -> None:
    data = os.urandom(3 * MIB + 5)
    with cluster.client() as fs:
        fs.write_bytes(mount.remote(mdir / "s.bin"), data, block_size=MIB)
        fs.set_permission(mount.remote(mdir / "s.bin"), 0o640)
        fs.set_times(mount.remote(mdir / "s.bin"), mtime=1_500_000_000_123)
    assert (mdir / "s.bin").read_bytes() == data
    info = os.stat(mdir / "s.bin")
    assert (info.st_size, info.st_mode & 0o777, info.st_mtime_ns) == (len(data), 0o640, 1_500_000_000_123_000_000)


def test_changes_by_other_clients_show_once_the_cache_expires(cluster: MiniCluster, mount: Mount, mdir: Path) -> None:
    (mdir / "f").write_bytes(b"first")
    assert sorted(os.listdir(mdir)) == ["f"]
    with cluster.client() as fs:
        fs.write_bytes(mount.remote(mdir / "f"), b"second version", overwrite=True)
        fs.write_bytes(mount.remote(mdir / "g"), b"new")
    wait_until(lambda: sorted(os.listdir(mdir)) == ["f", "g"], 10, "the listing to show g")
    wait_until(lambda: (mdir / "f").read_bytes() == b"second version", 10, "the new content of f")


def test_a_program_reads_back_what_it_wrote_before_closing(mdir: Path) -> None:
    with open(mdir / "rw.bin", "w+b") as handle:
        handle.write(b"a" * 5000)
        handle.flush()
        handle.seek(0)
        assert handle.read() == b"a" * 5000
        handle.write(b"b" * 10)  # keeps streaming at the end
        handle.flush()
        assert os.fstat(handle.fileno()).st_size == 5010
    assert (mdir / "rw.bin").read_bytes() == b"a" * 5000 + b"b" * 10


def test_fsync_makes_data_durable_before_close(cluster: MiniCluster, mount: Mount, mdir: Path) -> None:
    fd = os.open(mdir / "synced.bin", os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, b"x" * 100_000)
        os.fsync(fd)
        with cluster.client() as fs:  # another client sees every fsynced byte, the file complete
            status = fs.status(mount.remote(mdir / "synced.bin"))
            assert (status.length, status.under_construction) == (100_000, False)
        os.write(fd, b"y" * 10)
    finally:
        os.close(fd)
    assert (mdir / "synced.bin").read_bytes() == b"x" * 100_000 + b"y" * 10


def test_overwrite_inside_a_file_rewrites_it_and_keeps_its_attributes(
    cluster: MiniCluster, mount: Mount, mdir: Path
) -> None:
    original = bytearray(os.urandom(2 * MIB))
    (mdir / "db").write_bytes(original)
    os.chmod(mdir / "db", 0o600)
    with open(mdir / "db", "r+b") as handle:
        handle.seek(1000)
        handle.write(b"PATCHED")
        handle.seek(0)
        assert handle.read(1007)[1000:] == b"PATCHED"  # reads see the pending rewrite
        handle.seek(len(original) + 10)
        handle.write(b"tail")  # past the end: a hole of zeros
    expected = bytes(original[:1000]) + b"PATCHED" + bytes(original[1007:]) + bytes(10) + b"tail"
    with cluster.client() as fs:
        assert fs.read_bytes(mount.remote(mdir / "db")) == expected
        assert fs.status(mount.remote(mdir / "db")).mode == 0o600
    assert sorted(os.listdir(mdir)) == ["db"]  # no temporary left behind


def test_two_handles_on_one_file_see_each_others_writes(mdir: Path) -> None:
    with open(mdir / "two", "wb") as first, open(mdir / "two", "ab") as second:
        first.write(b"one,")
        first.flush()
        second.write(b"two")
        second.flush()
    assert (mdir / "two").read_bytes() == b"one,two"


def test_statfs_reports_cluster_capacity(cluster: MiniCluster, mount: Mount) -> None:
    report = cluster.report()
    info = os.statvfs(mount.path)
    assert info.f_blocks * info.f_frsize == pytest.approx(report.capacity, rel=0.01)
    assert info.f_bavail * info.f_frsize <= report.capacity
    assert info.f_namemax == 255
