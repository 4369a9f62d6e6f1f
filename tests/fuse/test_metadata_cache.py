"""Listing a big directory costs a few NameNode calls, not one per entry (10,000 a page).

The kernel answers `ls -l` with one readdir and then a lookup (getattr) per name; these
tests make exactly those calls on the operations against the real cluster and count the
requests that reach the NameNode, then run `ls -l` on the real mount.
"""

from __future__ import annotations

import asyncio
import os
import subprocess

import pytest

from client import AsyncDFSClient, DFSClient
from fuse_mount.operations import DfsOperations
from tests.http_counting import CountingTransport
from tests.minicluster import MiniCluster
from tests.mounts import Mount

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module", params=[2_000, pytest.param(10_000, marks=pytest.mark.slow)])
def big_directory(cluster: MiniCluster, request: pytest.FixtureRequest) -> tuple[str, int]:
    """A directory of many entries (10,000 only with -m slow: making them takes ~90 s here)."""
    entries: int = request.param
    path = f"/fuse-big-directory-{entries}"

    async def make() -> None:
        async with AsyncDFSClient(cluster.url) as fs:
            await fs.mkdirs(path)
            for start in range(0, entries, 200):
                await asyncio.gather(*(fs.mkdirs(f"{path}/e{i:05d}") for i in range(start, start + 200)))

    asyncio.run(make())
    return path, entries


def test_readdir_then_stat_of_every_entry_is_a_few_namenode_calls(
    cluster: MiniCluster, big_directory: tuple[str, int]
) -> None:
    path, entries = big_directory
    transport = CountingTransport()
    with DFSClient(cluster.url, transport=transport) as fs:
        operations = DfsOperations(fs, caller=lambda: (0, 0, 0), cache_ttl=30.0)
        names = [entry if isinstance(entry, str) else entry[0] for entry in operations.readdir(path, 0)]
        assert names[2:] == [f"e{i:05d}" for i in range(entries)]
        for name in names[2:]:
            assert operations.getattr(f"{path}/{name}")["st_mode"] & 0o040000
    assert sum(transport.requests.values()) <= 3, transport.requests


def test_changes_through_the_mount_invalidate_the_cache(cluster: MiniCluster) -> None:
    transport = CountingTransport()
    with DFSClient(cluster.url, transport=transport) as fs:
        operations = DfsOperations(fs, caller=lambda: (0, 0, 0), cache_ttl=30.0)
        fs.mkdirs("/fuse-cache-invalidation")
        assert operations.readdir("/fuse-cache-invalidation", 0) == [".", ".."]
        operations.mkdir("/fuse-cache-invalidation/new", 0o755)
        assert [entry[0] for entry in operations.readdir("/fuse-cache-invalidation", 0)[2:]] == ["new"]
        operations.rename("/fuse-cache-invalidation/new", "/fuse-cache-invalidation/moved")
        with pytest.raises(FileNotFoundError):
            operations.getattr("/fuse-cache-invalidation/new")
        assert operations.getattr("/fuse-cache-invalidation/moved")["st_mode"] & 0o040000
        operations.rmdir("/fuse-cache-invalidation/moved")
        with pytest.raises(FileNotFoundError):
            operations.getattr("/fuse-cache-invalidation/moved")


def test_ls_l_of_a_big_directory_on_the_mount(mount: Mount, big_directory: tuple[str, int]) -> None:
    path, entries = big_directory
    local = mount.path / path.lstrip("/")
    listing = subprocess.run(["ls", "-l", str(local)], capture_output=True, text=True, check=True)
    lines = listing.stdout.splitlines()
    assert lines[0].startswith("total")
    assert len(lines) == entries + 1
    assert len(os.listdir(local)) == entries
