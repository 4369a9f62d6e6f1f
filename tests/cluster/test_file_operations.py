"""Append, concat, attributes and content summaries through the SDK, against a real cluster."""

from __future__ import annotations

import os

import pytest

from client.protocol.errors import (
    DfsFileNotFoundError,
    DfsIsADirectoryError,
    InvalidArgumentError,
    LeaseConflictError,
)
from tests.minicluster import MiniCluster

pytestmark = pytest.mark.cluster

BLOCK = 64 * 1024  # the NameNode's minimum block size: multi-block files stay small


def test_append_adds_new_blocks_after_the_existing_data(cluster: MiniCluster, remote_dir: str) -> None:
    path = f"{remote_dir}/log"
    first, second, third = os.urandom(BLOCK + 100), os.urandom(3 * BLOCK + 7), b"tail"
    with cluster.client() as fs:
        fs.write_bytes(path, first, block_size=BLOCK)
        with fs.append(path) as out:
            out.write(second)
        with fs.open(path, "ab") as out:
            out.write(third)
        assert fs.read_bytes(path) == first + second + third
        status = fs.status(path)
        assert status.length == len(first + second + third)
        assert not status.under_construction
        located = fs.block_locations(path)
        # Each append starts a new block: the short blocks stay where they were.
        lengths = [block.length for block in located.blocks]
        assert lengths == [BLOCK, 100, BLOCK, BLOCK, BLOCK, 7, 4]
        assert [block.offset for block in located.blocks] == [sum(lengths[:i]) for i in range(len(lengths))]
        # Ranged reads across the short blocks.
        data = first + second + third
        with fs.open(path) as stream:
            for start in (BLOCK - 10, BLOCK + 95, len(first) + 3 * BLOCK - 5, len(data) - 6):
                stream.seek(start)
                assert stream.read(20) == data[start : start + 20]


def test_append_to_an_empty_file_and_an_empty_append(cluster: MiniCluster, remote_dir: str) -> None:
    path = f"{remote_dir}/empty"
    with cluster.client() as fs:
        fs.write_bytes(path, b"")
        with fs.append(path):
            pass
        assert fs.status(path).length == 0
        with fs.append(path) as out:
            out.write(b"abc")
        assert fs.read_bytes(path) == b"abc"


def test_append_errors(cluster: MiniCluster, remote_dir: str) -> None:
    with cluster.client() as fs:
        with pytest.raises(DfsFileNotFoundError):
            fs.append(f"{remote_dir}/missing")
        with pytest.raises(DfsIsADirectoryError):
            fs.append(remote_dir)
        path = f"{remote_dir}/open"
        with fs.open(path, "wb") as writer:
            writer.write(b"x")
            writer.flush()
            with pytest.raises(LeaseConflictError):
                fs.append(path)
        # The first writer's data is intact and the file can be appended to once it is closed.
        with fs.append(path) as out:
            out.write(b"y")
        assert fs.read_bytes(path) == b"xy"


def test_concat_moves_blocks_without_copying(cluster: MiniCluster, remote_dir: str) -> None:
    parts = [os.urandom(BLOCK + 1), b"", os.urandom(2 * BLOCK), os.urandom(10)]
    with cluster.client() as fs:
        target = f"{remote_dir}/target"
        fs.write_bytes(target, b"head", block_size=BLOCK)
        sources = []
        for index, part in enumerate(parts):
            source = f"{remote_dir}/part{index}"
            fs.write_bytes(source, part, block_size=BLOCK)
            sources.append(source)
        before = {block.block.block_id for s in sources for block in fs.block_locations(s).blocks}
        status = fs.concat(target, sources)
        expected = b"head" + b"".join(parts)
        assert status.length == len(expected)
        assert fs.read_bytes(target) == expected
        after = {block.block.block_id for block in fs.block_locations(target).blocks}
        assert before <= after  # the same blocks, re-pointed
        for source in sources:
            assert not fs.exists(source)
        with fs.open(target) as stream:
            stream.seek(4 + BLOCK - 3)
            assert stream.read(8) == expected[4 + BLOCK - 3 : 4 + BLOCK + 5]


def test_concat_errors_leave_everything_in_place(cluster: MiniCluster, remote_dir: str) -> None:
    with cluster.client() as fs:
        target, source = f"{remote_dir}/t", f"{remote_dir}/s"
        fs.write_bytes(target, b"t")
        fs.write_bytes(source, b"s")
        with pytest.raises(InvalidArgumentError):
            fs.concat(target, [source, source])
        with pytest.raises(InvalidArgumentError):
            fs.concat(target, [target])
        with pytest.raises(DfsFileNotFoundError):
            fs.concat(target, [source, f"{remote_dir}/missing"])
        with pytest.raises(DfsIsADirectoryError):
            fs.concat(target, [remote_dir])
        with pytest.raises(DfsFileNotFoundError):
            fs.concat(f"{remote_dir}/missing", [source])
        assert fs.read_bytes(target) == b"t"
        assert fs.read_bytes(source) == b"s"


def test_set_attributes(cluster: MiniCluster, remote_dir: str) -> None:
    path = f"{remote_dir}/f"
    with cluster.client() as fs:
        fs.write_bytes(path, b"x")
        assert fs.set_permission(path, 0o1750).mode == 0o1750
        status = fs.set_owner(path, "alice")
        assert (status.owner, status.group) == ("alice", fs.status(remote_dir).group)
        status = fs.set_owner(path, group="staff")
        assert (status.owner, status.group) == ("alice", "staff")
        status = fs.set_times(path, mtime=1_000_000, atime=2_000_000)
        assert (status.mtime, status.atime) == (1_000_000, 2_000_000)
        status = fs.set_times(path, mtime=-1, atime=3_000_000)  # -1 keeps a time, as in HDFS
        assert (status.mtime, status.atime) == (1_000_000, 3_000_000)
        with pytest.raises(InvalidArgumentError):
            fs.set_permission(path, 0o17777)
        with pytest.raises(InvalidArgumentError):
            fs.set_owner(path, "bad name")
        with pytest.raises(InvalidArgumentError):
            fs.set_owner(path)
        with pytest.raises(DfsFileNotFoundError):
            fs.set_permission(f"{remote_dir}/missing", 0o600)


def test_content_summary_and_child_counts(cluster: MiniCluster, remote_dir: str) -> None:
    with cluster.client() as fs:
        fs.mkdirs(f"{remote_dir}/a/b")
        fs.mkdirs(f"{remote_dir}/c")
        fs.write_bytes(f"{remote_dir}/a/one", b"1" * 10, replication=2)
        fs.write_bytes(f"{remote_dir}/a/b/two", b"2" * 20, replication=3)
        fs.write_bytes(f"{remote_dir}/three", b"3" * 30, replication=1)
        summary = fs.content_summary(remote_dir)
        assert (summary.length, summary.files, summary.directories) == (60, 3, 4)
        assert summary.space_consumed == 10 * 2 + 20 * 3 + 30
        single = fs.content_summary(f"{remote_dir}/a/b/two")
        assert (single.length, single.files, single.directories, single.space_consumed) == (20, 1, 0, 60)
        assert fs.status(remote_dir).children == 3
        counts = {entry.name: entry.children for entry in fs.list(remote_dir)}
        assert counts == {"a": 2, "c": 0, "three": 0}
