"""ReplicaWriter on a real directory: direct (O_DIRECT) and buffered writes give the same replica,
whatever the packets' alignment, and a file system without O_DIRECT falls back to the page cache."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from client.protocol.block_format import META_HEADER_SIZE, chunk_digests
from datanode.storage import replica_writer
from datanode.storage.block_store import BlockStore
from datanode.storage.replica_writer import DIRECT_ALIGNMENT, ReplicaWriter

CHUNK = 4096
MIB = 1024 * 1024


def store_at(path: Path, *, direct_io: bool) -> BlockStore:
    store = BlockStore(path, direct_io=direct_io)
    store.open()
    return store


def write_in_packets(store: BlockStore, block_id: int, data: bytes, sizes: list[int]) -> ReplicaWriter:
    writer = ReplicaWriter.create(store, block_id, 1, CHUNK)
    offset = 0
    for size in sizes:
        piece = data[offset : offset + size]
        writer.write_packet(offset, memoryview(piece), memoryview(chunk_digests(piece, CHUNK)))
        offset += size
    return writer


# Aligned 1 MiB packets (the streaming case); an unaligned tail; an unaligned packet that leaves
# every later one unaligned; a packet shorter than a page; and one that realigns after those.
PACKETINGS = [
    [MIB, MIB, MIB],
    [MIB, MIB, 777],
    [MIB, 1000, MIB, MIB],
    [100, 3996, MIB],
    [MIB, 2048, 2048, MIB + 5],
]


@pytest.mark.parametrize("sizes", PACKETINGS, ids=lambda sizes: "+".join(map(str, sizes)))
def test_direct_and_buffered_writes_give_the_same_replica(tmp_path: Path, sizes: list[int]) -> None:
    data = os.urandom(sum(sizes))
    replicas = []
    for direct_io in (True, False):
        store = store_at(tmp_path / str(direct_io), direct_io=direct_io)
        replicas.append(write_in_packets(store, 7, data, sizes).finalize())
    direct, buffered = replicas
    assert direct.data_path.read_bytes() == data == buffered.data_path.read_bytes()
    assert direct.meta_path.read_bytes() == buffered.meta_path.read_bytes()
    assert direct.meta_path.read_bytes()[META_HEADER_SIZE:] == chunk_digests(data, CHUNK)
    assert direct.length == len(data)


def test_the_direct_descriptor_is_used_where_the_file_system_supports_it(tmp_path: Path) -> None:
    """Guards the optimisation itself: on this machine's disk the data goes through O_DIRECT."""
    probe = tmp_path / "probe"
    probe.touch()
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_DIRECT))
    except OSError as exc:
        pytest.skip(f"{tmp_path} has no O_DIRECT: {exc}")
    writer = write_in_packets(store_at(tmp_path, direct_io=True), 9, os.urandom(MIB), [MIB])
    assert writer._direct_fd >= 0
    writer.close()
    off = write_in_packets(store_at(tmp_path / "off", direct_io=False), 9, os.urandom(MIB), [MIB])
    assert off._direct_fd < 0
    off.close()


def test_a_file_system_without_o_direct_falls_back_to_buffered_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def refusing_direct(path: str, flags: int, *args: int) -> int:
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refusing_direct)
    data = os.urandom(2 * MIB + 3)
    writer = write_in_packets(store_at(tmp_path, direct_io=True), 3, data, [MIB, MIB, 3])
    assert writer._direct_fd < 0
    assert writer.finalize().data_path.read_bytes() == data


def test_a_short_direct_write_finishes_through_the_page_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A direct write that stops part-way (a disk filling up) leaves an unaligned rest: it is written
    (or fails with the disk's reason) through the buffered descriptor, never silently dropped."""
    real_pwrite = os.pwrite
    direct_fds: set[int] = set()
    real_open_direct = replica_writer._open_direct

    def remember_direct(path: str) -> int:
        fd = real_open_direct(path)
        direct_fds.add(fd)
        return fd

    def short_direct(fd: int, data: memoryview, offset: int) -> int:
        if fd in direct_fds:
            return real_pwrite(fd, data[:DIRECT_ALIGNMENT], offset)
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(replica_writer, "_open_direct", remember_direct)
    monkeypatch.setattr(os, "pwrite", short_direct)
    data = os.urandom(MIB + 10)
    writer = write_in_packets(store_at(tmp_path, direct_io=True), 5, data, [MIB + 10])
    assert writer.finalize().data_path.read_bytes() == data
