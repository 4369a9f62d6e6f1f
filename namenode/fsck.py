"""fsck: the health of every block under a path, as HDFS's `fsck` reports it.

A block is *healthy* with its full count of good replicas spread over enough racks;
*under-replicated* with at least one good replica but fewer than its target;
*mis-replicated* with enough good replicas all on one rack of a multi-rack cluster;
*corrupt* with no good replica but corrupt ones; *missing* with no replica at all.
A file takes the worst health of its blocks. Files being written are counted as open
and their blocks skipped, as HDFS does by default. The walk goes a batch of files at a
time, so a large tree is not held in memory unless per-file detail is asked for.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from client.protocol import paths
from client.protocol.client_namenode import (
    AdminState,
    BlockHealth,
    DatanodeState,
    FsckBlock,
    FsckFile,
    FsckReplica,
    FsckReport,
    FsckRequestFlags,
)
from namenode import placement
from namenode.db.models import Block, Inode, Replica
from namenode.inodes import resolve
from namenode.replication import ClusterView, is_intact
from namenode.states import BLOCK_UC, REPLICA_CORRUPT

BATCH = 500
SEVERITY = [
    BlockHealth.HEALTHY,
    BlockHealth.MIS_REPLICATED,
    BlockHealth.UNDER_REPLICATED,
    BlockHealth.CORRUPT,
    BlockHealth.MISSING,
]


def _walk_files(session: Session, root: Inode, root_path: str) -> Iterator[tuple[str, list[Inode], int]]:
    """(directory path, its files, its subdirectory count) for every directory under root, depth first."""
    if not root.is_dir:
        yield paths.parent(root_path), [root], 0
        return
    stack = [(root_path, root.id)]
    while stack:
        directory, inode_id = stack.pop()
        start_after = ""
        while True:
            children = list(
                session.scalars(
                    select(Inode)
                    .where(Inode.parent_id == inode_id, Inode.name > start_after)
                    .order_by(Inode.name)
                    .limit(BATCH)
                )
            )
            if not children:
                break
            start_after = children[-1].name
            subdirs = [c for c in children if c.is_dir]
            stack.extend((paths.join(directory, c.name), c.id) for c in reversed(subdirs))
            yield directory, [c for c in children if not c.is_dir], len(subdirs)


class Fsck:
    def __init__(self, cluster: ClusterView) -> None:
        self.cluster = cluster
        self.counts: dict[str, int] = defaultdict(int)
        self.detail: list[FsckFile] = []

    def run(self, session: Session, path: str, flags: FsckRequestFlags) -> FsckReport:
        root = resolve(session, path)
        if root.is_dir:
            self.counts["directories"] += 1
        for directory, files, subdirs in _walk_files(session, root, path):
            self.counts["directories"] += subdirs
            self._check_files(session, directory, files, flags)
        broken = self.counts["corrupt"] + self.counts["missing"]
        return FsckReport(
            path=path,
            status="CORRUPT" if broken else "HEALTHY",
            files=self.counts["files"],
            directories=self.counts["directories"],
            open_files=self.counts["open_files"],
            total_bytes=self.counts["total_bytes"],
            blocks=self.counts["blocks"],
            healthy=self.counts[BlockHealth.HEALTHY.value],
            under_replicated=self.counts[BlockHealth.UNDER_REPLICATED.value],
            mis_replicated=self.counts[BlockHealth.MIS_REPLICATED.value],
            corrupt=self.counts[BlockHealth.CORRUPT.value],
            missing=self.counts[BlockHealth.MISSING.value],
            corrupt_replicas=self.counts["corrupt_replicas"],
            detail=self.detail,
        )

    def _check_files(self, session: Session, directory: str, files: list[Inode], flags: FsckRequestFlags) -> None:
        if not files:
            return
        blocks = list(
            session.scalars(
                select(Block)
                .where(Block.inode_id.in_([f.id for f in files]), Block.state != BLOCK_UC)
                .order_by(Block.idx)
            )
        )
        replicas: dict[int, list[Replica]] = defaultdict(list)
        if blocks:
            for replica in session.scalars(select(Replica).where(Replica.block_id.in_([b.id for b in blocks]))):
                replicas[replica.block_id].append(replica)
        by_file: dict[int, list[Block]] = defaultdict(list)
        for block in blocks:
            by_file[block.inode_id].append(block)
        for inode in files:
            self.counts["files"] += 1
            self.counts["total_bytes"] += inode.length
            if inode.under_construction:
                self.counts["open_files"] += 1
                continue
            checked = [self._check_block(b, inode.replication, replicas[b.id], flags) for b in by_file[inode.id]]
            health = max((b.health for b in checked), key=SEVERITY.index, default=BlockHealth.HEALTHY)
            if flags.files or flags.blocks or flags.locations or health is not BlockHealth.HEALTHY:
                self.detail.append(
                    FsckFile(
                        path=paths.join(directory, inode.name),
                        length=inode.length,
                        replication=inode.replication,
                        health=health,
                        block_count=len(checked),
                        blocks=checked if flags.blocks or flags.locations or health is not BlockHealth.HEALTHY else [],
                    )
                )

    def _check_block(self, block: Block, target: int, replicas: list[Replica], flags: FsckRequestFlags) -> FsckBlock:
        cluster = self.cluster
        good = [r for r in replicas if is_intact(r, block) and cluster.counts(r.datanode_id)]
        corrupt = [r for r in replicas if r.state == REPLICA_CORRUPT]
        # Intact replicas on decommissioning nodes do not count, but the data is still there.
        readable = [r for r in replicas if is_intact(r, block) and cluster.can_source(r.datanode_id)]
        if not good and not readable:
            health = BlockHealth.CORRUPT if corrupt else BlockHealth.MISSING
        elif len(good) < target:
            health = BlockHealth.UNDER_REPLICATED
        elif placement.is_mis_replicated(
            [cluster.loads[r.datanode_id].rack for r in good], target, cluster.racks_available
        ):
            health = BlockHealth.MIS_REPLICATED
        else:
            health = BlockHealth.HEALTHY
        self.counts["blocks"] += 1
        self.counts[health.value] += 1
        self.counts["corrupt_replicas"] += len(corrupt)
        return FsckBlock(
            block_id=block.id,
            gen_stamp=block.gen_stamp,
            length=block.length,
            health=health,
            good_replicas=len(good),
            replicas=[self._describe(r, block) for r in replicas] if flags.locations else [],
        )

    def _describe(self, replica: Replica, block: Block) -> FsckReplica:
        load = self.cluster.loads.get(replica.datanode_id)
        state = "good" if is_intact(replica, block) else "corrupt" if replica.state == REPLICA_CORRUPT else "outdated"
        liveness = self.cluster.states.get(replica.datanode_id, DatanodeState.DEAD)
        admin = self.cluster.admin.get(replica.datanode_id, AdminState.NORMAL)
        if state == "good" and liveness is not DatanodeState.LIVE:
            state = liveness.value
        elif state == "good" and admin is not AdminState.NORMAL:
            state = admin.value
        return FsckReplica(
            datanode_id=replica.datanode_id, url=load.url if load else "", rack=load.rack if load else "", state=state
        )
