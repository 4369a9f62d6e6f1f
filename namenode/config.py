"""NameNode settings: flags on `dfs namenode`, or DFS_NAMENODE_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from client.protocol.block_format import DEFAULT_BYTES_PER_CHECKSUM, validate_bytes_per_checksum
from client.protocol.common import MAX_INT64
from namenode import crash_points
from namenode.permissions import parse_static_mapping
from server_common.cluster_secret import SECRET_FILE_NAME, load_secret

MIB = 1024 * 1024
GIB = 1024 * MIB
#: Requests per second per client (a user, docs/security.md "Backpressure and limits") and burst:
#: twice what the benchmarks' targets ask of one user (2,000 creates/s from 8 clients is ~8,000
#: calls/s, plus 10,000 stats/s), so they never bite normal use; a shared cluster whose NameNode
#: serves less should set a fraction of its capacity per user.
DEFAULT_CLIENT_RATE_LIMIT = 20_000.0
DEFAULT_CLIENT_RATE_BURST = 20_000


class NameNodeSettings(BaseSettings):
    """Everything a NameNode process is configured with; passed to `create_app`."""

    model_config = SettingsConfigDict(env_prefix="DFS_NAMENODE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(9870, ge=0, le=65535)
    data_dir: Path = Path("dfs-data/namenode")
    #: Any SQLAlchemy URL; empty means SQLite in `data_dir`/metadata.db.
    db_url: str = ""
    #: Written once the server listens (its base URL), so supervisors learn port-0 binds.
    port_file: Path | None = None
    #: Serve https only, with this certificate (PEM, chain after the leaf) and key; both or neither.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    #: CA bundle for verifying the DataNodes this NameNode calls (WebHDFS proxy mode); unset:
    #: $DFS_CA_FILE, else the system trust store.
    tls_ca_file: Path | None = None
    #: The URL other NameNodes, operators and clients reach this one at (shown on status pages and
    #: in `dfs admin report`); empty: the bound address.
    advertise_url: str = Field("", pattern=r"^(https?://\S+)?$")
    #: Several NameNodes may share one database: the leader (namenode.leadership) holds a lease of
    #: this length, renewed every third of it; a dead leader is replaced within about this long.
    leader_lease_s: float = Field(6.0, ge=0.5)
    #: A NameNode not seen for this long is dropped from the list of NameNodes.
    namenode_forget_s: float = Field(24 * 3600.0, gt=0)

    default_block_size: int = Field(128 * MIB, ge=64 * 1024)
    min_block_size: int = Field(64 * 1024, ge=512)
    #: Largest block size a file may be created with (DataNodes refuse replicas past their own max_block_size).
    max_block_size: int = Field(2 * GIB, ge=64 * 1024, le=MAX_INT64)
    default_replication: int = Field(3, ge=1, le=512)
    max_replication: int = Field(512, ge=1, le=512)
    min_replication: int = Field(1, ge=1)
    bytes_per_checksum: int = DEFAULT_BYTES_PER_CHECKSUM

    heartbeat_interval_s: float = Field(3.0, gt=0)
    stale_after_s: float = Field(30.0, gt=0)
    dead_after_s: float = Field(600.0, gt=0)
    block_report_interval_s: float = Field(6 * 3600.0, gt=0)
    replication_interval_s: float = Field(3.0, gt=0)
    pending_replication_timeout_s: float = Field(300.0, gt=0)
    max_replication_streams: int = Field(2, ge=1)
    #: Cluster-wide budget for re-replication traffic, MB/s (0: unlimited). Balancer moves have their own.
    replication_bandwidth_mbps: float = Field(100.0, ge=0)
    #: Start-up safe mode: leave once this fraction of blocks has min_replication reported replicas ...
    safemode_threshold: float = Field(0.999, ge=0, le=1)
    #: ... and this many seconds have passed since the threshold was reached.
    safemode_extension_s: float = Field(5.0, ge=0)
    #: Cluster-wide DataNode block scanner defaults (a DataNode's own flags win).
    scan_period_s: float = Field(21 * 24 * 3600.0, gt=0)
    scan_rate_mbps: float = Field(8.0, gt=0)
    invalidations_per_heartbeat: int = Field(1000, ge=1)
    lease_soft_limit_s: float = Field(60.0, gt=0)
    lease_hard_limit_s: float = Field(3600.0, gt=0)

    #: Per-client rate limit on client requests (server_common.rate_limit): requests per second
    #: sustained, and how many at once beyond that (0: no limit). DataNode-protocol routes, health
    #: checks and /metrics are never limited.
    client_rate_limit: float = Field(DEFAULT_CLIENT_RATE_LIMIT, ge=0)
    client_rate_burst: int = Field(DEFAULT_CLIENT_RATE_BURST, ge=1)
    #: Largest JSON request body of a client route; DataNode-protocol routes allow a full block-report page.
    max_request_bytes: int = Field(16 * MIB, ge=64 * 1024)

    #: WebHDFS data proxy (like Hadoop's HttpFS): serve CREATE/APPEND/OPEN/GETFILECHECKSUM on the
    #: NameNode instead of redirecting to DataNodes, for clients that cannot reach DataNodes.
    webhdfs_proxy: bool = False

    #: The secret shared with the DataNodes (docs/security.md): an explicit value (env
    #: DFS_NAMENODE_CLUSTER_SECRET), else this file, else `data_dir`/cluster.secret, made on first start.
    cluster_secret: SecretStr = SecretStr("")
    cluster_secret_file: Path | None = None
    #: "simple": callers state their user (HDFS's default); "token": every client request needs a
    #: valid bearer token issued by `dfs token create`.
    auth_mode: Literal["simple", "token"] = "simple"
    #: Signed block access tokens on every DataNode data request (HDFS's dfs.block.access.token.enable).
    block_access_tokens: bool = True
    block_token_lifetime_s: float = Field(3600.0, ge=10)
    #: A new block key every this many seconds; a key stops verifying once no token it signed can be valid.
    block_key_rotation_s: float = Field(3600.0, ge=10)
    user_token_default_ttl_s: float = Field(24 * 3600.0, ge=1)
    user_token_max_ttl_s: float = Field(7 * 24 * 3600.0, ge=1)

    superuser: str = ""
    #: Members of this group are superusers too (HDFS's dfs.permissions.superusergroup).
    supergroup: str = "supergroup"
    #: Check permissions (HDFS's dfs.permissions.enabled); off, every caller may do anything.
    permissions_enabled: bool = True
    #: Groups of users, overriding the NameNode host's OS groups: "alice=eng,ops;bob=eng"
    #: (Hadoop's hadoop.user.group.static.mapping.overrides).
    user_groups: str = ""
    log_json: bool = False
    log_level: str = "info"
    #: For crash-consistency tests only: "OPERATION:MOMENT" makes the NameNode SIGKILL itself there
    #: (namenode/crash_points.py; $DFS_NAMENODE_CRASH_AT). Empty in any real deployment.
    crash_at: str = ""

    @field_validator("crash_at")
    @classmethod
    def _known_crash_point(cls, value: str) -> str:
        crash_points.parse(value)
        return value

    @field_validator("user_groups")
    @classmethod
    def _parseable_groups(cls, value: str) -> str:
        parse_static_mapping(value)  # a typo fails at start-up, not as a wrong refusal later
        return value

    @model_validator(mode="after")
    def _consistent(self) -> NameNodeSettings:
        """Settings that only make sense together (a bad combination would fail every create)."""
        validate_bytes_per_checksum(self.bytes_per_checksum)
        if not self.min_block_size <= self.default_block_size <= self.max_block_size or self.default_block_size % 512:
            raise ValueError(
                f"default_block_size {self.default_block_size} must be a multiple of 512, at least "
                f"min_block_size {self.min_block_size} and at most max_block_size {self.max_block_size}"
            )
        if not self.min_replication <= self.default_replication <= self.max_replication:
            raise ValueError("need min_replication <= default_replication <= max_replication")
        if not self.heartbeat_interval_s < self.stale_after_s < self.dead_after_s:
            raise ValueError("need heartbeat_interval_s < stale_after_s < dead_after_s")
        if self.lease_soft_limit_s > self.lease_hard_limit_s:
            raise ValueError("lease_soft_limit_s must not exceed lease_hard_limit_s")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: give both or neither")
        return self

    def resolve_cluster_secret(self) -> str:
        """The cluster secret: configured, or kept in `data_dir`/cluster.secret (made on first start)."""
        secret = load_secret(
            self.cluster_secret.get_secret_value(),
            self.cluster_secret_file,
            create_at=self.data_dir / SECRET_FILE_NAME,
        )
        assert secret is not None  # create_at always yields one
        return secret

    def database_url(self) -> str:
        """The configured URL, or the embedded SQLite default under `data_dir`."""
        if self.db_url:
            return self.db_url
        return f"sqlite:///{(self.data_dir / 'metadata.db').resolve()}"
