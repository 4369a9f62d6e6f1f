"""`dfs namenode` / `python -m namenode`: run a NameNode process."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from client.protocol.errors import describe_validation_errors
from namenode.config import NameNodeSettings
from server_common.cluster_secret import ClusterSecretError

app = typer.Typer(add_completion=False, help="Run a NameNode.")


@app.command()
def main(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (0 picks a free one).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Directory for the embedded SQLite metadata.")] = None,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the metadata database.")] = None,
    port_file: Annotated[Path | None, typer.Option(help="Write the base URL here once ready.")] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="Serve https with this certificate (PEM); needs --tls-key.")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="The private key of --tls-cert (PEM).")] = None,
    tls_ca: Annotated[
        Path | None, typer.Option(help="CA bundle to verify the servers this one calls (default: $DFS_CA_FILE).")
    ] = None,
    default_replication: Annotated[int | None, typer.Option(help="Replication of new files.")] = None,
    default_block_size: Annotated[int | None, typer.Option(help="Block size of new files (bytes).")] = None,
    max_block_size: Annotated[int | None, typer.Option(help="Largest block size a file may have (bytes).")] = None,
    heartbeat_interval: Annotated[float | None, typer.Option(help="Seconds between DataNode heartbeats.")] = None,
    stale_after: Annotated[float | None, typer.Option(help="Seconds of silence before a node is stale.")] = None,
    dead_after: Annotated[float | None, typer.Option(help="Seconds of silence before a node is dead.")] = None,
    replication_interval: Annotated[float | None, typer.Option(help="Seconds between monitor passes.")] = None,
    lease_soft_limit: Annotated[
        float | None, typer.Option(help="Seconds before another writer may recover a file.")
    ] = None,
    lease_hard_limit: Annotated[
        float | None, typer.Option(help="Seconds before a silent writer's file is recovered.")
    ] = None,
    replication_bandwidth: Annotated[
        float | None, typer.Option(help="Cluster-wide re-replication budget, MB/s (0: unlimited).")
    ] = None,
    scan_period: Annotated[
        float | None, typer.Option(help="Default seconds in which DataNodes verify every replica once.")
    ] = None,
    safemode_threshold: Annotated[
        float | None, typer.Option(help="Fraction of blocks reported before safe mode ends.")
    ] = None,
    safemode_extension: Annotated[
        float | None, typer.Option(help="Seconds safe mode lasts after the threshold is reached.")
    ] = None,
    webhdfs_proxy: Annotated[
        bool | None,
        typer.Option(
            "--webhdfs-proxy/--webhdfs-redirect",
            help="Serve WebHDFS data on the NameNode (for clients that cannot reach DataNodes) instead of redirecting.",
        ),
    ] = None,
    superuser: Annotated[
        str | None, typer.Option(help="The superuser (default: the user running the NameNode).")
    ] = None,
    supergroup: Annotated[str | None, typer.Option(help="Members of this group are superusers too.")] = None,
    user_groups: Annotated[
        str | None,
        typer.Option(help='Groups of users, overriding the OS groups: "alice=eng,ops;bob=eng".'),
    ] = None,
    permissions: Annotated[
        bool | None,
        typer.Option("--permissions/--no-permissions", help="Check file permissions (off: anyone may do anything)."),
    ] = None,
    cluster_secret_file: Annotated[
        Path | None,
        typer.Option(help="File holding the secret shared with the DataNodes (default: DATA_DIR/cluster.secret)."),
    ] = None,
    auth_mode: Annotated[
        str | None, typer.Option(help="simple: callers state their user; token: every request needs a token.")
    ] = None,
    block_access_tokens: Annotated[
        bool | None,
        typer.Option("--block-access-tokens/--no-block-access-tokens", help="Require block tokens on DataNodes."),
    ] = None,
    block_token_lifetime: Annotated[float | None, typer.Option(help="Seconds a block access token is valid.")] = None,
    block_key_rotation: Annotated[float | None, typer.Option(help="Seconds between block key rotations.")] = None,
    client_rate_limit: Annotated[
        float | None, typer.Option(help="Requests per second each client may make (0: no limit).")
    ] = None,
    client_rate_burst: Annotated[
        int | None, typer.Option(help="Requests a client may make at once beyond --client-rate-limit.")
    ] = None,
    max_request_bytes: Annotated[
        int | None, typer.Option(help="Largest request body of a client route (bytes).")
    ] = None,
    log_json: Annotated[bool | None, typer.Option("--log-json/--log-console", help="Log format.")] = None,
) -> None:
    """Serve the namespace on HOST:PORT until interrupted."""
    from namenode.app import create_app
    from server_common.logging import configure_logging
    from server_common.serve import run_app
    from server_common.tls import start_tls

    overrides: dict[str, Any] = {
        "host": host,
        "port": port,
        "data_dir": data_dir,
        "db_url": db,
        "port_file": port_file,
        "tls_cert_file": tls_cert,
        "tls_key_file": tls_key,
        "tls_ca_file": tls_ca,
        "default_replication": default_replication,
        "default_block_size": default_block_size,
        "max_block_size": max_block_size,
        "heartbeat_interval_s": heartbeat_interval,
        "stale_after_s": stale_after,
        "dead_after_s": dead_after,
        "replication_interval_s": replication_interval,
        "lease_soft_limit_s": lease_soft_limit,
        "lease_hard_limit_s": lease_hard_limit,
        "replication_bandwidth_mbps": replication_bandwidth,
        "scan_period_s": scan_period,
        "safemode_threshold": safemode_threshold,
        "safemode_extension_s": safemode_extension,
        "webhdfs_proxy": webhdfs_proxy,
        "superuser": superuser,
        "supergroup": supergroup,
        "user_groups": user_groups,
        "permissions_enabled": permissions,
        "cluster_secret_file": cluster_secret_file,
        "auth_mode": auth_mode,
        "block_access_tokens": block_access_tokens,
        "block_token_lifetime_s": block_token_lifetime,
        "block_key_rotation_s": block_key_rotation,
        "client_rate_limit": client_rate_limit,
        "client_rate_burst": client_rate_burst,
        "max_request_bytes": max_request_bytes,
        "log_json": log_json,
    }
    try:
        settings = NameNodeSettings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as exc:
        raise typer.BadParameter(describe_validation_errors(exc.errors())) from None
    try:
        settings.resolve_cluster_secret()  # made or checked now, so a bad file is one line, not a traceback
    except ClusterSecretError as exc:
        typer.echo(f"dfs namenode: {exc}", err=True)
        raise typer.Exit(1) from None
    served_tls = start_tls(settings.tls_cert_file, settings.tls_key_file, settings.tls_ca_file, "namenode")
    configure_logging("namenode", json=settings.log_json, level=settings.log_level)
    run_app(
        lambda _port: create_app(settings),
        host=settings.host,
        port=settings.port,
        port_file=settings.port_file,
        on_ready=lambda url: print(f"NameNode ready at {url}", flush=True),
        ssl_context=served_tls,
    )
