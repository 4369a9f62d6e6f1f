"""The errno a program gets for each failure on the mount, as on a local disk."""

from __future__ import annotations

import ctypes
import errno
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.minicluster import MiniCluster
from tests.mounts import Mount

pytestmark = pytest.mark.cluster

RENAME_NOREPLACE = 1
AT_FDCWD = -100


def errno_of(action: Callable[[], object]) -> int:
    with pytest.raises(OSError) as caught:
        action()
    assert caught.value.errno is not None
    return caught.value.errno


def test_missing_paths_are_enoent(mdir: Path) -> None:
    assert errno_of(lambda: (mdir / "nope").stat()) == errno.ENOENT
    assert errno_of(lambda: open(mdir / "nope", "rb")) == errno.ENOENT
    assert errno_of(lambda: (mdir / "no dir" / "f").write_bytes(b"x")) == errno.ENOENT
    assert errno_of(lambda: os.rename(mdir / "nope", mdir / "other")) == errno.ENOENT
    assert errno_of(lambda: os.unlink(mdir / "nope")) == errno.ENOENT


def test_existing_paths_are_eexist(mdir: Path) -> None:
    (mdir / "d").mkdir()
    (mdir / "f").write_bytes(b"x")
    assert errno_of(lambda: (mdir / "d").mkdir()) == errno.EEXIST
    assert errno_of(lambda: (mdir / "f").mkdir()) == errno.EEXIST
    assert errno_of(lambda: os.open(mdir / "f", os.O_CREAT | os.O_EXCL | os.O_WRONLY)) == errno.EEXIST
    assert errno_of(lambda: _rename_noreplace(mdir / "d", mdir / "f")) == errno.EEXIST
    assert (mdir / "d").is_dir() and (mdir / "f").read_bytes() == b"x"


def test_directory_rules_are_enotempty_eisdir_enotdir_einval(mdir: Path) -> None:
    (mdir / "full").mkdir()
    (mdir / "full" / "child").write_bytes(b"c")
    (mdir / "empty").mkdir()
    (mdir / "file").write_bytes(b"f")
    assert errno_of(lambda: os.rmdir(mdir / "full")) == errno.ENOTEMPTY
    assert errno_of(lambda: os.rename(mdir / "empty", mdir / "full")) == errno.ENOTEMPTY
    assert errno_of(lambda: os.open(mdir / "empty", os.O_WRONLY)) == errno.EISDIR
    assert errno_of(lambda: os.unlink(mdir / "empty")) == errno.EISDIR
    assert errno_of(lambda: os.rename(mdir / "file", mdir / "empty")) == errno.EISDIR
    assert errno_of(lambda: os.rmdir(mdir / "file")) == errno.ENOTDIR
    assert errno_of(lambda: (mdir / "file" / "under").mkdir()) == errno.ENOTDIR
    assert errno_of(lambda: os.rename(mdir / "empty", mdir / "file")) == errno.ENOTDIR
    assert errno_of(lambda: os.rename(mdir / "full", mdir / "full" / "inside")) == errno.EINVAL
    # A rename over an empty directory replaces it, atomically.
    os.rename(mdir / "full", mdir / "empty")
    assert (mdir / "empty" / "child").read_bytes() == b"c"
    assert not (mdir / "full").exists()


def test_rename_replaces_an_existing_file_atomically(mdir: Path) -> None:
    (mdir / "new").write_bytes(b"new bytes")
    (mdir / "old").write_bytes(b"old")
    os.rename(mdir / "new", mdir / "old")
    assert (mdir / "old").read_bytes() == b"new bytes"
    assert sorted(os.listdir(mdir)) == ["old"]


def test_unsupported_objects_are_eperm_and_long_names_enametoolong(mdir: Path) -> None:
    (mdir / "f").write_bytes(b"x")
    assert errno_of(lambda: os.symlink("f", mdir / "link")) == errno.EPERM
    assert errno_of(lambda: os.link(mdir / "f", mdir / "hard")) == errno.EPERM
    assert errno_of(lambda: os.mkfifo(mdir / "fifo")) == errno.EPERM
    assert errno_of(lambda: (mdir / ("n" * 256)).write_bytes(b"x")) == errno.ENAMETOOLONG
    assert errno_of(lambda: (mdir / ("é" * 128)).mkdir()) == errno.ENAMETOOLONG  # 256 bytes in UTF-8


def test_names_that_are_not_utf8_are_eilseq(mdir: Path) -> None:
    assert errno_of(lambda: os.open(os.fsencode(mdir) + b"/bad\xff", os.O_CREAT | os.O_WRONLY)) == errno.EILSEQ


def test_read_only_mount_is_erofs(
    cluster: MiniCluster, make_mount: Callable[..., Mount], mount: Mount, mdir: Path
) -> None:
    (mdir / "f").write_bytes(b"readable")
    readonly = make_mount(cluster.url, "--read-only")
    inside = readonly.path / mdir.relative_to(mount.path)
    assert (inside / "f").read_bytes() == b"readable"
    assert errno_of(lambda: (inside / "g").write_bytes(b"x")) == errno.EROFS
    assert errno_of(lambda: open(inside / "f", "ab")) == errno.EROFS
    assert errno_of(lambda: (inside / "d").mkdir()) == errno.EROFS
    assert errno_of(lambda: os.unlink(inside / "f")) == errno.EROFS
    assert errno_of(lambda: os.truncate(inside / "f", 0)) == errno.EROFS
    assert (mdir / "f").read_bytes() == b"readable"


def test_modes_are_enforced_for_other_users_eacces(
    cluster: MiniCluster, shared_mountpoint: Path, remote_dir: str
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another user")
    shared = Mount(cluster.url, shared_mountpoint / "mnt", shared_mountpoint / "mount.log", ["--allow-other"])
    shared.start()
    try:
        directory = shared.path / remote_dir.lstrip("/")
        (directory / "private").write_bytes(b"secret")
        os.chmod(directory / "private", 0o600)
        (directory / "public").write_bytes(b"hello")
        as_nobody = {"user": "nobody", "group": "nogroup", "capture_output": True, "text": True, "timeout": 60}
        denied = subprocess.run(["cat", str(directory / "private")], **as_nobody)  # type: ignore[call-overload]
        assert denied.returncode != 0 and "Permission denied" in denied.stderr
        allowed = subprocess.run(["cat", str(directory / "public")], **as_nobody)  # type: ignore[call-overload]
        assert allowed.returncode == 0 and allowed.stdout == "hello"
        closed = directory / "closed"
        closed.mkdir(mode=0o755)  # root's, not writable by others (remote_dir itself is 0777)
        refused = subprocess.run(["touch", str(closed / "by-nobody")], **as_nobody)  # type: ignore[call-overload]
        assert refused.returncode != 0 and "Permission denied" in refused.stderr
    finally:
        shared.stop()


def _rename_noreplace(src: Path, dst: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    result = libc.renameat2(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), RENAME_NOREPLACE)
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
