"""Cutting a replica in place (the DataNode half of truncate) on a real directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client.protocol.block_format import chunk_digests, meta_file_name
from client.protocol.common import ExtendedBlock
from client.protocol.datanode_namenode import ReplicaState, TruncateBlockCommand
from client.protocol.errors import ChecksumMismatchError, InvalidArgumentError, StaleGenerationError
from datanode.block_truncator import cut_replica
from datanode.storage.block_store import BlockStore, ReplicaInfo
from datanode.storage.replica_reader import ReplicaReader
from datanode.storage.replica_writer import ReplicaWriter

CHUNK = 512
BLOCK_ID = 42


def stored(tmp_path: Path, data: bytes, gen_stamp: int = 1) -> BlockStore:
    store = BlockStore(tmp_path)
    store.open()
    writer = ReplicaWriter.create(store, BLOCK_ID, gen_stamp, CHUNK)
    writer.write_packet(0, memoryview(data), memoryview(chunk_digests(data, CHUNK)))
    writer.finalize()
    return store


def command(length: int, old: int = 1, new: int = 2) -> TruncateBlockCommand:
    return TruncateBlockCommand(
        block=ExtendedBlock(block_id=BLOCK_ID, gen_stamp=old), new_gen_stamp=new, new_length=length
    )


def read_all(replica: ReplicaInfo) -> bytes:
    """Every byte, each chunk verified against the meta file."""
    reader = ReplicaReader(replica)
    try:
        plan = reader.plan(0, None)
        return b"".join(reader.read_packet(start, size)[1] for start, size in reader.packets(plan, 4 * CHUNK))
    finally:
        reader.close()


@given(data=st.binary(min_size=1, max_size=5 * CHUNK + 7), cut=st.floats(0, 1))
def test_a_cut_replica_holds_the_prefix_with_valid_checksums(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, cut: float
) -> None:
    store = stored(tmp_path_factory.mktemp("store"), data)
    length = int(len(data) * cut)
    replica = cut_replica(store, command(length))
    assert (replica.state, replica.gen_stamp, replica.length) == (ReplicaState.FINALIZED, 2, length)
    assert read_all(replica) == data[:length]
    assert replica.meta_path.name == meta_file_name(BLOCK_ID, 2)
    assert not (replica.directory / meta_file_name(BLOCK_ID, 1)).exists()
    # Restarting the DataNode finds the same replica.
    reopened = BlockStore(store.data_dir)
    reopened.open()
    assert reopened.get(BLOCK_ID) == replica


def test_a_repeated_command_only_returns_the_cut_replica(tmp_path: Path) -> None:
    store = stored(tmp_path, os.urandom(3 * CHUNK))
    first = cut_replica(store, command(CHUNK + 10))
    assert cut_replica(store, command(CHUNK + 10)) == first


def test_a_cut_interrupted_by_a_crash_is_redone(tmp_path: Path) -> None:
    data = os.urandom(3 * CHUNK + 100)
    store = stored(tmp_path, data)
    replica = store.get(BLOCK_ID)
    assert replica is not None
    # Crash after the replica went back to rbw and its meta file took the new stamp.
    rbw = store.unfinalize(replica)
    os.replace(rbw.meta_path, rbw.directory / meta_file_name(BLOCK_ID, 2))
    restarted = BlockStore(tmp_path)
    restarted.open()
    leftover = restarted.get(BLOCK_ID)
    assert leftover is not None and (leftover.state, leftover.gen_stamp) == (ReplicaState.RBW, 2)
    cut = cut_replica(restarted, command(2 * CHUNK + 1))
    assert read_all(cut) == data[: 2 * CHUNK + 1]


def test_rot_in_the_chunk_to_cut_is_refused_not_blessed(tmp_path: Path) -> None:
    data = os.urandom(3 * CHUNK)
    store = stored(tmp_path, data)
    replica = store.get(BLOCK_ID)
    assert replica is not None
    with replica.data_path.open("r+b") as handle:  # flip a byte the cut keeps, in the chunk it cuts
        handle.seek(CHUNK + 3)
        handle.write(bytes([data[CHUNK + 3] ^ 0xFF]))
    with pytest.raises(ChecksumMismatchError):
        cut_replica(store, command(CHUNK + 10))
    assert store.get(BLOCK_ID) == replica  # untouched: still the finalised old version


def test_other_versions_and_impossible_lengths_are_refused(tmp_path: Path) -> None:
    store = stored(tmp_path, os.urandom(2 * CHUNK), gen_stamp=5)
    with pytest.raises(StaleGenerationError):
        cut_replica(store, command(10, old=3, new=4))
    with pytest.raises(InvalidArgumentError):
        cut_replica(store, command(3 * CHUNK, old=5, new=6))
