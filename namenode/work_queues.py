"""The NameNode's durable work queues: blocks to re-check for replication, replicas to delete."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from namenode.db.models import Invalidation, ReplicationQueueEntry
from namenode.db.upsert import insert_ignore, upsert_min

#: Queue priorities, most urgent first (as HDFS's UnderReplicatedBlocks).
PRIORITY_HIGHEST = 0  # one or no good replica left
PRIORITY_VERY_UNDER_REPLICATED = 1  # fewer than a third of the target
PRIORITY_UNDER_REPLICATED = 2
PRIORITY_MIS_REPLICATED = 3  # enough replicas, but all on one rack
PRIORITY_NORMAL = 4  # possibly over-replicated, or a replica changed: check it
PRIORITY_NAMES = {
    PRIORITY_HIGHEST: "highest",
    PRIORITY_VERY_UNDER_REPLICATED: "very_under_replicated",
    PRIORITY_UNDER_REPLICATED: "under_replicated",
    PRIORITY_MIS_REPLICATED: "mis_replicated",
    PRIORITY_NORMAL: "check",
}


def priority_for(good: int, target: int, *, mis_replicated: bool = False) -> int:
    """Queue priority of a block with `good` counted replicas out of `target`."""
    if (good <= 1 and target > 1) or good == 0:
        return PRIORITY_HIGHEST
    if good * 3 < target:
        return PRIORITY_VERY_UNDER_REPLICATED
    if good < target:
        return PRIORITY_UNDER_REPLICATED
    if mis_replicated:
        return PRIORITY_MIS_REPLICATED
    return PRIORITY_NORMAL


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
