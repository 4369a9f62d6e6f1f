"""NameNode settings: flags on `dfs namenode`, or DFS_NAMENODE_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from client.protocol.block_format import DEFAULT_BYTES_PER_CHECKSUM, validate_bytes_per_checksum

MIB = 1024 * 1024


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

    default_block_size: int = Field(128 * MIB, ge=64 * 1024)
    min_block_size: int = Field(64 * 1024, ge=512)
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

    #: WebHDFS data proxy (like Hadoop's HttpFS): serve CREATE/APPEND/OPEN/GETFILECHECKSUM on the
    #: NameNode instead of redirecting to DataNodes, for clients that cannot reach DataNodes.
    webhdfs_proxy: bool = False

    superuser: str = ""
    supergroup: str = "supergroup"
    log_json: bool = False
    log_level: str = "info"

    @model_validator(mode="after")
    def _consistent(self) -> NameNodeSettings:
        """Settings that only make sense together (a bad combination would fail every create)."""
        validate_bytes_per_checksum(self.bytes_per_checksum)
        if self.default_block_size < self.min_block_size or self.default_block_size % 512:
            raise ValueError(
                f"default_block_size {self.default_block_size} must be a multiple of 512 and at least "
                f"min_block_size {self.min_block_size}"
            )
        if not self.min_replication <= self.default_replication <= self.max_replication:
            raise ValueError("need min_replication <= default_replication <= max_replication")
        if not self.heartbeat_interval_s < self.stale_after_s < self.dead_after_s:
            raise ValueError("need heartbeat_interval_s < stale_after_s < dead_after_s")
        if self.lease_soft_limit_s > self.lease_hard_limit_s:
            raise ValueError("lease_soft_limit_s must not exceed lease_hard_limit_s")
        return self

    def database_url(self) -> str:
        """The configured URL, or the embedded SQLite default under `data_dir`."""
        if self.db_url:
            return self.db_url
        return f"sqlite:///{(self.data_dir / 'metadata.db').resolve()}"
