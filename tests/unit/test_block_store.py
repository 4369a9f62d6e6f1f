"""BlockStore on a real directory: crash-interrupted moves, failed creates leave nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from client.protocol.datanode_namenode import ReplicaState
from client.protocol.errors import InvalidArgumentError
from datanode.storage.block_store import BlockStore
from datanode.storage.replica_writer import ReplicaWriter

CHUNK = 64 * 1024


def written_replica(store: BlockStore, block_id: int, data: bytes) -> ReplicaWriter:
    from client.protocol.block_format import chunk_digests

    writer = ReplicaWriter.create(store, block_id, 1, CHUNK)
    writer.write_packet(0, memoryview(data), memoryview(chunk_digests(data, CHUNK)))
    return writer


@pytest.mark.parametrize("interrupted", ["finalize", "unfinalize"])
def test_a_move_interrupted_between_its_renames_is_completed_on_restart(tmp_path: Path, interrupted: str) -> None:
    store = BlockStore(tmp_path)
    store.open()
    data = os.urandom(3 * CHUNK + 5)
    replica = written_replica(store, 42, data).finalize()
    if interrupted == "unfinalize":
        # Crash after the data file moved back to rbw/ but before its meta followed.
        os.replace(replica.data_path, store.rbw_dir / replica.data_path.name)
        expected_state = ReplicaState.FINALIZED
    else:
        # Crash after the data file reached finalized/ but before its meta followed: put the meta back in rbw/.
        os.replace(replica.meta_path, store.rbw_dir / replica.meta_path.name)
        expected_state = ReplicaState.RBW
    reopened = BlockStore(tmp_path)
    reopened.open()
    recovered = reopened.get(42)
    assert recovered is not None
    assert recovered.state is expected_state
    assert recovered.length == len(data)
    assert recovered.data_path.read_bytes() == data


def test_a_refused_create_leaves_no_files(tmp_path: Path) -> None:
    store = BlockStore(tmp_path)
    store.open()
    with pytest.raises(ValueError, match="power of two"):
        ReplicaWriter.create(store, 7, 1, 1000)  # the wire header refuses this too (400)
    assert store.get(7) is None
    assert list(store.rbw_dir.iterdir()) == []


def test_reopen_with_other_chunk_size_is_refused_without_leaking(tmp_path: Path) -> None:
    store = BlockStore(tmp_path)
    store.open()
    written_replica(store, 9, b"x" * 100).close()
    open_fds = len(os.listdir("/proc/self/fd"))
    with pytest.raises(InvalidArgumentError):
        ReplicaWriter.reopen(store, 9, 1, 2 * CHUNK, 100, accepted_gen_stamps={1})
    assert len(os.listdir("/proc/self/fd")) == open_fds


def test_restart_never_pairs_a_lone_meta_with_another_replicas_data(tmp_path: Path) -> None:
    """A lone meta file in finalized/ must not take the data file of a live rbw replica of the same block."""
    store = BlockStore(tmp_path)
    store.open()
    old = written_replica(store, 5, b"old" * 100).finalize()
    old.data_path.unlink()  # as if a deletion had been interrupted (old versions removed data first)
    store.forget(5)
    newer = written_replica(store, 5, b"new data")
    newer.close()
    reopened = BlockStore(tmp_path)
    reopened.open()
    replica = reopened.get(5)
    assert replica is not None and replica.state is ReplicaState.RBW
    assert replica.data_path.read_bytes() == b"new data"


def test_a_writer_superseded_by_a_pipeline_recovery_can_neither_write_nor_record(tmp_path: Path) -> None:
    """A request stuck behind a hung upstream node outlives the recovery that reopened its replica
    under a new generation stamp: when it wakes, it must not write, nor put its stale stamp and length
    back in the map (which would hide the recovered replica)."""
    from client.protocol.block_format import chunk_digests
    from client.protocol.errors import StaleGenerationError

    store = BlockStore(tmp_path)
    store.open()
    data = os.urandom(2 * CHUNK)
    stale = written_replica(store, 5, data[:CHUNK])
    recovering = ReplicaWriter.reopen(store, 5, 2, CHUNK, 0, accepted_gen_stamps={1, 2})
    late = memoryview(data[CHUNK:])
    with pytest.raises(StaleGenerationError):
        stale.write_packet(CHUNK, late, memoryview(chunk_digests(late, CHUNK)))
    stale.close()
    current = store.get(5)
    assert current is not None and current.gen_stamp == 2
    recovering.write_packet(0, memoryview(data), memoryview(chunk_digests(data, CHUNK)))
    finalized = recovering.finalize()
    assert (finalized.gen_stamp, finalized.length, finalized.state) == (2, len(data), ReplicaState.FINALIZED)
    assert finalized.data_path.read_bytes() == data
    assert store.get(5) == finalized
