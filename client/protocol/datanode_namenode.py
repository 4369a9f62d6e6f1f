"""Control path between DataNodes and the NameNode: registration, heartbeats, block reports, commands.

A DataNode registers under its persistent id, then heartbeats; the heartbeat reply
carries the commands the NameNode has for it. Full block reports arrive in pages
(``report_id`` ties them together) so a DataNode with millions of blocks never sends
one giant request; incremental reports follow every finalised or deleted replica.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from client.protocol.common import (
    NUL_FREE,
    BlockId,
    DatanodeId,
    DatanodeRef,
    ExtendedBlock,
    GenStamp,
    NonNegative,
    Url,
    WireModel,
)
from client.protocol.security import MAX_TOKEN_LENGTH, BlockTokenPolicy

MAX_REPORT_PAGE = 50_000
#: The NameNode's body limit on DataNode-protocol routes: a full page of the largest report (an
#: incremental report with MAX_REPORT_PAGE received and deleted replicas, every number at its
#: maximum) is about 9 MiB as JSON; tests/unit/test_request_limits.py checks that it fits.
MAX_REPORT_BODY_BYTES = 32 * 1024 * 1024


class ReplicaState(StrEnum):
    """State of a replica on a DataNode's disk."""

    FINALIZED = "finalized"  # complete, fsynced, immutable
    RBW = "rbw"  # being written (or left behind by a writer that died)


class RegisterRequest(WireModel):
    datanode_id: DatanodeId
    url: Url
    rack: Annotated[str, Field(min_length=1, max_length=256, pattern=r"^/[^\s\x00]*$")] = "/default-rack"
    cluster_id: Annotated[str, Field(max_length=64)] | None = None
    capacity: NonNegative
    used: NonNegative
    remaining: NonNegative
    #: Kept in the DataNode table (64 characters there).
    version: Annotated[str, Field(max_length=64, pattern=NUL_FREE)]


class RegisterResponse(WireModel):
    """Cluster identity and the cluster-wide defaults a DataNode uses unless configured otherwise."""

    cluster_id: str
    heartbeat_interval_s: float
    block_report_interval_s: float
    scan_period_s: float = 21 * 24 * 3600.0
    scan_rate_bytes_per_s: int = 8_000_000
    #: How block access tokens are issued; the DataNode refuses data requests without one when required.
    block_tokens: BlockTokenPolicy | None = None


class HeartbeatRequest(WireModel):
    datanode_id: DatanodeId
    capacity: NonNegative
    used: NonNegative
    remaining: NonNegative
    active_transfers: NonNegative = 0
    failed_volumes: NonNegative = 0
    #: Cumulative bytes received into replicas / served to readers since the DataNode started
    #: (the NameNode charts cluster throughput from their deltas; 0 from older DataNodes).
    bytes_received: NonNegative = 0
    bytes_sent: NonNegative = 0


class DeleteBlocksCommand(WireModel):
    """Delete these replicas (the generation stamp must match, so a newer replica survives)."""

    kind: Literal["delete"] = "delete"
    blocks: list[ExtendedBlock]


class ReplicateBlockCommand(WireModel):
    """Copy a finalised replica to `targets` (a pipeline), for re-replication."""

    kind: Literal["replicate"] = "replicate"
    block: ExtendedBlock
    length: NonNegative
    targets: Annotated[list[DatanodeRef], Field(min_length=1)]
    #: REPLICATE token the targets check (client.protocol.security); empty when tokens are off.
    token: Annotated[str, Field(max_length=MAX_TOKEN_LENGTH)] = ""
    #: Pace this copy to at most this many bytes per second (None: as fast as possible).
    max_rate_bytes_per_s: Annotated[int, Field(gt=0)] | None = None


class TruncateBlockCommand(WireModel):
    """Cut the local replica of `block` (id and *old* stamp) to `new_length` bytes under `new_gen_stamp`.

    Sent for the last block of a file being truncated, to every DataNode holding the old
    version; the cut replica is finalised and reported like a freshly written one. Idempotent:
    a replica already at `new_gen_stamp` and `new_length` is only reported again.
    """

    kind: Literal["truncate"] = "truncate"
    block: ExtendedBlock
    new_gen_stamp: GenStamp
    new_length: NonNegative


class ReregisterCommand(WireModel):
    """The NameNode lost track of this DataNode: register and send a full block report."""

    kind: Literal["reregister"] = "reregister"


Command = Annotated[
    DeleteBlocksCommand | ReplicateBlockCommand | ReregisterCommand | TruncateBlockCommand,
    Field(discriminator="kind"),
]


class HeartbeatResponse(WireModel):
    commands: list[Command]


class ReportedReplica(WireModel):
    block_id: BlockId
    gen_stamp: GenStamp
    length: NonNegative
    state: ReplicaState = ReplicaState.FINALIZED


class BlockReportRequest(WireModel):
    """One page of a full block report; replicas the last page has not seen are forgotten."""

    datanode_id: DatanodeId
    report_id: Annotated[str, Field(min_length=1, max_length=64)]
    page: NonNegative
    last: bool
    replicas: Annotated[list[ReportedReplica], Field(max_length=MAX_REPORT_PAGE)]


class IncrementalReportRequest(WireModel):
    datanode_id: DatanodeId
    received: Annotated[list[ReportedReplica], Field(max_length=MAX_REPORT_PAGE)] = []
    deleted: Annotated[list[ExtendedBlock], Field(max_length=MAX_REPORT_PAGE)] = []
