"""Pure logic of the FUSE mount: the read window, the metadata cache, stat conversion, path checks."""

from __future__ import annotations

import errno
import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client import FileStatus, FileType
from fuse_mount.attributes import stat_result, uid_of
from fuse_mount.metadata_cache import MetadataCache
from fuse_mount.mount import _unescape
from fuse_mount.operations import _check_path
from fuse_mount.reading import ReadWindow


def status(path: str, *, directory: bool = False, length: int = 0) -> FileStatus:
    return FileStatus(
        file_id=7,
        name=path.rsplit("/", 1)[-1],
        path=path,
        type=FileType.DIRECTORY if directory else FileType.FILE,
        length=length,
        replication=3,
        block_size=128 << 20,
        mode=0o750,
        owner="root",
        group="root",
        mtime=1_700_000_000_123,
        atime=1_700_000_000_000,
    )


# --- the read window -------------------------------------------------------------------------


@given(
    pieces=st.lists(st.tuples(st.integers(0, 5000), st.integers(1, 700)), min_size=1, max_size=12),
    offset=st.integers(0, 6000),
    size=st.integers(0, 2000),
)
def test_read_window_returns_only_bytes_it_holds(pieces: list[tuple[int, int]], offset: int, size: int) -> None:
    data = bytes(range(256)) * 30  # the "file": byte i is i % 256
    window = ReadWindow(capacity=1 << 20)
    for start, length in pieces:
        window.add(start, data[start : start + length])
    got = window.get(offset, size, len(data))
    if got is not None:
        assert got == data[offset : min(offset + size, len(data))]
    covered = set()
    for start, length in pieces:
        covered |= set(range(start, min(start + length, len(data))))
    wanted = set(range(offset, min(offset + size, len(data))))
    assert (got is not None) == wanted.issubset(covered)


def test_read_window_forgets_the_oldest_pieces_beyond_its_capacity() -> None:
    window = ReadWindow(capacity=100)
    window.add(0, b"a" * 60)
    window.add(60, b"b" * 60)
    assert window.get(0, 10, 1000) is None
    assert window.get(60, 60, 1000) == b"b" * 60
    assert window.get(50, 20, 1000) is None


def test_read_window_clips_at_the_end_of_the_file() -> None:
    window = ReadWindow()
    window.add(0, b"hello")
    assert window.get(3, 100, 5) == b"lo"
    assert window.get(5, 100, 5) == b""


# --- the metadata cache ------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_cache_entries_expire_after_the_ttl() -> None:
    clock = Clock()
    cache = MetadataCache(1.0, clock)
    cache.remember("/a", status("/a"))
    cache.remember("/missing", None)
    assert cache.lookup("/a")[0] and cache.lookup("/missing") == (True, None)
    clock.now = 1.5
    assert cache.lookup("/a") == (False, None)
    assert cache.lookup("/missing") == (False, None)


def test_listing_caches_each_entry_and_invalidation_reaches_parent_and_subtree() -> None:
    clock = Clock()
    cache = MetadataCache(10.0, clock)
    cache.remember_listing("/d", [status("/d/x"), status("/d/sub", directory=True)])
    cache.remember_listing("/d/sub", [status("/d/sub/y")])
    assert cache.lookup("/d/x")[0] and cache.lookup("/d/sub/y")[0]
    cache.invalidate("/d/x")
    assert cache.listing("/d") is None and not cache.lookup("/d/x")[0]
    assert cache.listing("/d/sub") is not None
    cache.invalidate("/d/sub", subtree=True)
    assert cache.listing("/d/sub") is None and not cache.lookup("/d/sub/y")[0]


def test_a_zero_ttl_caches_nothing() -> None:
    cache = MetadataCache(0.0)
    cache.remember("/a", status("/a"))
    cache.remember_listing("/", [status("/a")])
    assert cache.lookup("/a") == (False, None) and cache.listing("/") is None


# --- stat conversion and names -----------------------------------------------------------------


def test_stat_result_of_files_and_directories() -> None:
    directory = stat_result(status("/d", directory=True))
    assert stat.S_ISDIR(directory["st_mode"]) and directory["st_mode"] & 0o7777 == 0o750
    assert directory["st_nlink"] == 1
    file = stat_result(status("/f", length=1000))
    assert stat.S_ISREG(file["st_mode"])
    assert (file["st_size"], file["st_blocks"], file["st_ino"]) == (1000, 2, 7)
    assert file["st_mtime"] == 1_700_000_000_123_000_000
    overlaid = stat_result(status("/f", length=1000), length=5, mtime_ms=42)
    assert (overlaid["st_size"], overlaid["st_mtime"]) == (5, 42_000_000)


def test_owner_names_map_to_local_ids() -> None:
    assert uid_of("root") == 0
    assert uid_of("1234") == 1234


def test_paths_are_checked_with_posix_errnos() -> None:
    assert _check_path("/a/b") == "/a/b"
    with pytest.raises(OSError) as too_long:
        _check_path("/" + "x" * 256)
    assert too_long.value.errno == errno.ENAMETOOLONG
    with pytest.raises(UnicodeEncodeError):
        _check_path("/bad\udcff")


def test_mountinfo_escapes_are_undone() -> None:
    assert _unescape("/tmp/with\\040space") == "/tmp/with space"
    assert _unescape("/tmp/caf\\303\\251") == "/tmp/café"
