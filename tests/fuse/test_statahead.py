"""Statahead and in-place parent updates: fewer NameNode calls per small-file operation, same answers.

The policy and the cache are pure logic, tested with a fake clock. The operations are then
driven against the real cluster with a counting transport (what reaches the NameNode), and a
real mount shows the right statuses after statahead and another client's changes after the TTL.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from client import DFSClient, FileStatus
from client.protocol.client_namenode import FileType
from fuse_mount import operations as operations_module
from fuse_mount.metadata_cache import CONTENT_ONLY, MetadataCache, ParentChange, StataheadPolicy
from fuse_mount.operations import DfsOperations
from tests.http_counting import CountingTransport
from tests.minicluster import MiniCluster, wait_until
from tests.mounts import Mount


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def status(path: str, *, directory: bool = False, mtime: int = 1_000, children: int = 0) -> FileStatus:
    return FileStatus(
        file_id=abs(hash(path)) % 1_000_000 + 1,
        name=path.rsplit("/", 1)[-1],
        path=path,
        type=FileType.DIRECTORY if directory else FileType.FILE,
        length=0 if directory else 4096,
        replication=0 if directory else 3,
        block_size=0 if directory else 1 << 27,
        mode=0o755 if directory else 0o644,
        owner="u",
        group="g",
        mtime=mtime,
        atime=mtime,
        children=children,
    )


# --- the trigger heuristic ---------------------------------------------------------------------


def test_statahead_triggers_after_a_few_distinct_misses_in_a_row() -> None:
    """Four names of one directory that missed and existed: the fourth asks for a read-ahead,
    once (a second trigger waits for the first to finish); another directory has its own streak."""
    policy = StataheadPolicy(ttl=1.0, clock=FakeClock(), after=4)
    assert [policy.missed(f"/d/f{i}") for i in range(4)] == [False, False, False, True]
    assert not policy.missed("/e/f0")
    assert [policy.missed(f"/d/g{i}") for i in range(4)] == [False, False, False, False]  # in flight
    policy.abandoned("/d")
    assert policy.missed("/d/h0")


def test_the_same_name_missed_again_is_no_sweep() -> None:
    """A file the mount keeps changing (its entry invalidated each time) never triggers a listing."""
    policy = StataheadPolicy(ttl=1.0, clock=FakeClock(), after=2)
    assert not any(policy.missed("/d/busy") for _ in range(10))


def test_misses_far_apart_are_not_in_a_row() -> None:
    """Three misses 5 s apart are no sweep; three in quick succession are."""
    clock = FakeClock()
    policy = StataheadPolicy(ttl=1.0, clock=clock, after=3, gap=1.0)
    for name in ("a", "b", "c"):
        assert not policy.missed(f"/d/{name}")
        clock.now += 5
    assert not policy.missed("/d/d")  # with "c" before it (5 s ago): a streak of one
    assert not policy.missed("/d/e")
    assert policy.missed("/d/f")


def test_names_the_fresh_page_covered_do_not_trigger_it_again() -> None:
    """After a page of (f3 .. f9] a miss inside that range (a name created since) does not count
    while the page is fresh; names past it do (the next page of a big directory); after the TTL
    everything counts again."""
    clock = FakeClock()
    policy = StataheadPolicy(ttl=1.0, clock=clock, after=2)
    assert not policy.missed("/d/f2")
    assert policy.missed("/d/f3")
    policy.listed("/d", "f3", "f9", has_more=True)
    assert not policy.missed("/d/f5")
    assert not policy.missed("/d/f6")
    assert not policy.missed("/d/g1")
    assert policy.missed("/d/g2")
    policy.listed("/d", "g2", None, has_more=False)  # to the end of the directory
    assert not policy.missed("/d/x")
    assert not policy.missed("/d/y")
    clock.now += 2
    assert not policy.missed("/d/z")
    assert policy.missed("/d/zz")


def test_a_refused_listing_is_not_tried_again_within_the_ttl() -> None:
    clock = FakeClock()
    policy = StataheadPolicy(ttl=1.0, clock=clock, after=1)
    assert policy.missed("/private/a")
    policy.abandoned("/private", failed=True)
    assert not policy.missed("/private/b")
    clock.now += 2
    assert policy.missed("/private/c")


def test_no_statahead_without_a_cache() -> None:
    policy = StataheadPolicy(ttl=0, clock=FakeClock(), after=1)
    assert not policy.missed("/d/a")


# --- the cache ---------------------------------------------------------------------------------


def test_a_page_read_across_an_invalidation_is_dropped() -> None:
    """A page that was being read while the mount changed the namespace may hold the old state
    of what changed (a file just deleted): it is not kept."""
    cache = MetadataCache(ttl=1.0, clock=FakeClock())
    generation = cache.generation()
    cache.invalidate("/d/deleted")
    assert not cache.remember_page([status("/d/deleted")], generation)
    assert cache.lookup("/d/deleted") == (False, None)
    assert cache.remember_page([status("/d/kept")], cache.generation())
    assert cache.lookup("/d/kept") == (True, status("/d/kept"))


def test_page_entries_expire_with_the_ttl() -> None:
    clock = FakeClock()
    cache = MetadataCache(ttl=1.0, clock=clock)
    assert cache.remember_page([status("/d/a")], cache.generation())
    clock.now += 1.5
    assert cache.lookup("/d/a") == (False, None)


def test_a_parent_change_updates_the_directory_in_place_and_keeps_its_expiry() -> None:
    clock = FakeClock()
    cache = MetadataCache(ttl=1.0, clock=clock)
    cache.remember("/d", status("/d", directory=True, mtime=1_000, children=2))
    clock.now += 0.5
    cache.invalidate("/d/new", parent=ParentChange(2_000, +1))
    found, updated = cache.lookup("/d")
    assert found and updated is not None and (updated.mtime, updated.children) == (2_000, 3)
    cache.invalidate("/d/old", parent=ParentChange(1_500, -1))  # an older clock never goes back
    found, updated = cache.lookup("/d")
    assert found and updated is not None and (updated.mtime, updated.children) == (2_000, 2)
    cache.invalidate("/d/new", parent=CONTENT_ONLY)
    assert cache.lookup("/d")[0]
    clock.now += 0.6  # 1.1 s after it was fetched: the NameNode's view again
    assert cache.lookup("/d") == (False, None)


def test_an_unknown_parent_change_drops_the_directory() -> None:
    cache = MetadataCache(ttl=1.0, clock=FakeClock())
    cache.remember("/d", status("/d", directory=True))
    cache.invalidate("/d/x")
    assert cache.lookup("/d") == (False, None)


# --- the operations against the real cluster ---------------------------------------------------


def comparable(stat: dict[str, object]) -> tuple[object, ...]:
    return tuple(stat[key] for key in ("st_mode", "st_size", "st_ino", "st_mtime", "st_uid", "st_gid"))


@pytest.mark.cluster
def test_stat_of_every_file_of_a_directory_reads_it_ahead_in_pages(
    cluster: MiniCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stat sweep of 120 files costs a few lookups and one listing page per 50 names (the page
    size made small here), and every answer equals a stat of the file through a plain client."""
    monkeypatch.setattr(operations_module, "STATAHEAD_PAGE", 50)
    directory = "/fuse-statahead-sweep"
    names = [f"f{i:04d}" for i in range(120)]
    with cluster.client() as plain:
        plain.mkdirs(directory)
        for index, name in enumerate(names):
            plain.write_bytes(f"{directory}/{name}", b"x" * index)
        expected = {name: plain.status(f"{directory}/{name}") for name in names}
    transport = CountingTransport()
    with DFSClient(cluster.url, transport=transport) as fs:
        operations = DfsOperations(fs, caller=lambda: (0, 0, 0), cache_ttl=60.0)
        reference = DfsOperations(fs, caller=lambda: (0, 0, 0), cache_ttl=0)
        got = {name: operations.getattr(f"{directory}/{name}") for name in names}
        counted = transport.requests.copy()
        for name in names:
            assert got[name]["st_size"] == expected[name].length
            assert comparable(got[name]) == comparable(reference.getattr(f"{directory}/{name}"))
    assert counted["/v1/namespace/list"] == 3, counted  # pages from f0003, f0057, f0111
    assert counted["/v1/namespace/status"] <= 3 * 4, counted
    assert sum(counted.values()) < 20, counted


@pytest.mark.cluster
def test_creates_and_deletes_through_the_mount_keep_the_directory_status_right(cluster: MiniCluster) -> None:
    """After a create or an unlink the directory's status is updated in place, not asked for
    again, and it says what the NameNode says: one entry more or less, an mtime no older."""
    directory = "/fuse-statahead-parent"
    transport = CountingTransport()
    with DFSClient(cluster.url, transport=transport) as fs:
        fs.mkdirs(directory)
        operations = DfsOperations(fs, caller=lambda: (0, 0, 0), cache_ttl=60.0)
        before = operations.getattr(directory)
        handle = operations.create(f"{directory}/a", 0o644, os.O_WRONLY | os.O_CREAT)
        operations.write(f"{directory}/a", b"hello", 0, handle)
        operations.flush(f"{directory}/a", handle)
        operations.release(f"{directory}/a", handle)
        transport.requests.clear()
        after_create = operations.getattr(directory)
        assert transport.requests["/v1/namespace/status"] == 0, transport.requests
        truth = fs.status(directory)
        assert after_create["st_mtime"] >= before["st_mtime"]
        assert after_create["st_mtime"] == truth.mtime * 1_000_000  # the create's own timestamp
        assert cached_children(operations, directory) == truth.children == 1
        operations.unlink(f"{directory}/a")
        transport.requests.clear()
        after_unlink = operations.getattr(directory)
        assert transport.requests["/v1/namespace/status"] == 0, transport.requests
        assert after_unlink["st_mtime"] >= after_create["st_mtime"]
        assert cached_children(operations, directory) == fs.status(directory).children == 0
        with pytest.raises(FileNotFoundError):
            operations.getattr(f"{directory}/a")


def cached_children(operations: DfsOperations, directory: str) -> int:
    found, cached = operations.cache.lookup(directory)
    assert found and cached is not None
    return cached.children


# --- the real mount ----------------------------------------------------------------------------


@pytest.mark.cluster
def test_stat_after_statahead_is_right_and_other_clients_changes_show_after_the_ttl(
    cluster: MiniCluster, mount: Mount, mdir: Path
) -> None:
    """On the mount (TTL 1 s): a cold stat sweep (statahead fills the cache) gives each file's
    own size and mode; a file another client then deletes disappears, one it creates appears,
    and one it rewrites shows its new size, once the TTL has passed, as without statahead."""
    sizes = {f"f{i:03d}": i * 10 for i in range(40)}
    with cluster.client() as fs:
        for name, size in sizes.items():
            fs.write_bytes(mount.remote(mdir / name), b"y" * size)
        fs.set_permission(mount.remote(mdir / "f007"), 0o600)
    for name, size in sizes.items():
        info = os.stat(mdir / name)
        assert info.st_size == size, name
        assert info.st_mode & 0o777 == (0o600 if name == "f007" else 0o644), name
    with cluster.client() as fs:
        fs.delete(mount.remote(mdir / "f020"))
        fs.write_bytes(mount.remote(mdir / "f020x"), b"new")
        fs.write_bytes(mount.remote(mdir / "f030"), b"z" * 5000, overwrite=True)
    wait_until(lambda: not (mdir / "f020").exists(), 15, "the deleted file to disappear")
    wait_until(lambda: (mdir / "f020x").exists(), 15, "the new file to appear")
    wait_until(lambda: os.stat(mdir / "f030").st_size == 5000, 15, "the rewritten file's new size")
    for name, size in sizes.items():
        if name not in ("f020", "f030"):
            assert os.stat(mdir / name).st_size == size, name
    assert (mdir / "f020x").read_bytes() == b"new"
    assert (mdir / "f030").read_bytes() == b"z" * 5000
