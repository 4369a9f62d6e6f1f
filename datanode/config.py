"""DataNode settings: flags on `dfs datanode`, or DFS_DATANODE_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DataNodeSettings(BaseSettings):
    """Everything a DataNode process is configured with; passed to `create_app`."""

    model_config = SettingsConfigDict(env_prefix="DFS_DATANODE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(9864, ge=0, le=65535)
    data_dir: Path = Path("dfs-data/datanode")
    namenode_url: str = Field("http://127.0.0.1:9870", pattern=r"^https?://\S+$")
    #: The URL clients and other DataNodes are told to use (containers/NAT); default: the bound address.
    advertise_url: str = Field("", pattern=r"^(https?://\S+)?$")
    rack: str = Field("/default-rack", pattern=r"^/\S*$")
    port_file: Path | None = None

    #: Seconds between heartbeats; unset, the NameNode's registration answer decides (3 s by default).
    heartbeat_interval_s: float | None = Field(None, gt=0)
    block_report_interval_s: float | None = Field(None, gt=0)
    transfer_timeout_s: float = Field(60.0, gt=0)
    #: Report at most this capacity (bytes), e.g. to share a disk between DataNodes; default: the disk.
    capacity_bytes: int | None = Field(None, ge=1024 * 1024)
    #: Block scanner: verify each replica once per period, at most this fast. Unset: the NameNode's defaults.
    scan_period_s: float | None = Field(None, gt=0)
    scan_rate_mbps: float | None = Field(None, gt=0)
    #: Cap on the copies this node sends for re-replication and balancing, MB/s (unset: the NameNode's pace).
    replication_bandwidth_mbps: float | None = Field(None, gt=0)
    #: Bytes per read/write packet on the data path.
    packet_size: int = Field(1024 * 1024, ge=64 * 1024, le=16 * 1024 * 1024)
    disk_threads: int = Field(8, ge=1, le=256)
    log_json: bool = False
    log_level: str = "info"
