"""Control path between clients and the NameNode: JSON request and response models.

Routes (all under the NameNode base URL):

    GET  /v1/namespace/status?path=                        -> FileStatus
    GET  /v1/namespace/list?path=&start_after=&limit=      -> DirectoryListing
    GET  /v1/namespace/locations?path=&offset=&length=     -> LocatedBlocks
    POST /v1/namespace/mkdirs          MkdirsRequest        -> FileStatus
    POST /v1/namespace/create          CreateRequest        -> FileStatus
    POST /v1/namespace/add_block       AddBlockRequest      -> LocatedBlock
    POST /v1/namespace/abandon_block   AbandonBlockRequest  -> Ack
    POST /v1/namespace/recover_pipeline RecoverPipelineRequest -> LocatedBlock
    POST /v1/namespace/complete        CompleteRequest      -> CompleteResponse
    POST /v1/namespace/rename          RenameRequest        -> FileStatus
    POST /v1/namespace/delete          DeleteRequest        -> DeleteResponse
    POST /v1/namespace/set_replication SetReplicationRequest -> FileStatus
    POST /v1/namespace/set_attributes SetAttributesRequest -> FileStatus
    POST /v1/namespace/append          AppendRequest        -> AppendResponse
    POST /v1/namespace/concat          ConcatRequest        -> FileStatus
    POST /v1/namespace/recover_lease   RecoverLeaseRequest  -> Ack
    GET  /v1/namespace/content_summary?path=                -> ContentSummary
    POST /v1/namespace/truncate        TruncateRequest      -> TruncateResponse
    POST /v1/namespace/renew_lease     RenewLeaseRequest    -> Ack
    POST /v1/namespace/report_bad_blocks ReportBadBlocksRequest -> Ack
    GET  /v1/cluster/info                                   -> ClusterInfo
    GET  /v1/cluster/report                                 -> ClusterReport
    GET  /api/events?limit=&before=                         -> ClusterEvents
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field

from client.protocol.common import (
    MAX_INT64,
    NUL_FREE,
    BlockId,
    DatanodeId,
    DatanodeRef,
    ExtendedBlock,
    GenStamp,
    NonNegative,
    WireModel,
)
from client.protocol.data_transfer import MAX_PIPELINE_LENGTH
from client.protocol.paths import PATH_JSON_SCHEMA, validate_path
from client.protocol.security import MAX_TOKEN_LENGTH, RECEIPT_LENGTH

#: Checked by `validate_path` (INVALID_PATH); the schema states the rules for API documents and fuzzers.
WirePath = Annotated[str, AfterValidator(validate_path), Field(json_schema_extra=PATH_JSON_SCHEMA)]
Replication = Annotated[int, Field(ge=1, le=512)]
Mode = Annotated[int, Field(ge=0, le=0o7777)]
ClientName = Annotated[str, Field(min_length=1, max_length=256, pattern=NUL_FREE)]
UserName = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\s/:\x00]+$")]
TimeMs = Annotated[int, Field(ge=-1, le=MAX_INT64)]  # bounded: a larger one overflowed the BIGINT column (500)

MAX_LIST_LIMIT = 10_000
DEFAULT_LIST_LIMIT = 1_000


class Routes:
    """URL paths of the NameNode's native API; servers and SDK both use these constants."""

    STATUS = "/v1/namespace/status"
    LIST = "/v1/namespace/list"
    LOCATIONS = "/v1/namespace/locations"
    MKDIRS = "/v1/namespace/mkdirs"
    CREATE = "/v1/namespace/create"
    ADD_BLOCK = "/v1/namespace/add_block"
    ABANDON_BLOCK = "/v1/namespace/abandon_block"
    RECOVER_PIPELINE = "/v1/namespace/recover_pipeline"
    COMPLETE = "/v1/namespace/complete"
    RENAME = "/v1/namespace/rename"
    DELETE = "/v1/namespace/delete"
    SET_REPLICATION = "/v1/namespace/set_replication"
    SET_ATTRIBUTES = "/v1/namespace/set_attributes"
    APPEND = "/v1/namespace/append"
    CONCAT = "/v1/namespace/concat"
    RECOVER_LEASE = "/v1/namespace/recover_lease"
    CONTENT_SUMMARY = "/v1/namespace/content_summary"
    TRUNCATE = "/v1/namespace/truncate"
    RENEW_LEASE = "/v1/namespace/renew_lease"
    REPORT_BAD_BLOCKS = "/v1/namespace/report_bad_blocks"
    CLUSTER_INFO = "/v1/cluster/info"
    CLUSTER_REPORT = "/v1/cluster/report"
    # DataNode -> NameNode
    REGISTER = "/v1/datanode/register"
    HEARTBEAT = "/v1/datanode/heartbeat"
    BLOCK_REPORT = "/v1/datanode/block_report"
    INCREMENTAL_REPORT = "/v1/datanode/incremental_report"


class FileType(StrEnum):
    """What an inode is."""

    FILE = "file"
    DIRECTORY = "directory"


class FileStatus(WireModel):
    """Metadata of one file or directory, as `stat` and listings return it."""

    file_id: int
    name: str
    path: str
    type: FileType
    length: NonNegative
    replication: int
    block_size: int
    mode: Mode
    owner: str
    group: str
    mtime: int  # milliseconds since the epoch
    atime: int
    under_construction: bool = False
    #: Entries of a directory (0 for a file).
    children: NonNegative = 0

    @property
    def is_dir(self) -> bool:
        return self.type is FileType.DIRECTORY


class DirectoryListing(WireModel):
    """One page of a directory, in name order."""

    entries: list[FileStatus]
    has_more: bool


class LocatedBlock(WireModel):
    """A block of a file, where it sits in the file, and the DataNodes holding it (best first)."""

    block: ExtendedBlock
    offset: NonNegative
    length: NonNegative
    locations: list[DatanodeRef]
    corrupt: bool = False
    #: Block access token for these DataNodes (client.protocol.security); empty when tokens are off.
    token: Annotated[str, Field(max_length=MAX_TOKEN_LENGTH)] = ""


class LocatedBlocks(WireModel):
    """The blocks of a file overlapping a requested byte range."""

    file_id: int
    file_length: NonNegative
    under_construction: bool
    blocks: list[LocatedBlock]


class ReplicaReceipt(WireModel):
    """A pipeline node's signed word that it finalised its replica of a committed block."""

    datanode_id: Annotated[str, Field(max_length=64)]
    length: NonNegative
    receipt: Annotated[str, Field(min_length=RECEIPT_LENGTH, max_length=RECEIPT_LENGTH)]


class CommittedBlock(WireModel):
    """A block the writer has finished, with the byte count every pipeline node acknowledged.

    `replicas` carries the receipts of the nodes that finalised it, so the NameNode records those
    replicas with the commit instead of waiting for the nodes' own reports."""

    block_id: BlockId
    gen_stamp: GenStamp
    length: NonNegative
    replicas: Annotated[list[ReplicaReceipt], Field(max_length=MAX_PIPELINE_LENGTH)] = []


class MkdirsRequest(WireModel):
    path: WirePath
    mode: Mode = 0o755
    parents: bool = True


class CreateRequest(WireModel):
    path: WirePath
    client_name: ClientName
    overwrite: bool = False
    replication: Replication | None = None
    block_size: Annotated[int, Field(gt=0, le=MAX_INT64)] | None = None
    mode: Mode = 0o644
    create_parents: bool = True


class AddBlockRequest(WireModel):
    path: WirePath
    file_id: NonNegative
    client_name: ClientName
    previous: CommittedBlock | None = None
    excluded_nodes: Annotated[list[DatanodeId], Field(max_length=1024)] = []


class AbandonBlockRequest(WireModel):
    path: WirePath
    file_id: NonNegative
    client_name: ClientName
    block: ExtendedBlock


class RecoverPipelineRequest(WireModel):
    """After a pipeline node fails: keep `surviving` nodes, bump the generation stamp."""

    path: WirePath
    file_id: NonNegative
    client_name: ClientName
    block: ExtendedBlock
    surviving: Annotated[list[DatanodeId], Field(min_length=1, max_length=64)]


class CompleteRequest(WireModel):
    path: WirePath
    file_id: NonNegative
    client_name: ClientName
    last: CommittedBlock | None = None


class CompleteResponse(WireModel):
    """False means: not every block has its minimum replicas reported yet; retry shortly."""

    completed: bool
    #: The closed file's status (under the path the request named), when `completed`: saves the
    #: writer a `status` call.
    status: FileStatus | None = None


class RenameRequest(WireModel):
    src: WirePath
    dst: WirePath
    overwrite: bool = False


class DeleteRequest(WireModel):
    path: WirePath
    recursive: bool = False


class DeleteResponse(WireModel):
    files: int
    directories: int
    blocks: int


class SetReplicationRequest(WireModel):
    path: WirePath
    replication: Replication


class SetAttributesRequest(WireModel):
    """Change any of a path's mode, owner, group and times; a field left out (or a time of -1) is kept."""

    path: WirePath
    mode: Mode | None = None
    owner: UserName | None = None
    group: UserName | None = None
    mtime: TimeMs | None = None  # milliseconds since the epoch
    atime: TimeMs | None = None


class AppendRequest(WireModel):
    """Reopen a closed file for writing at its end; new data starts a new block (HDFS NEW_BLOCK)."""

    path: WirePath
    client_name: ClientName


class AppendResponse(WireModel):
    status: FileStatus
    #: The file's last block: the writer names it as `previous` when it asks for the next one.
    last: CommittedBlock | None


class ConcatRequest(WireModel):
    """Move the blocks of `sources`, in order, to the end of `target`, then remove the sources."""

    target: WirePath
    sources: Annotated[list[WirePath], Field(min_length=1, max_length=10_000)]


class RecoverLeaseRequest(WireModel):
    """A writer gives up on its file: close it now, keeping only its finished blocks."""

    path: WirePath
    file_id: NonNegative
    client_name: ClientName


class ContentSummary(WireModel):
    """Totals over a subtree, as `du -s` or WebHDFS GETCONTENTSUMMARY want them."""

    length: int
    files: int
    directories: int  # the directory itself included
    space_consumed: int  # length times replication, summed over files


class TruncateRequest(WireModel):
    """Cut a closed file to its first `length` bytes (Hadoop's ``truncate(path, newLength)``)."""

    path: WirePath
    length: NonNegative
    client_name: ClientName


class TruncateResponse(WireModel):
    """`done` false: the last block is being cut on the DataNodes and the file stays under
    construction (held by the NameNode) until it is; poll `status` for `under_construction`."""

    done: bool
    status: FileStatus


class RenewLeaseRequest(WireModel):
    client_name: ClientName


class BadReplica(WireModel):
    block: ExtendedBlock
    datanode_id: DatanodeId
    reason: Annotated[str, Field(max_length=1024)] = ""


class ReportBadBlocksRequest(WireModel):
    replicas: Annotated[list[BadReplica], Field(max_length=10_000)]


class Ack(WireModel):
    ok: bool = True


class ClusterInfo(WireModel):
    """Cluster identity and the defaults a client needs before writing (like GETSERVERDEFAULTS)."""

    cluster_id: str
    version: str
    default_block_size: int
    default_replication: int
    max_replication: int
    min_block_size: int
    bytes_per_checksum: int
    lease_soft_limit_s: float
    #: Largest block size a create accepts (None from servers that predate the limit).
    max_block_size: int | None = None


class DatanodeState(StrEnum):
    """Liveness as the NameNode sees it."""

    LIVE = "live"
    STALE = "stale"
    DEAD = "dead"


class SafeModeState(StrEnum):
    OFF = "off"
    STARTUP = "startup"  # entered at start-up; left automatically once enough blocks are reported
    MANUAL = "manual"  # entered by an operator; left only by an operator


class AdminState(StrEnum):
    """Whether a DataNode takes new replicas."""

    NORMAL = "normal"
    DECOMMISSIONING = "decommissioning"  # serving reads while its replicas are copied elsewhere
    DECOMMISSIONED = "decommissioned"  # every block it holds has its full replication elsewhere


class DatanodeInfo(WireModel):
    """One DataNode row of a cluster report."""

    id: str
    url: str
    rack: str
    state: DatanodeState
    admin_state: AdminState
    capacity: int
    used: int
    remaining: int
    blocks: int
    active_transfers: int
    last_heartbeat_age_s: float


class NameNodeInfo(WireModel):
    """One NameNode of the cluster: all serve requests, the leader also runs the background work."""

    id: str
    url: str
    leader: bool
    alive: bool  # seen within one leader lease
    started_at: float
    seen_at: float
    safemode: SafeModeState
    this: bool  # the NameNode that answered


class ClusterReport(WireModel):
    """What `dfs report` shows: totals, block health and every DataNode."""

    cluster_id: str
    capacity: int
    used: int
    remaining: int
    files: int
    directories: int
    blocks: int
    under_replicated: int
    corrupt_replicas: int
    missing_blocks: int
    pending_deletions: int
    live_datanodes: int
    stale_datanodes: int
    dead_datanodes: int
    decommissioning_datanodes: int
    safe_mode: SafeModeState
    replication_queue: dict[str, int]  # queued blocks per priority name
    pending_replications: int
    replication_bandwidth_mbps: float  # cluster-wide budget for re-replication (0: unlimited)
    datanodes: list[DatanodeInfo]
    #: Every NameNode sharing the metadata database (empty from servers that predate HA).
    namenodes: list[NameNodeInfo] = []


# --- administration (routes under /v1/admin) ----------------------------------------------


class AdminRoutes:
    """URL paths of the NameNode's administration API."""

    SAFEMODE = "/v1/admin/safemode"
    DECOMMISSION = "/v1/admin/decommission"
    RECOMMISSION = "/v1/admin/recommission"
    FSCK = "/v1/admin/fsck"
    BALANCER = "/v1/admin/balancer"


class SafeModeAction(StrEnum):
    ENTER = "enter"
    LEAVE = "leave"


class SafeModeRequest(WireModel):
    action: SafeModeAction


class SafeModeStatus(WireModel):
    """Whether the namespace is read-only, and how far start-up block reporting has got."""

    state: SafeModeState
    blocks_total: int
    blocks_safe: int
    threshold: float
    reported_datanodes: int
    message: str

    @property
    def on(self) -> bool:
        return self.state is not SafeModeState.OFF


class DatanodeSelector(WireModel):
    """A DataNode named by its id, its URL, or host:port."""

    datanode: Annotated[str, Field(min_length=1, max_length=2048)]


class FsckRequestFlags(WireModel):
    files: bool = False
    blocks: bool = False
    locations: bool = False


class BlockHealth(StrEnum):
    HEALTHY = "healthy"
    UNDER_REPLICATED = "under_replicated"
    MIS_REPLICATED = "mis_replicated"
    CORRUPT = "corrupt"  # no good replica, only corrupt ones
    MISSING = "missing"  # no replica at all


class FsckReplica(WireModel):
    datanode_id: str
    url: str
    rack: str
    #: good; corrupt (failed its checksums); outdated (wrong generation stamp or length);
    #: or, for an intact replica, why it does not count: stale, dead, decommissioning, decommissioned
    state: str


class FsckBlock(WireModel):
    block_id: int
    gen_stamp: int
    length: int
    health: BlockHealth
    good_replicas: int
    replicas: list[FsckReplica] = []


class FsckFile(WireModel):
    path: str
    length: int
    replication: int
    health: BlockHealth
    block_count: int
    blocks: list[FsckBlock] = []


class FsckReport(WireModel):
    """What `dfs fsck` prints: block health under a path, optionally per file and block."""

    path: str
    status: str  # HEALTHY or CORRUPT (something is corrupt or missing)
    files: int
    directories: int
    open_files: int
    total_bytes: int
    blocks: int
    healthy: int
    under_replicated: int
    mis_replicated: int
    corrupt: int
    missing: int
    corrupt_replicas: int
    detail: list[FsckFile] = []


class BalancerRequest(WireModel):
    threshold_pct: Annotated[float, Field(gt=0, le=100)] = 10.0
    bandwidth_mbps: Annotated[float, Field(gt=0, le=1_000_000)] = 10.0


class BalancerNode(WireModel):
    datanode_id: str
    utilization_pct: float


class BalancerStatus(WireModel):
    running: bool
    threshold_pct: float
    bandwidth_mbps: float
    average_utilization_pct: float
    nodes: list[BalancerNode]
    moves_scheduled: int
    moves_in_flight: int
    bytes_moved: int
    message: str


# --- cluster events (GET /api/events) -------------------------------------------------------


class EventKind(StrEnum):
    """What a cluster event records (docs/operations.md#events); new kinds may be added, so
    readers should show an unknown kind as it is rather than refuse it."""

    DATANODE_REGISTERED = "datanode_registered"
    DATANODE_STALE = "datanode_stale"
    DATANODE_DEAD = "datanode_dead"
    DATANODE_LIVE = "datanode_live"
    DECOMMISSION_STARTED = "decommission_started"
    DECOMMISSION_FINISHED = "decommission_finished"
    DATANODE_RECOMMISSIONED = "datanode_recommissioned"
    REPLICATION_FINISHED = "replication_finished"
    SAFE_MODE_ENTERED = "safe_mode_entered"
    SAFE_MODE_LEFT = "safe_mode_left"
    CORRUPT_REPLICA = "corrupt_replica"
    MISSING_BLOCK = "missing_block"
    MISSING_BLOCK_RECOVERED = "missing_block_recovered"
    BALANCER_STARTED = "balancer_started"
    BALANCER_STOPPED = "balancer_stopped"


class EventSeverity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


#: Most events one `GET /api/events` returns.
MAX_EVENTS_LIMIT = 1000


class ClusterEvent(WireModel):
    """Something that happened to the cluster, as the NameNode recorded it (newest has the highest id)."""

    id: int
    #: Unix time (seconds) the NameNode noticed it.
    at: float
    kind: str
    severity: EventSeverity
    message: str
    datanode_id: str | None = None
    path: str | None = None
    block_id: int | None = None


class ClusterEvents(WireModel):
    """A page of events, newest first; pass the last one's id as `before` for the next page."""

    events: list[ClusterEvent]
