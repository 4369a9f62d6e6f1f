"""Lease expiry with real processes: a writer SIGKILLed while holding its lease.

The writer is a child process that reports, once the SDK has finished its blocks and shipped part
of another, which blocks are finished and where the unfinished one is being written. After the
hard limit (8 s in test clusters) the NameNode must close the file at exactly the finished blocks
(docs/guarantees.md: "keeps the blocks it had finished; bytes of its unfinished last block are
dropped"), have the unfinished block's replicas deleted, and the file must be writable again.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from client.protocol.block_format import block_file_name
from tests.minicluster import MiniCluster, wait_until

pytestmark = pytest.mark.cluster

BLOCK = 2 * 1024 * 1024
#: One 1 MiB packet per segment: a partial block ships (and reaches the DataNodes' rbw/) once it holds 1 MiB.
SEGMENT = 1024 * 1024
TAIL = SEGMENT + SEGMENT // 2  # one segment acknowledged by the pipeline, half a segment only in the writer

WRITER = textwrap.dedent(
    """
    import asyncio, json, random, sys
    from client import AsyncDFSClient

    async def main():
        url, path, blocks, tail, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        block_size, segment = int(sys.argv[6]), int(sys.argv[7])
        data = random.Random(seed).randbytes(blocks * block_size + tail)
        fs = AsyncDFSClient(url, segment_size=segment)
        stream = await fs.create(path, block_size=block_size, replication=3)
        finished = []
        for index in range(blocks):
            await stream.write(data[index * block_size : (index + 1) * block_size])
            await stream._wait_inflight()  # the final segment is acknowledged: finalised on the pipeline
            finished.append(stream._committed.block_id)
        await stream.write(data[blocks * block_size :])
        await stream._wait_inflight()  # what shipped of the tail sits in rbw/ on every pipeline node
        tail_block = stream._block
        report = {"finished": finished, "unfinished": None}
        if tail_block is not None:
            report["unfinished"] = {"block_id": tail_block.block.block_id,
                                    "locations": [node.id for node in tail_block.locations]}
        print(json.dumps(report), flush=True)
        await asyncio.sleep(3600)  # holding the lease (renewed in the background) until killed

    asyncio.run(main())
    """
)


def write_and_die(cluster: MiniCluster, path: str, blocks: int, tail: int, seed: int) -> tuple[bytes, dict[str, Any]]:
    """Run a writer in a child process, SIGKILL it once it reports; (what it wrote, its report)."""
    args = [cluster.url, path, str(blocks), str(tail), str(seed), str(BLOCK), str(SEGMENT)]
    writer = subprocess.Popen([sys.executable, "-c", WRITER, *args], stdout=subprocess.PIPE)
    try:
        assert writer.stdout is not None
        line = writer.stdout.readline()
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
    assert line, "the writer died before reporting"
    return random.Random(seed).randbytes(blocks * BLOCK + tail), json.loads(line)


def replica_files(cluster: MiniCluster, block_id: int) -> list[str]:
    """Every data or meta file of a block on any DataNode (rbw/ or finalized/)."""
    name = block_file_name(block_id)
    return [
        str(found)
        for node in cluster.datanodes
        for pattern in (name, f"{name}_*.meta")
        for found in (cluster.data_dir(node) / "current").rglob(pattern)
    ]


def assert_in_rbw(cluster: MiniCluster, unfinished: dict[str, Any]) -> None:
    """The shipped part of the unfinished block is on every pipeline node's disk, in rbw/ (the hard
    limit is seconds away, so recovery cannot have deleted it yet)."""
    for datanode_id in unfinished["locations"]:
        node = cluster.node_by_id(datanode_id)
        rbw = cluster.data_dir(node) / "current" / "rbw" / block_file_name(unfinished["block_id"])
        assert rbw.exists() and rbw.stat().st_size == SEGMENT, f"{rbw} does not hold the shipped segment"


def assert_dropped(cluster: MiniCluster, unfinished: dict[str, Any]) -> None:
    """Recovery deletes every file of the unfinished block from every DataNode."""
    block_id = unfinished["block_id"]
    wait_until(lambda: not replica_files(cluster, block_id), 60, f"the replicas of unfinished block {block_id} deleted")


def assert_writable_again(cluster: MiniCluster, path: str, kept: bytes) -> None:
    """Recovery left a closed file: it can be appended to, then overwritten, and reads back exactly."""
    extra, replacement = os.urandom(BLOCK + 12345), os.urandom(3 * SEGMENT + 1)
    with cluster.client() as fs:
        with fs.append(path) as stream:
            stream.write(extra)
        assert fs.status(path).length == len(kept) + len(extra)
        assert fs.read_bytes(path) == kept + extra
        fs.write_bytes(path, replacement, overwrite=True, block_size=BLOCK)
        assert fs.read_bytes(path) == replacement
        assert not fs.status(path).under_construction


def test_a_killed_writer_keeps_exactly_its_finished_blocks(healthy_cluster: MiniCluster, remote_dir: str) -> None:
    """SIGKILL after three finished blocks and part of a fourth: past the hard limit the file is closed
    at exactly the bytes of the three blocks, byte for byte, the fourth block's replicas are deleted
    from the DataNodes, and the file takes an append and an overwrite."""
    cluster, path, blocks = healthy_cluster, f"{remote_dir}/orphan", 3
    data, report = write_and_die(cluster, path, blocks, TAIL, seed=9)
    assert len(report["finished"]) == blocks and report["unfinished"] is not None
    assert_in_rbw(cluster, report["unfinished"])
    with cluster.client() as fs:
        assert fs.status(path).under_construction  # the dead writer's lease still holds it
        wait_until(lambda: not fs.status(path).under_construction, 60, "lease recovery after the hard limit")
        assert fs.status(path).length == blocks * BLOCK
        assert [b.block.block_id for b in fs.block_locations(path).blocks] == report["finished"]
        assert fs.read_bytes(path) == data[: blocks * BLOCK]
    assert_dropped(cluster, report["unfinished"])
    assert_writable_again(cluster, path, data[: blocks * BLOCK])


@pytest.mark.parametrize("tail", [TAIL, 0], ids=["part-of-a-block-shipped", "nothing-written"])
def test_a_writer_killed_before_any_block_finished_leaves_an_empty_file(
    healthy_cluster: MiniCluster, remote_dir: str, tail: int
) -> None:
    """SIGKILL before the first block finished: the file is recovered empty (it stays, closed, with no
    blocks, as docs/guarantees.md promises for the finished-blocks rule), what had reached the
    DataNodes is deleted, and the file can be written again."""
    cluster, path = healthy_cluster, f"{remote_dir}/stillborn"
    _, report = write_and_die(cluster, path, 0, tail, seed=10)
    assert report["finished"] == [] and (report["unfinished"] is not None) == (tail > 0)
    if report["unfinished"] is not None:
        assert_in_rbw(cluster, report["unfinished"])
    with cluster.client() as fs:
        assert fs.status(path).under_construction
        wait_until(lambda: not fs.status(path).under_construction, 60, "lease recovery after the hard limit")
        assert fs.status(path).length == 0
        assert fs.block_locations(path).blocks == []
        assert fs.read_bytes(path) == b""
    if report["unfinished"] is not None:
        assert_dropped(cluster, report["unfinished"])
    assert_writable_again(cluster, path, b"")
