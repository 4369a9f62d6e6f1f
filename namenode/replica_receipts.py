"""Replicas a writer vouches for at commit time, with receipts signed by the DataNodes.

A DataNode that finalised its replica of a block signs a receipt into its pipeline ack
(client.protocol.security.sign_receipt); the writer passes the receipts on with the commit
(add_block's `previous`, complete's `last`). Recording them in the commit's transaction is
what lets the DataNodes' incremental reports leave the write's critical path: without them
`complete` would have to wait until each node's report had reached the NameNode, which for a
small file was most of its cost. A receipt that does not verify, or names a node that is not
live, is ignored: the node's own report still arrives and is applied as any report is.

Only a block being committed by its writer gets here: under construction, at the stamp its
pipeline used, with the writer's lease checked. Such a block has no truncate, copy or move in
flight, so recording its replicas is a plain insert or update, two queries for the whole
pipeline (the general report path, namenode.block_reports, handles every other case).
"""

from __future__ import annotations

import structlog
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from client.protocol.client_namenode import CommittedBlock
from client.protocol.security import replica_receipt_key, verify_receipt
from namenode.db.models import Block, Datanode, Replica
from namenode.states import REPLICA_CORRUPT, REPLICA_FINALIZED, STATE_DEAD

log = structlog.get_logger(__name__)


class ReplicaReceipts:
    def __init__(self, secret: str) -> None:
        self._key = replica_receipt_key(secret)

    def record(self, session: Session, block: Block, committed: CommittedBlock) -> None:
        """Record the replica of every verified receipt of `committed` (the writer's commit of `block`)."""
        vouched = {}
        for receipt in committed.replicas:
            if verify_receipt(
                self._key, receipt.receipt, receipt.datanode_id, block.id, committed.gen_stamp, receipt.length
            ):
                vouched[receipt.datanode_id] = receipt.length
            else:
                log.warning("replica receipt does not verify", block=block.id, datanode=receipt.datanode_id)
        if not vouched:
            return
        live = select(Datanode.id, Datanode.current_report_id).where(
            Datanode.id.in_(vouched), Datanode.state != STATE_DEAD
        )
        report_ids = {node_id: report_id for node_id, report_id in session.execute(live)}
        held = {
            replica.datanode_id: replica
            for replica in session.scalars(
                select(Replica).where(Replica.block_id == block.id, Replica.datanode_id.in_(report_ids))
            )
        }
        new_rows = [
            {
                "block_id": block.id,
                "datanode_id": node_id,
                "gen_stamp": committed.gen_stamp,
                "length": vouched[node_id],
                "state": REPLICA_FINALIZED,
                "report_id": report_id,
            }
            for node_id, report_id in report_ids.items()
            if node_id not in held
        ]
        if new_rows:
            session.execute(insert(Replica), new_rows)  # one statement, no unit-of-work bookkeeping
        for node_id, existing in held.items():
            report_id = report_ids[node_id]
            if existing.state != REPLICA_CORRUPT:
                existing.state = REPLICA_FINALIZED
            existing.gen_stamp = committed.gen_stamp
            existing.length = vouched[node_id]
            existing.report_id = report_id
