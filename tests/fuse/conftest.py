"""Fixtures for the FUSE tests: one real mount of the shared cluster per backend, and a fresh
directory on it for each test."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.minicluster import MiniCluster
from tests.mounts import Mount, require_fuse


@pytest.fixture(scope="session")
def mount(cluster: MiniCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mount]:
    require_fuse()
    base = tmp_path_factory.mktemp("mount")
    mounted = Mount(cluster.url, base / "mnt", base / "mount.log").start()
    try:
        yield mounted
    finally:
        mounted.stop()


@pytest.fixture()
def mdir(mount: Mount, request: pytest.FixtureRequest) -> Path:
    """A fresh directory on the mount for one test (its namespace path: mount.remote(mdir))."""
    name = "".join(ch if ch.isalnum() else "_" for ch in request.node.name)[:80]
    path = mount.path / "fuse" / f"{name}_{uuid.uuid4().hex[:6]}"
    path.mkdir(parents=True)
    return path


@pytest.fixture()
def make_mount(tmp_path: Path) -> Iterator[Callable[..., Mount]]:
    """Extra mounts with options of a test's own (read-only, allow_other, another cluster)."""
    require_fuse()
    started: list[Mount] = []

    def factory(namenode: str, *args: str) -> Mount:
        number = len(started)
        mounted = Mount(namenode, tmp_path / f"mnt{number}", tmp_path / f"mount{number}.log", args)
        started.append(mounted)
        return mounted.start()

    try:
        yield factory
    finally:
        for mounted in started:
            mounted.stop()


@pytest.fixture()
def shared_mountpoint() -> Iterator[Path]:
    """A mount point other local users can reach (pytest's temporary directories are 0700)."""
    base = Path(tempfile.mkdtemp(prefix="dfs-shared-", dir="/tmp"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)
