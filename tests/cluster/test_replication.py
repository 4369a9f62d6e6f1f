"""Replication state follows the namespace: setrep trims and adds replicas, deletes free disk space."""

from __future__ import annotations

import os

import pytest

from tests.minicluster import MiniCluster, wait_until

pytestmark = pytest.mark.cluster

BLOCK = 1024 * 1024


def test_setrep_trims_and_adds_replicas(healthy_cluster: MiniCluster, remote_dir: str) -> None:
    cluster = healthy_cluster
    path = f"{remote_dir}/elastic"
    data = os.urandom(2 * BLOCK + 1)
    with cluster.client() as fs:
        fs.write_bytes(path, data, block_size=BLOCK, replication=3)
        block_ids = [b.block.block_id for b in fs.block_locations(path).blocks]

        fs.set_replication(path, 1)
        wait_until(lambda: all(len(b.locations) == 1 for b in fs.block_locations(path).blocks), 30, "trim to 1")
        wait_until(lambda: all(len(cluster.nodes_holding(b)) == 1 for b in block_ids), 30, "extra replicas deleted")

        fs.set_replication(path, 4)
        wait_until(lambda: all(len(b.locations) == 4 for b in fs.block_locations(path).blocks), 60, "grow to 4")
        assert all(len(cluster.nodes_holding(b)) == 4 for b in block_ids)
        assert fs.read_bytes(path) == data


def test_delete_frees_replicas_on_datanodes(cluster: MiniCluster, remote_dir: str) -> None:
    with cluster.client() as fs:
        fs.write_bytes(f"{remote_dir}/gone/a", os.urandom(BLOCK + 3), block_size=BLOCK)
        fs.write_bytes(f"{remote_dir}/gone/b", os.urandom(10), block_size=BLOCK)
        block_ids = [b.block.block_id for name in "ab" for b in fs.block_locations(f"{remote_dir}/gone/{name}").blocks]
        assert all(cluster.nodes_holding(b) for b in block_ids)
        result = fs.delete(f"{remote_dir}/gone", recursive=True)
        assert (result.files, result.directories, result.blocks) == (2, 1, 3)
    wait_until(lambda: not any(cluster.nodes_holding(b) for b in block_ids), 30, "replica files to be deleted")


def test_overwrite_frees_the_old_blocks(cluster: MiniCluster, remote_dir: str) -> None:
    path = f"{remote_dir}/rewritten"
    with cluster.client() as fs:
        fs.write_bytes(path, os.urandom(BLOCK), block_size=BLOCK)
        old = fs.block_locations(path).blocks[0].block.block_id
        fs.write_bytes(path, b"short", overwrite=True)
        assert fs.read_bytes(path) == b"short"
    wait_until(lambda: not cluster.nodes_holding(old), 30, "the overwritten file's replicas to be deleted")
