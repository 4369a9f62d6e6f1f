"""Replica receipts on the NameNode alone (SQLite and PostgreSQL): a commit carrying the DataNodes'
signed receipts records their replicas in its own transaction, and nothing else does.

DataNodes are played by calls (register, incremental reports); receipts are signed here with the
cluster secret the NameNode is given, exactly as a DataNode signs them (datanode/block_receiver.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from client.protocol.client_namenode import (
    AddBlockRequest,
    CommittedBlock,
    CompleteRequest,
    CreateRequest,
    LocatedBlock,
    ReplicaReceipt,
)
from client.protocol.datanode_namenode import IncrementalReportRequest, RegisterRequest, ReportedReplica
from client.protocol.security import replica_receipt_key, sign_receipt
from namenode.db.models import Block, Replica
from namenode.service import NameNode
from namenode.states import BLOCK_COMPLETE, REPLICA_CORRUPT, REPLICA_FINALIZED
from tests.conftest import BACKENDS
from tests.metadata.conftest import in_process_namenode

SECRET = "receipts-test-secret-" + "s" * 32
KEY = replica_receipt_key(SECRET)
NODES = ["DN-a", "DN-b", "DN-c"]
USER = "u"


@pytest.fixture(params=BACKENDS)
def nn(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NameNode]:
    with in_process_namenode(request.param, tmp_path, USER, cluster_secret=SecretStr(SECRET)) as namenode:
        for node in NODES:
            register = RegisterRequest(
                datanode_id=node,
                url=f"http://{node.lower()}:1",
                capacity=10**12,
                used=0,
                remaining=10**12,
                version="t",
            )
            asyncio.run(namenode.register(register))
        yield namenode


def receipt(node: str, located: LocatedBlock, length: int, key: bytes = KEY) -> ReplicaReceipt:
    block = located.block
    return ReplicaReceipt(
        datanode_id=node, length=length, receipt=sign_receipt(key, node, block.block_id, block.gen_stamp, length)
    )


async def start(nn: NameNode, path: str, previous: CommittedBlock | None = None) -> tuple[int, LocatedBlock]:
    status = await nn.create(CreateRequest(path=path, client_name="w", replication=3), user=USER)
    located = await nn.add_block(AddBlockRequest(path=path, file_id=status.file_id, client_name="w"), user=USER)
    return status.file_id, located


async def complete(nn: NameNode, path: str, file_id: int, last: CommittedBlock) -> bool:
    request = CompleteRequest(path=path, file_id=file_id, client_name="w", last=last)
    answer = await nn.complete(request, user=USER)
    assert answer.completed == (answer.status is not None)  # a closed file's status comes with the answer
    return answer.completed


def replicas(nn: NameNode, block_id: int) -> dict[str, tuple[int, int, str]]:
    def query(session: Session) -> dict[str, tuple[int, int, str]]:
        rows = session.scalars(select(Replica).where(Replica.block_id == block_id))
        return {r.datanode_id: (r.gen_stamp, r.length, r.state) for r in rows}

    return nn.db.read_sync(query)


def test_a_commit_with_receipts_completes_the_file_before_any_report(nn: NameNode) -> None:
    async def scenario() -> None:
        file_id, located = await start(nn, "/f")
        block = located.block
        vouched = [receipt(ref.id, located, 4096) for ref in located.locations]
        last = CommittedBlock(block_id=block.block_id, gen_stamp=block.gen_stamp, length=4096, replicas=vouched)
        assert await complete(nn, "/f", file_id, last)
        # A repeated complete (a lost answer) says the same, with the closed file's status.
        again = await nn.complete(CompleteRequest(path="/f", file_id=file_id, client_name="w", last=last), user=USER)
        assert again.completed and again.status is not None
        assert (again.status.length, again.status.under_construction, again.status.path) == (4096, False, "/f")
        held = replicas(nn, block.block_id)
        assert held == {ref.id: (block.gen_stamp, 4096, REPLICA_FINALIZED) for ref in located.locations}
        state = nn.db.read_sync(lambda s: s.get(Block, block.block_id).state)  # type: ignore[union-attr]
        assert state == BLOCK_COMPLETE
        where = (await nn.locations("/f", 0, None, user=USER)).blocks[0].locations
        assert {ref.id for ref in where} == {ref.id for ref in located.locations}
        # The nodes' own reports arrive later and change nothing.
        for ref in located.locations:
            replica = ReportedReplica(block_id=block.block_id, gen_stamp=block.gen_stamp, length=4096)
            await nn.incremental_report(IncrementalReportRequest(datanode_id=ref.id, received=[replica]))
        assert replicas(nn, block.block_id) == held

    asyncio.run(scenario())


def test_receipts_for_the_previous_block_are_recorded_by_add_block(nn: NameNode) -> None:
    async def scenario() -> None:
        file_id, located = await start(nn, "/g")
        block = located.block
        vouched = [receipt(located.locations[0].id, located, 100)]
        previous = CommittedBlock(block_id=block.block_id, gen_stamp=block.gen_stamp, length=100, replicas=vouched)
        add = AddBlockRequest(path="/g", file_id=file_id, client_name="w", previous=previous)
        await nn.add_block(add, user=USER)
        assert replicas(nn, block.block_id) == {located.locations[0].id: (block.gen_stamp, 100, REPLICA_FINALIZED)}

    asyncio.run(scenario())


def test_receipts_that_do_not_verify_or_name_unknown_nodes_record_nothing(nn: NameNode) -> None:
    async def scenario() -> None:
        file_id, located = await start(nn, "/h")
        block = located.block
        a, b, c = (ref.id for ref in located.locations)
        forged = [
            receipt(a, located, 10, key=replica_receipt_key("another-cluster-secret-" + "x" * 32)),
            receipt(b, located, 11).model_copy(update={"length": 10}),  # signed for another length
            ReplicaReceipt(datanode_id="DN-unknown", length=10, receipt=receipt("DN-unknown", located, 10).receipt),
            receipt(c, located, 10).model_copy(update={"datanode_id": a}),  # signed for another node
        ]
        last = CommittedBlock(block_id=block.block_id, gen_stamp=block.gen_stamp, length=10, replicas=forged)
        assert not await complete(nn, "/h", file_id, last)
        assert replicas(nn, block.block_id) == {}
        # A node's own report still completes the file, as it always did.
        replica = ReportedReplica(block_id=block.block_id, gen_stamp=block.gen_stamp, length=10)
        await nn.incremental_report(IncrementalReportRequest(datanode_id=c, received=[replica]))
        assert await complete(nn, "/h", file_id, last)

    asyncio.run(scenario())


def test_a_receipt_for_another_length_than_committed_marks_that_replica_corrupt(nn: NameNode) -> None:
    async def scenario() -> None:
        file_id, located = await start(nn, "/k")
        block = located.block
        a, b, _ = (ref.id for ref in located.locations)
        vouched = [receipt(a, located, 50), receipt(b, located, 49)]
        last = CommittedBlock(block_id=block.block_id, gen_stamp=block.gen_stamp, length=50, replicas=vouched)
        assert await complete(nn, "/k", file_id, last)
        held = replicas(nn, block.block_id)
        assert held[a] == (block.gen_stamp, 50, REPLICA_FINALIZED)
        assert held[b][2] == REPLICA_CORRUPT

    asyncio.run(scenario())
