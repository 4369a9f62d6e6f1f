"""DataNode settings: flags on `dfs datanode`, or DFS_DATANODE_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from server_common.cluster_secret import ClusterSecretError, load_secret


class DataNodeSettings(BaseSettings):
    """Everything a DataNode process is configured with; passed to `create_app`."""

    model_config = SettingsConfigDict(env_prefix="DFS_DATANODE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(9864, ge=0, le=65535)
    data_dir: Path = Path("dfs-data/datanode")
    #: One NameNode's base URL, or several comma-separated (NameNodes sharing one database): the
    #: node talks to one at a time and moves on to the next when it stops answering.
    namenode_url: str = Field("http://127.0.0.1:9870", pattern=r"^https?://[^\s,]+(,https?://[^\s,]+)*$")
    #: The URL clients and other DataNodes are told to use (containers/NAT); default: the bound address.
    advertise_url: str = Field("", pattern=r"^(https?://\S+)?$")
    rack: str = Field("/default-rack", pattern=r"^/\S*$")
    port_file: Path | None = None
    #: Serve https only, with this certificate (PEM, chain after the leaf) and key; both or neither.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    #: CA bundle for verifying the NameNode and the other DataNodes; unset: $DFS_CA_FILE, else the
    #: system trust store.
    tls_ca_file: Path | None = None
    #: The secret shared with the NameNode (docs/security.md): a value (env DFS_DATANODE_CLUSTER_SECRET)
    #: or a file (mode 0600). Without it the NameNode refuses to register this node.
    cluster_secret: SecretStr = SecretStr("")
    cluster_secret_file: Path | None = None

    #: Seconds between heartbeats; unset, the NameNode's registration answer decides (3 s by default).
    heartbeat_interval_s: float | None = Field(None, gt=0)
    block_report_interval_s: float | None = Field(None, gt=0)
    transfer_timeout_s: float = Field(60.0, gt=0)
    #: Report at most this capacity (bytes), e.g. to share a disk between DataNodes; default: the disk.
    capacity_bytes: int | None = Field(None, ge=1024 * 1024)
    #: Write whole pages of block data with O_DIRECT (where the file system supports it): see
    #: datanode/storage/replica_writer.py for why.
    direct_io: bool = True
    #: Block scanner: verify each replica once per period, at most this fast. Unset: the NameNode's defaults.
    scan_period_s: float | None = Field(None, gt=0)
    scan_rate_mbps: float | None = Field(None, gt=0)
    #: Cap on the copies this node sends for re-replication and balancing, MB/s (unset: the NameNode's pace).
    replication_bandwidth_mbps: float | None = Field(None, gt=0)
    #: Bytes per read/write packet on the data path.
    packet_size: int = Field(1024 * 1024, ge=64 * 1024, le=16 * 1024 * 1024)
    disk_threads: int = Field(8, ge=1, le=256)
    #: Client and pipeline transfers (block reads, writes, checksums) served at once; one more is
    #: answered 503 BUSY with Retry-After before its body is read. Re-replication copies the NameNode
    #: schedules are not counted against it (it paces those itself).
    max_transfers: int = Field(48, ge=1, le=100_000)
    #: Largest replica this node stores: a write that would grow one past it is refused (413).
    max_block_size: int = Field(2 * 1024**3, ge=64 * 1024, le=2**63 - 1)
    log_json: bool = False
    log_level: str = "info"

    @model_validator(mode="after")
    def _tls_consistent(self) -> DataNodeSettings:
        """A certificate without its key cannot serve; a TLS node advertising http:// is unreachable."""
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: give both or neither")
        if self.tls_cert_file is not None and self.advertise_url.startswith("http://"):
            raise ValueError("advertise_url must be an https:// URL when the DataNode serves TLS")
        return self

    def resolve_cluster_secret(self) -> str:
        """The configured cluster secret; ClusterSecretError says how to provide one."""
        secret = load_secret(self.cluster_secret.get_secret_value(), self.cluster_secret_file)
        if secret is None:
            raise ClusterSecretError(
                "no cluster secret: pass --cluster-secret-file (the NameNode keeps it in its data directory "
                "as cluster.secret) or set DFS_DATANODE_CLUSTER_SECRET"
            )
        return secret
