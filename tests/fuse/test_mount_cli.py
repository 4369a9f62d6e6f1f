"""`dfs mount` / `dfs umount` as a user runs them: clear errors, clean unmounts on signals."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from client.local_cluster import wait_until
from fuse_mount.mount import is_mounted
from tests.minicluster import MiniCluster, free_port
from tests.mounts import Mount, dfs_command, require_fuse

pytestmark = pytest.mark.cluster


def dfs(namenode: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(dfs_command(namenode, *args), capture_output=True, text=True, timeout=90)


def fails(namenode: str, *args: str) -> str:
    result = dfs(namenode, *args)
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("dfs: ")
    return result.stderr


def test_mounting_on_a_busy_or_missing_mount_point_is_refused(
    cluster: MiniCluster, mount: Mount, tmp_path: Path
) -> None:
    assert "busy" in fails(cluster.url, "mount", str(mount.path))
    assert "does not exist" in fails(cluster.url, "mount", str(tmp_path / "missing"))
    (tmp_path / "file").write_bytes(b"")
    assert "not a directory" in fails(cluster.url, "mount", str(tmp_path / "file"))


def test_mounting_without_a_namenode_says_so(tmp_path: Path) -> None:
    require_fuse()
    (tmp_path / "mnt").mkdir()
    message = fails(f"http://127.0.0.1:{free_port()}", "mount", str(tmp_path / "mnt"))
    assert "NameNode" in message or "connect" in message.lower(), message
    assert not is_mounted(tmp_path / "mnt")


def test_umount_errors(cluster: MiniCluster, make_mount: Callable[..., Mount], tmp_path: Path) -> None:
    assert "not mounted" in fails(cluster.url, "umount", str(tmp_path))
    mounted = make_mount(cluster.url)
    with open(mounted.path / "held-open", "wb"):
        assert "busy" in fails(cluster.url, "umount", str(mounted.path))
    result = dfs(cluster.url, "umount", str(mounted.path))
    assert result.returncode == 0, result.stderr
    assert mounted.pid is not None
    wait_until(lambda: not mounted.alive, 30, "the mount process to exit")
    assert not is_mounted(mounted.path)


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_unmounts_cleanly_and_keeps_open_files(
    cluster: MiniCluster, make_mount: Callable[..., Mount], remote_dir: str, signal_number: int
) -> None:
    mounted = make_mount(cluster.url)
    assert mounted.pid is not None
    (mounted.path / remote_dir.lstrip("/") / "closed").write_bytes(b"closed before the signal")
    os.kill(mounted.pid, signal_number)
    wait_until(lambda: not mounted.alive, 30, "the mount process to exit")
    assert not is_mounted(mounted.path)
    assert "Traceback" not in mounted.log_tail(200)
    with cluster.client() as fs:
        assert fs.read_bytes(f"{remote_dir}/closed") == b"closed before the signal"


def test_umount_cleans_up_after_a_killed_mount(cluster: MiniCluster, make_mount: Callable[..., Mount]) -> None:
    mounted = make_mount(cluster.url)
    assert mounted.pid is not None
    os.kill(mounted.pid, signal.SIGKILL)
    wait_until(lambda: not mounted.alive, 30, "the mount process to die")
    with pytest.raises(OSError):  # "Transport endpoint is not connected"
        os.listdir(mounted.path)
    result = dfs(cluster.url, "umount", str(mounted.path))
    assert result.returncode == 0, result.stderr
    assert not is_mounted(mounted.path)
    mounted.start()  # the mount point is usable again
    assert os.path.isdir(mounted.path / "t")
