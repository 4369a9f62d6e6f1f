"""A full block report page is applied in several short write transactions (so a DataNode with a
million blocks never holds the writer for long), with the same outcome as one."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from client.protocol.datanode_namenode import BlockReportRequest, ReportedReplica
from namenode import service
from namenode.db.models import Replica
from tests.metadata.test_truncation import BLOCK, Harness, harness, url  # noqa: F401 - fixtures


def test_a_page_is_applied_in_several_transactions_with_the_outcome_of_one(
    harness: Harness,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "REPORT_TRANSACTION", 3)
    h = harness

    async def scenario() -> None:
        blocks = await h.write("/many", [BLOCK] * 7)
        node = blocks[0][1][0]
        held = [block_id for block_id, holders in blocks if node in holders]
        kept, dropped = held[:-1], held[-1]  # the node no longer has its last one
        before = h.db.items_committed
        await h.nn.block_report(
            BlockReportRequest(
                datanode_id=node,
                report_id="r1",
                page=0,
                last=True,
                replicas=[ReportedReplica(block_id=block_id, gen_stamp=1, length=BLOCK) for block_id in kept],
            )
        )
        assert h.db.items_committed - before >= -(-len(kept) // 3)  # one transaction per 3 replicas
        on_node = h.read(
            lambda session: set(session.scalars(select(Replica.block_id).where(Replica.datanode_id == node)))
        )
        # Only the end of the page forgets what was not reported: nothing kept was dropped early.
        assert on_node == set(kept)
        assert dropped not in on_node

    h.run(scenario)
