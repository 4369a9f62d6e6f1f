"""A hung DataNode (SIGSTOP): readers and writers time out and move on, the NameNode declares it
stale then dead, and after SIGCONT it rejoins and its out-of-date replicas are discarded.

A stopped process keeps its sockets: the kernel still accepts connections and buffers bytes
for it, so only timeouts get a peer unstuck. The bounds here are the client's read timeout
(`read_timeout`, set short below), the DataNodes' `--transfer-timeout` (a stalled downstream
pipeline node) and the writer's per-segment timeout (`write_timeout`, 120 s by default, set short
below for the case where the hung node is the pipeline's first).
Each wait runs in a thread joined with a generous deadline: a liveness bound, not a speed test.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import httpx
import pytest

from client import AsyncDFSClient
from client.local_cluster import NodeProcess
from client.protocol.client_namenode import DatanodeState
from client.protocol.common import DatanodeRef
from tests.faults import read_asking_first
from tests.minicluster import MiniCluster, wait_until

pytestmark = pytest.mark.cluster

T = TypeVar("T")

BLOCK = 1024 * 1024
SEGMENT = 256 * 1024
#: Seconds a DataNode waits on a stalled pipeline peer (the shared clusters use 20).
TRANSFER_TIMEOUT_S = 3.0
#: The client's read timeout: how long a reader waits on a silent replica before the next one.
READ_TIMEOUT_S = 3.0
#: The writer's per-segment timeout when the hung node is first in its pipeline (it must outlast
#: the pipeline's own TRANSFER_TIMEOUT_S waits plus fsync on a loaded machine).
WRITE_TIMEOUT_S = 15.0
#: The liveness bound: a read or write that has not finished by then is hung.
DEADLINE_S = 90.0
DATANODE_ARGS = ["--transfer-timeout", str(TRANSFER_TIMEOUT_S)]


def bounded(work: Callable[[], T], what: str, deadline: float = DEADLINE_S) -> T:
    """Run `work` in a thread; fail if it has not returned within `deadline` seconds."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=run, name=what, daemon=True)
    worker.start()
    worker.join(timeout=deadline)
    assert not worker.is_alive(), f"{what} still hung after {deadline:.0f}s"
    if failure:
        raise failure[0]
    return outcome[0]


@contextmanager
def paused(node: NodeProcess) -> Iterator[None]:
    """SIGSTOP the node for the block; SIGCONT it afterwards, also when the test fails."""
    node.pause()
    try:
        yield
    finally:
        node.resume()


def state_of(cluster: MiniCluster, datanode_id: str) -> DatanodeState:
    return next(info.state for info in cluster.report().datanodes if info.id == datanode_id)


class StateWatcher:
    """Polls the NameNode's view of one DataNode in a thread and records each state change."""

    def __init__(self, cluster: MiniCluster) -> None:
        self.cluster = cluster
        self.datanode_id: str | None = None  # set once known; nothing is recorded before
        self.seen: list[DatanodeState] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="state-watcher", daemon=True)

    def __enter__(self) -> StateWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            if self.datanode_id is None:
                continue
            try:
                state = state_of(self.cluster, self.datanode_id)
            except httpx.HTTPError:
                continue  # a slow answer on a loaded machine: the next poll will do
            if not self.seen or self.seen[-1] is not state:
                self.seen.append(state)


def read_via(cluster: MiniCluster, path: str, first: DatanodeRef) -> bytes:
    """A read asking `first` first for every block, with a short read timeout."""
    return read_asking_first(cluster, path, first, read_timeout=READ_TIMEOUT_S)


@dataclass(frozen=True)
class Written:
    """The outcome of `write_pausing`: the stopped node, and the block it holds an old copy of."""

    victim: NodeProcess
    ref: DatanodeRef
    healthy_ids: set[str]
    block_id: int
    old_gen_stamp: int


@pytest.fixture()
def hung_cluster(make_cluster: Callable[..., MiniCluster]) -> Iterator[MiniCluster]:
    cluster = make_cluster(datanodes=3, racks=1, datanode_args=DATANODE_ARGS)
    yield cluster
    for node in cluster.datanodes:  # never leave a stopped process for the clean-up to wait on
        if node.alive:
            node.resume()


def test_reader_moves_past_a_hung_replica(hung_cluster: MiniCluster) -> None:
    """A read whose first replica of every block is on a stopped DataNode still returns the
    right bytes, in bounded time, from the other replicas."""
    cluster = hung_cluster
    data = os.urandom(2 * BLOCK + 1234)
    with cluster.client() as fs:
        fs.write_bytes("/read-me", data, replication=3, block_size=BLOCK)
        (first, *_) = fs.block_locations("/read-me").blocks[0].locations
    victim = cluster.node_by_id(first.id)
    with paused(victim):
        got = bounded(lambda: read_via(cluster, "/read-me", first), "a read via the hung node")
    assert got == data


def write_pausing(
    cluster: MiniCluster, path: str, data: bytes, position: int, stopped: list[NodeProcess], watcher: StateWatcher
) -> Written:
    """Write `data` (one block, several segments) at replication 3, stopping the pipeline node at
    `position` after the first segment (and adding it to `stopped`, left stopped)."""

    async def scenario() -> Written:
        async with AsyncDFSClient(cluster.url, segment_size=SEGMENT, write_timeout=WRITE_TIMEOUT_S) as fs:
            stream = await fs.create(path, block_size=4 * BLOCK, replication=3)
            await stream.write(data[:BLOCK])
            await stream.write(data[BLOCK : 2 * BLOCK])  # waits for the first segment's acks
            block = stream._block  # the block being written right now
            assert block is not None and len(block.locations) == 3
            victim_ref = block.locations[position]
            victim_id = victim_ref.id
            victim = cluster.node_by_id(victim_id)
            watcher.datanode_id = victim_id
            loop = asyncio.get_running_loop()  # off the loop, which keeps the segment in flight going
            await loop.run_in_executor(None, wait_until, lambda: bool(watcher.seen), 30, "the watcher to see it")
            victim.pause()
            stopped.append(victim)
            await stream.write(data[2 * BLOCK :])
            await stream.close()
            healthy = {node.id for node in block.locations} - {victim_id}
            return Written(victim, victim_ref, healthy, block.block.block_id, block.block.gen_stamp)

    return asyncio.run(scenario())


@pytest.mark.parametrize("position", [0, 2], ids=["first", "last"])
def test_writer_moves_past_a_hung_pipeline_node_which_rejoins_without_its_stale_replica(
    hung_cluster: MiniCluster, position: int
) -> None:
    """A writer whose pipeline node stops mid-block completes the file on the others in bounded
    time; the NameNode marks the node stale, then dead; after SIGCONT it is live again, and its
    replica from before the pipeline moved on (an older generation stamp) is deleted, never served."""
    cluster = hung_cluster
    data = os.urandom(3 * BLOCK + 4321)
    stopped: list[NodeProcess] = []
    with StateWatcher(cluster) as watcher:
        try:
            written = bounded(
                lambda: write_pausing(cluster, "/written", data, position, stopped, watcher),
                "a write via the hung node",
            )
            with cluster.client() as fs:
                assert fs.status("/written").length == len(data)
                (located,) = fs.block_locations("/written").blocks
                assert located.block.gen_stamp > written.old_gen_stamp
                # Exactly the hung node was dropped: the healthy ones were not blamed for its silence.
                assert {node.id for node in located.locations} == written.healthy_ids
            stale_meta = f"blk_{written.block_id}_{written.old_gen_stamp}.meta"
            on_disk = cluster.data_dir(written.victim) / "current"
            assert list(on_disk.rglob(stale_meta)), "the hung node should hold the block at its old generation"
            wait_until(lambda: watcher.seen[-1:] == [DatanodeState.DEAD], 30, "the node to be dead")
        finally:
            for node in stopped:
                node.resume()
        # At once, while it may still hold its old copy: the rejoined node serves current bytes or none.
        assert bounded(lambda: read_via(cluster, "/written", written.ref), "a read via the resumed node") == data
        wait_until(lambda: watcher.seen[-1:] == [DatanodeState.LIVE], 30, "the node to rejoin")
    assert watcher.seen == [DatanodeState.LIVE, DatanodeState.STALE, DatanodeState.DEAD, DatanodeState.LIVE]
    wait_until(lambda: not list(on_disk.rglob(stale_meta)), 30, "the stale replica to be deleted")
    # Every replica is current once the block is back to three: none was damaged or lost track of
    # by a pipeline the hung node left half-done (e.g. a stalled upstream request on its peers).
    with cluster.client() as fs:
        wait_until(lambda: len(fs.block_locations("/written").blocks[0].locations) == 3, 60, "three replicas again")
        (located,) = fs.block_locations("/written").blocks
    assert written.ref.id in {holder.id for holder in located.locations}
    for holder in located.locations:
        assert bounded(partial(read_via, cluster, "/written", holder), f"a read via {holder.url}") == data
    for node in cluster.datanodes:
        metas = [path.name for path in (cluster.data_dir(node) / "current").rglob(f"blk_{written.block_id}_*.meta")]
        assert metas == [f"blk_{written.block_id}_{located.block.gen_stamp}.meta"], (node.name, metas)
