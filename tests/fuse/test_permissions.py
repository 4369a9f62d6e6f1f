"""A mount shared by local users (--allow-other): each process acts as its own user on the
NameNode, whose refusals are EACCES, even where the kernel's (or the mount's) cached view of
the modes would allow the call.

The kernel checks modes first (`default_permissions`); to see the NameNode decide, these
tests make the kernel's view stale (a long --cache-ttl, a change made through the SDK) or
let the NameNode's groups differ from the OS's (the test clusters map `nobody` to no group).
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.minicluster import MiniCluster
from tests.mounts import Mount

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")

NOBODY_UID = 65534


@pytest.fixture()
def shared(cluster: MiniCluster, shared_mountpoint: Path) -> Iterator[Mount]:
    """The cluster mounted for every local user, with metadata cached for long."""
    mounted = Mount(
        cluster.url, shared_mountpoint / "mnt", shared_mountpoint / "mount.log", ["--allow-other", "--cache-ttl", "300"]
    )
    mounted.start()
    try:
        yield mounted
    finally:
        mounted.stop()


def as_nobody(*command: str) -> subprocess.CompletedProcess[str]:
    """Run a command as the unprivileged local user nobody (uid and gid 65534, no other groups)."""
    setpriv = ["setpriv", f"--reuid={NOBODY_UID}", f"--regid={NOBODY_UID}", "--clear-groups"]
    return subprocess.run([*setpriv, *command], capture_output=True, text=True, timeout=60)


def test_entries_made_through_the_mount_belong_to_the_calling_user(
    cluster: MiniCluster, shared: Mount, remote_dir: str
) -> None:
    directory = shared.path / remote_dir.lstrip("/")
    made = as_nobody("sh", "-c", f"echo hi > {directory}/by-nobody && mkdir {directory}/nobodys-dir")
    assert made.returncode == 0, made.stderr
    with cluster.client() as fs:
        file, folder = fs.status(f"{remote_dir}/by-nobody"), fs.status(f"{remote_dir}/nobodys-dir")
        assert (file.owner, folder.owner) == ("nobody", "nobody")
        assert file.group == fs.status(remote_dir).group  # the parent's group (HDFS), not nogroup
        assert fs.read_bytes(f"{remote_dir}/by-nobody") == b"hi\n"
    # The mount's own user (root here, the superuser) still acts as the mount.
    (directory / "by-root").write_bytes(b"r")
    with cluster.client() as fs:
        assert fs.status(f"{remote_dir}/by-root").owner == fs.user


def test_a_revoked_read_is_eacces_though_the_kernel_still_allows_it(
    cluster: MiniCluster, shared: Mount, remote_dir: str
) -> None:
    path = shared.path / remote_dir.lstrip("/") / "f"
    with cluster.client() as fs:
        fs.write_bytes(f"{remote_dir}/f", b"hello")  # rw-r--r--
    first = as_nobody("cat", str(path))
    assert first.returncode == 0 and first.stdout == "hello", first.stderr
    with cluster.client() as fs:  # behind the mount's back: its caches still say rw-r--r--
        fs.set_permission(f"{remote_dir}/f", 0o600)
    again = as_nobody("cat", str(path))
    assert again.returncode != 0 and again.stdout == ""
    assert "Permission denied" in again.stderr  # strerror(EACCES), from open(2)


def test_a_revoked_write_is_eacces_though_the_kernel_still_allows_it(
    cluster: MiniCluster, shared: Mount, remote_dir: str
) -> None:
    directory = shared.path / remote_dir.lstrip("/") / "d"
    with cluster.client() as fs:
        fs.mkdirs(f"{remote_dir}/d")
        fs.set_permission(f"{remote_dir}/d", 0o777)
    assert as_nobody("ls", str(directory)).returncode == 0  # the kernel now knows rwxrwxrwx
    with cluster.client() as fs:
        fs.set_permission(f"{remote_dir}/d", 0o755)
    refused = as_nobody("touch", str(directory / "x"))
    assert refused.returncode != 0 and "Permission denied" in refused.stderr
    with cluster.client() as fs:
        assert not fs.exists(f"{remote_dir}/d/x")


def test_one_users_cached_listing_is_not_shown_to_another(cluster: MiniCluster, shared: Mount, remote_dir: str) -> None:
    directory = shared.path / remote_dir.lstrip("/") / "team"
    with cluster.client() as fs:
        fs.write_bytes(f"{remote_dir}/team/plan", b"p")
        fs.set_owner(f"{remote_dir}/team", group="nogroup")
        fs.set_permission(f"{remote_dir}/team", 0o750)
    assert [entry.name for entry in directory.iterdir()] == ["plan"]  # root's listing, now cached
    # The kernel lets nobody in (gid nogroup), the NameNode does not (nobody is in no group there):
    # the mount asks the NameNode as nobody instead of answering from root's cache.
    listed = as_nobody("ls", str(directory))
    assert listed.returncode != 0 and "Permission denied" in listed.stderr
    assert "plan" not in listed.stdout


def test_eacces_is_the_errno_of_a_namenode_refusal(
    cluster: MiniCluster, make_mount: Callable[..., Mount], remote_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mount acting as a user of its own (--user) gets EACCES where that user may not go."""
    locked = f"{remote_dir}/locked"
    with cluster.client() as fs:
        fs.mkdirs(locked)
        fs.set_permission(locked, 0o700)
    monkeypatch.setenv("DFS_USER", "carol")  # `dfs mount` acts as carol
    as_carol = make_mount(cluster.url)  # root's calls bypass the kernel's checks: the NameNode decides
    with pytest.raises(PermissionError) as caught:
        list((as_carol.path / locked.lstrip("/")).iterdir())
    assert caught.value.errno == errno.EACCES
    with pytest.raises(PermissionError):
        (as_carol.path / locked.lstrip("/") / "f").write_bytes(b"x")
