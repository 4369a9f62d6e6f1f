"""JSON twins of the NameNode's status pages (routes under /api): what the page shows, as data.

Each page is rendered from exactly one of these models, so a monitoring script reading `/api/...`
and an operator reading the page see the same numbers.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from client.protocol.client_namenode import (
    DatanodeInfo,
    FileStatus,
    FsckBlock,
    FsckFile,
    FsckReport,
    NameNodeInfo,
    SafeModeStatus,
)
from client.protocol.common import WireModel


class StatusRoutes:
    """URL paths of the status pages' JSON twins on the NameNode (pages drop the /api prefix)."""

    OVERVIEW = "/api/overview"
    DATANODES = "/api/datanodes"
    HEALTH = "/api/health"
    BROWSE = "/api/browse"
    THROUGHPUT = "/api/throughput"
    EVENTS = "/api/events"


class NodeStatus(WireModel):
    """One DataNode row: the report's view plus the one state an operator reads."""

    node: DatanodeInfo
    #: live, stale or dead; decommissioning or decommissioned wins over live and stale.
    display_state: str
    used_pct: float
    status_page: str


class ClusterOverview(WireModel):
    """The front page: identity, safe mode, capacity, namespace and block health, recovery."""

    cluster_id: str
    version: str
    started_at: float
    uptime_s: float
    safe_mode: SafeModeStatus
    capacity: int
    used: int
    remaining: int
    used_pct: float
    files: int
    directories: int
    blocks: int
    under_replicated: int
    mis_replicated: int
    corrupt_replicas: int
    missing_blocks: int
    pending_deletions: int
    #: queued blocks per priority name, and their sum
    replication_queue: dict[str, int]
    replication_queue_length: int
    pending_replications: int
    recovery_budget_mbps: float  # 0: unlimited
    #: bytes of re-replication copies handed to DataNodes per second, over the last minute
    recovery_rate_bytes_per_s: float
    datanodes_by_state: dict[str, int]
    datanodes: list[NodeStatus]
    #: Every NameNode sharing the metadata database: which leads, which this page came from.
    namenodes: list[NameNodeInfo] = []


class DatanodeList(WireModel):
    sort: str
    descending: bool
    datanodes: list[NodeStatus]


class BlockHealthReport(WireModel):
    """fsck of `/`: totals and every file that is not healthy, worst first."""

    fsck: FsckReport
    unhealthy_files: list[FsckFile]


class BrowseEntry(WireModel):
    status: FileStatus
    link: str


class BrowseDirectory(WireModel):
    path: str
    status: FileStatus
    entries: list[BrowseEntry]
    #: set when the directory has more entries than one page shows: the next page starts after it
    next_after: str | None = None


class BrowseFile(WireModel):
    path: str
    status: FileStatus
    health: str
    blocks: list[FsckBlock]
    download: str


class ThroughputSample(WireModel):
    at: float = Field(description="start of a 10 s bucket, unix seconds")
    write_bytes_per_s: float
    read_bytes_per_s: float


class ThroughputHistory(WireModel):
    samples: list[ThroughputSample]


class Readiness(WireModel):
    """`/readyz` on either server: 200 `ready`, or 503 `not ready` with the reasons (for probes)."""

    status: str
    reasons: list[str] = []


#: How `/readyz` documents its 503 (the body is a `Readiness`, not an error body).
NOT_READY_RESPONSE: dict[int | str, dict[str, Any]] = {
    503: {"model": Readiness, "description": "Not ready; the reasons say why."}
}
