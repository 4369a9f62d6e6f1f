"""The NameNode's durable work queues: blocks to re-check for replication, replicas to delete."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from namenode.db.models import Invalidation, ReplicationQueueEntry
from namenode.db.upsert import insert_ignore, upsert_min

#: Queue priorities, most urgent first (issue #3 refines them).
PRIORITY_HIGHEST = 0  # one or no good replica left
PRIORITY_UNDER_REPLICATED = 1
PRIORITY_NORMAL = 2  # possibly over-replicated, or a replica state changed


def enqueue_blocks(session: Session, block_ids: Iterable[int], now: float, priority: int = PRIORITY_NORMAL) -> None:
    """Ask the replication monitor to look at these blocks; an entry already queued keeps the more
    urgent of its priority and this one."""
    rows = [{"block_id": block_id, "priority": priority, "enqueued_at": now} for block_id in set(block_ids)]
    upsert_min(session, ReplicationQueueEntry, rows, key="block_id", column="priority")


def invalidate(session: Session, replicas: Iterable[tuple[str, int, int]], now: float) -> None:
    """Schedule deletion of replicas given as (datanode id, block id, generation stamp)."""
    rows = [
        {"datanode_id": datanode_id, "block_id": block_id, "gen_stamp": gen_stamp, "created_at": now}
        for datanode_id, block_id, gen_stamp in set(replicas)
    ]
    insert_ignore(session, Invalidation, rows)
