"""Build the status pages' models (client.protocol.status) from the NameNode's own operations.

Every number comes from the same code the control path and `dfs report` / `dfs fsck` use
(`NameNode.report`, `NameNode.fsck`, `NameNode.stat`, `NameNode.list_dir`), so the page, the JSON
twin and the shell agree.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal
from urllib.parse import quote

from client.protocol import SOFTWARE_VERSION
from client.protocol.client_namenode import (
    AdminState,
    BlockHealth,
    DatanodeInfo,
    DatanodeState,
    FsckRequestFlags,
)
from client.protocol.status import (
    BlockHealthReport,
    BrowseDirectory,
    BrowseEntry,
    BrowseFile,
    ClusterOverview,
    DatanodeList,
    NodeStatus,
    ThroughputHistory,
    ThroughputSample,
)
from namenode.fsck import SEVERITY
from namenode.service import NameNode
from server_common.web.formatting import percent

SortKey = Literal["id", "rack", "state", "url", "heartbeat", "capacity", "used", "blocks", "transfers"]
#: Entries one directory page shows; the rest is a click away ("next page").
BROWSE_PAGE = 500
#: Whom the browse pages act as (Hadoop's `hadoop.http.staticuser.user`): they show what anyone may see.
WEB_USER = "dr.who"


def display_state(node: DatanodeInfo) -> str:
    """The single state an operator reads: an admin state wins unless the node is dead."""
    if node.state is not DatanodeState.DEAD and node.admin_state is not AdminState.NORMAL:
        return node.admin_state.value
    return node.state.value


def node_status(node: DatanodeInfo) -> NodeStatus:
    return NodeStatus(
        node=node,
        display_state=display_state(node),
        used_pct=round(percent(node.used, node.capacity), 2),
        status_page=node.url.rstrip("/") + "/",
    )


def browse_link(path: str) -> str:
    return "/browse" + quote(path)


def download_link(path: str) -> str:
    """WebHDFS OPEN: the NameNode redirects to a DataNode, which streams the file."""
    return "/webhdfs/v1" + quote(path) + "?op=OPEN"


async def overview(namenode: NameNode) -> ClusterOverview:
    report = await namenode.report()
    safe_mode = await namenode.safemode_status()
    nodes = [node_status(node) for node in report.datanodes]
    queue = dict(report.replication_queue)
    now = namenode.clock()
    return ClusterOverview(
        cluster_id=report.cluster_id,
        version=SOFTWARE_VERSION,
        started_at=namenode.started_at,
        uptime_s=max(0.0, now - namenode.started_at),
        safe_mode=safe_mode,
        capacity=report.capacity,
        used=report.used,
        remaining=report.remaining,
        used_pct=round(percent(report.used, report.capacity), 2),
        files=report.files,
        directories=report.directories,
        blocks=report.blocks,
        under_replicated=report.under_replicated,
        mis_replicated=queue.get("mis_replicated", 0),
        corrupt_replicas=report.corrupt_replicas,
        missing_blocks=report.missing_blocks,
        pending_deletions=report.pending_deletions,
        replication_queue=queue,
        replication_queue_length=sum(queue.values()),
        pending_replications=report.pending_replications,
        recovery_budget_mbps=report.replication_bandwidth_mbps,
        recovery_rate_bytes_per_s=namenode.datanodes.recovery_budget.recent_rate(),
        datanodes_by_state=dict(Counter(node.display_state for node in nodes)),
        datanodes=nodes,
        namenodes=report.namenodes,
    )


def _sort_value(status: NodeStatus, key: SortKey) -> str | float:
    node = status.node
    values: dict[str, str | float] = {
        "id": node.id,
        "rack": node.rack,
        "state": status.display_state,
        "url": node.url,
        "heartbeat": node.last_heartbeat_age_s,
        "capacity": node.capacity,
        "used": status.used_pct,
        "blocks": node.blocks,
        "transfers": node.active_transfers,
    }
    return values[key]


async def datanodes(namenode: NameNode, sort: SortKey, descending: bool) -> DatanodeList:
    report = await namenode.report()
    rows = sorted(
        (node_status(node) for node in report.datanodes),
        key=lambda status: (_sort_value(status, sort), status.node.id),
        reverse=descending,
    )
    return DatanodeList(sort=sort, descending=descending, datanodes=rows)


async def block_health(namenode: NameNode) -> BlockHealthReport:
    """fsck of the whole namespace; unhealthy files come with their blocks (HDFS's fsck default)."""
    report = await namenode.fsck("/", FsckRequestFlags(), user=namenode.superuser)
    unhealthy = [file for file in report.detail if file.health is not BlockHealth.HEALTHY]
    unhealthy.sort(key=lambda file: (-SEVERITY.index(file.health), file.path))
    return BlockHealthReport(fsck=report, unhealthy_files=unhealthy)


async def browse(namenode: NameNode, path: str, after: str) -> BrowseDirectory | BrowseFile:
    status = await namenode.stat(path, user=WEB_USER)
    if not status.is_dir:
        detail = await namenode.fsck(
            path, FsckRequestFlags(files=True, blocks=True, locations=True), user=namenode.superuser
        )
        checked = detail.detail[0] if detail.detail else None
        return BrowseFile(
            path=path,
            status=status,
            health="open" if status.under_construction else checked.health.value if checked else "healthy",
            blocks=checked.blocks if checked else [],
            download=download_link(path),
        )
    listing = await namenode.list_dir(path, after, BROWSE_PAGE, user=WEB_USER)
    prefix = path.rstrip("/")
    return BrowseDirectory(
        path=path,
        status=status,
        entries=[BrowseEntry(status=entry, link=browse_link(f"{prefix}/{entry.name}")) for entry in listing.entries],
        next_after=listing.entries[-1].name if listing.has_more and listing.entries else None,
    )


def throughput(namenode: NameNode) -> ThroughputHistory:
    return ThroughputHistory(
        samples=[
            ThroughputSample(at=at, write_bytes_per_s=written, read_bytes_per_s=read)
            for at, written, read in namenode.throughput_history()
        ]
    )
