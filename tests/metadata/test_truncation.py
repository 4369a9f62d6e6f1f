"""Truncate recovery on the NameNode alone (SQLite and PostgreSQL), with a clock we control.

DataNodes are played by calls: heartbeats that collect commands, and incremental or full
block reports that say what a node holds. The cluster tests (tests/cluster/test_truncate.py)
run the same story with real processes; here the corner cases are cheap and exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from client.protocol.client_namenode import (
    AddBlockRequest,
    CommittedBlock,
    CompleteRequest,
    CreateRequest,
    MkdirsRequest,
    TruncateRequest,
)
from client.protocol.common import ExtendedBlock
from client.protocol.datanode_namenode import (
    BlockReportRequest,
    HeartbeatRequest,
    IncrementalReportRequest,
    RegisterRequest,
    ReplicaState,
    ReportedReplica,
    TruncateBlockCommand,
)
from client.protocol.errors import DfsIsADirectoryError, InvalidArgumentError, LeaseConflictError
from namenode.app import prepare_database
from namenode.config import NameNodeSettings
from namenode.db.database import Database
from namenode.db.models import Block, Invalidation, Lease, PendingReplication, PendingTruncation, Replica
from namenode.leases import NAMENODE_LEASE_HOLDER
from namenode.service import NameNode
from namenode.states import BLOCK_COMPLETE, BLOCK_UNDER_RECOVERY
from tests.conftest import BACKENDS, backend_database

T = TypeVar("T")
BLOCK = 128 * 1024
NODES = ["DN-a", "DN-b", "DN-c", "DN-d"]
USER = "u"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with backend_database(request.param, f"sqlite:///{tmp_path / 'metadata.db'}") as fresh:
        assert fresh is not None
        yield fresh


class Harness:
    """A NameNode in-process and four DataNodes played by calls."""

    def __init__(self, url: str) -> None:
        self.clock = Clock()
        self.settings = NameNodeSettings(db_url=url, superuser=USER)  # acts as the superuser throughout
        self.db = Database(url)
        cluster_id = prepare_database(self.db, self.settings)
        self.db.start()
        self.nn = NameNode(self.settings, self.db, cluster_id, self.clock)
        self.nn.safemode.leave()

    def run(self, scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
        return asyncio.run(scenario())

    async def register(self, node: str) -> None:
        request = RegisterRequest(
            datanode_id=node, url=f"http://{node.lower()}:1", capacity=10**12, used=0, remaining=10**12, version="t"
        )
        await self.nn.register(request)

    async def register_all(self) -> None:
        for node in NODES:
            await self.register(node)

    async def heartbeat(self, node: str) -> list[TruncateBlockCommand]:
        answer = await self.nn.heartbeat(HeartbeatRequest(datanode_id=node, capacity=10**12, used=0, remaining=10**12))
        return [command for command in answer.commands if isinstance(command, TruncateBlockCommand)]

    async def received(self, node: str, block_id: int, gen_stamp: int, length: int) -> None:
        replica = ReportedReplica(block_id=block_id, gen_stamp=gen_stamp, length=length)
        await self.nn.incremental_report(IncrementalReportRequest(datanode_id=node, received=[replica]))

    async def write(self, path: str, sizes: list[int]) -> list[tuple[int, list[str]]]:
        """A closed file of blocks of these sizes on three nodes each; returns (block id, holders)."""
        request = CreateRequest(path=path, client_name="writer", block_size=BLOCK, replication=3)
        status = await self.nn.create(request, user=USER)
        previous: CommittedBlock | None = None
        blocks = []
        for size in sizes:
            add = AddBlockRequest(path=path, file_id=status.file_id, client_name="writer", previous=previous)
            located = await self.nn.add_block(add, user=USER)
            holders = [ref.id for ref in located.locations]
            for node in holders:
                await self.received(node, located.block.block_id, 1, size)
            previous = CommittedBlock(block_id=located.block.block_id, gen_stamp=1, length=size)
            blocks.append((located.block.block_id, holders))
        complete = CompleteRequest(path=path, file_id=status.file_id, client_name="writer", last=previous)
        assert (await self.nn.complete(complete, user=USER)).completed
        return blocks

    async def truncate(self, path: str, length: int) -> bool:
        return (await self.nn.truncate(TruncateRequest(path=path, length=length, client_name="cutter"), user=USER)).done

    def read(self, fn: Callable[[Session], T]) -> T:
        return self.db.read_sync(fn)


@pytest.fixture()
def harness(url: str) -> Iterator[Harness]:
    h = Harness(url)
    try:
        h.run(h.register_all)
        yield h
    finally:
        h.db.close()


def rows(session: Session, block_id: int) -> dict[str, tuple[int, int, str]]:
    replicas = session.scalars(select(Replica).where(Replica.block_id == block_id))
    return {r.datanode_id: (r.gen_stamp, r.length, r.state) for r in replicas}


def test_a_cut_inside_a_block_closes_the_file_and_waits_for_every_live_holder(harness: Harness) -> None:
    h = harness

    async def scenario() -> None:
        (first, _), (cut, holders), (gone, gone_holders) = await h.write("/f", [BLOCK, BLOCK, 1000])
        assert not await h.truncate("/f", BLOCK + 100)
        status = await h.nn.stat("/f", user=USER)
        assert (status.length, status.under_construction) == (BLOCK + 100, True)
        block = h.read(lambda s: s.get(Block, cut))
        assert block is not None and (block.state, block.gen_stamp, block.length) == (BLOCK_UNDER_RECOVERY, 2, 100)
        assert h.read(lambda s: s.get(Lease, status.file_id)).holder == NAMENODE_LEASE_HOLDER  # type: ignore[union-attr]
        assert h.read(lambda s: s.get(Block, gone)) is None
        deletions = h.read(lambda s: set(s.execute(select(Invalidation.datanode_id, Invalidation.block_id))))
        assert {(node, gone) for node in gone_holders} <= deletions
        # Readers are sent to the uncut replicas, asked for at the old stamp, for the kept bytes.
        located = (await h.nn.locations("/f", 0, None, user=USER)).blocks
        assert [b.block.block_id for b in located] == [first, cut]
        assert (located[1].block.gen_stamp, located[1].length, len(located[1].locations)) == (1, 100, 3)

        # Every holder is told once (until the resend window passes); the others nothing.
        expected = TruncateBlockCommand(block=ExtendedBlock(block_id=cut, gen_stamp=1), new_gen_stamp=2, new_length=100)
        for node in NODES:
            assert await h.heartbeat(node) == ([expected] if node in holders else [])
            assert await h.heartbeat(node) == []
        # The first cut replica closes the file ...
        await h.received(holders[0], cut, 2, 100)
        status = await h.nn.stat("/f", user=USER)
        assert (status.length, status.under_construction) == (BLOCK + 100, False)
        assert h.read(lambda s: s.get(Lease, status.file_id)) is None
        # ... but the monitor leaves the block alone while the others are still cutting theirs.
        await h.nn.background_pass()
        assert h.read(lambda s: s.scalars(select(PendingReplication)).all()) == []
        h.clock.now += h.nn.truncations.resend_after_s + 1
        for node in NODES:
            await h.heartbeat(node)  # still live; and the unanswered commands go again
        await h.received(holders[1], cut, 2, 100)
        assert await h.heartbeat(holders[2]) == []  # sent with the heartbeat above
        assert h.read(lambda s: s.get(PendingTruncation, cut)) is not None
        await h.received(holders[2], cut, 2, 100)
        assert h.read(lambda s: s.get(PendingTruncation, cut)) is None
        assert h.read(lambda s: rows(s, cut)) == {node: (2, 100, "finalized") for node in holders}
        assert len((await h.nn.locations("/f", 0, None, user=USER)).blocks[1].locations) == 3

    h.run(scenario)


def test_boundaries_and_refusals(harness: Harness) -> None:
    h = harness

    async def scenario() -> None:
        await h.write("/b", [BLOCK, BLOCK, 10])
        assert await h.truncate("/b", 2 * BLOCK + 10)  # same length
        assert await h.truncate("/b", BLOCK)
        assert (await h.nn.stat("/b", user=USER)).length == BLOCK
        assert await h.truncate("/b", 0)
        assert (await h.nn.locations("/b", 0, None, user=USER)).blocks == []
        with pytest.raises(InvalidArgumentError):
            await h.truncate("/b", 1)
        await h.nn.mkdirs(MkdirsRequest(path="/d"), user=USER)
        with pytest.raises(DfsIsADirectoryError):
            await h.truncate("/d", 0)
        await h.nn.create(CreateRequest(path="/open", client_name="writer"), user=USER)
        with pytest.raises(LeaseConflictError, match="open for writing by writer"):
            await h.truncate("/open", 0)
        await h.write("/r", [BLOCK])
        assert not await h.truncate("/r", 5)
        with pytest.raises(LeaseConflictError, match="being truncated"):
            await h.truncate("/r", 1)
        h.clock.now += h.settings.lease_soft_limit_s + 1  # the NameNode's lease has no soft limit
        with pytest.raises(LeaseConflictError):
            await h.nn.create(CreateRequest(path="/r", client_name="other", overwrite=True), user=USER)

    h.run(scenario)


def test_without_live_holders_the_file_waits_past_the_hard_limit_for_one_to_report(harness: Harness) -> None:
    h = harness

    async def scenario() -> None:
        [(cut, holders)] = await h.write("/w", [BLOCK])
        assert not await h.truncate("/w", 7)
        # Every node falls silent past the lease hard limit: declared dead, their replicas written off,
        # and lease recovery must not close the file at a length nobody has cut to.
        h.clock.now += h.settings.lease_hard_limit_s + 1
        await h.nn.background_pass()
        assert (await h.nn.stat("/w", user=USER)).under_construction
        assert h.read(lambda s: (s.get(Block, cut).state, rows(s, cut))) == (BLOCK_UNDER_RECOVERY, {})  # type: ignore[union-attr]
        # A holder comes back: it registers and reports the old version, which joins the recovery;
        # a replica of the old stamp with another length does not.
        back, wrong = holders[0], holders[1]
        for node in (back, wrong):
            await h.register(node)
        report = BlockReportRequest(
            datanode_id=back,
            report_id="r1",
            page=0,
            last=True,
            replicas=[ReportedReplica(block_id=cut, gen_stamp=1, length=BLOCK)],
        )
        await h.nn.block_report(report)
        bad = report.model_copy(
            update={"datanode_id": wrong, "replicas": [ReportedReplica(block_id=cut, gen_stamp=1, length=BLOCK - 1)]}
        )
        await h.nn.block_report(bad)
        assert h.read(lambda s: rows(s, cut)) == {back: (1, BLOCK, "finalized")}
        assert h.read(lambda s: s.get(Invalidation, (wrong, cut))) is not None
        [command] = await h.heartbeat(back)
        assert (command.block.gen_stamp, command.new_gen_stamp, command.new_length) == (1, 2, 7)
        # Mid-cut (an rbw replica at either stamp) a full report does not forget the replica to cut.
        rbw = report.model_copy(
            update={
                "report_id": "r2",
                "replicas": [ReportedReplica(block_id=cut, gen_stamp=2, length=7, state=ReplicaState.RBW)],
            }
        )
        await h.nn.block_report(rbw)
        assert h.read(lambda s: rows(s, cut)) == {back: (1, BLOCK, "finalized")}
        assert h.read(lambda s: s.get(Invalidation, (back, cut))) is None
        await h.received(back, cut, 2, 7)
        status = await h.nn.stat("/w", user=USER)
        assert (status.length, status.under_construction) == (7, False)
        assert h.read(lambda s: s.get(Block, cut).state) == BLOCK_COMPLETE  # type: ignore[union-attr]
        assert h.read(lambda s: s.get(PendingTruncation, cut)) is None  # nobody else left to wait for

    h.run(scenario)


def test_holders_that_never_cut_are_given_up(harness: Harness) -> None:
    h = harness

    async def scenario() -> None:
        [(cut, holders)] = await h.write("/g", [BLOCK])
        assert not await h.truncate("/g", 9)
        first, slow, silent = holders
        await h.received(first, cut, 2, 9)
        assert not (await h.nn.stat("/g", user=USER)).under_construction
        # A silent holder is not waited for once stale; a live one that never answers, until the
        # pending replication timeout, when its uncut replica is deleted.
        h.clock.now += h.settings.stale_after_s + 1
        for node in NODES:
            if node != silent:
                await h.heartbeat(node)
        await h.nn.background_pass()
        assert h.read(lambda s: s.get(PendingTruncation, cut)) is not None
        h.clock.now += h.settings.pending_replication_timeout_s
        for node in NODES:
            if node != silent:
                await h.heartbeat(node)
        await h.nn.background_pass()
        assert h.read(lambda s: s.get(PendingTruncation, cut)) is None
        assert slow not in h.read(lambda s: rows(s, cut))
        assert h.read(lambda s: s.get(Invalidation, (slow, cut))) is not None
        # The block is the monitor's again (the same pass): copies of the cut replica restore it.
        copies = h.read(lambda s: s.scalars(select(PendingReplication).where(PendingReplication.block_id == cut)).all())
        assert copies and all(c.source_id == first for c in copies)

    h.run(scenario)
