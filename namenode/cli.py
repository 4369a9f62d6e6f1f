"""`dfs namenode` / `python -m namenode`: run a NameNode process."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from client.protocol.errors import describe_validation_errors
from namenode.config import NameNodeSettings

app = typer.Typer(add_completion=False, help="Run a NameNode.")


@app.command()
def main(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (0 picks a free one).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Directory for the embedded SQLite metadata.")] = None,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the metadata database.")] = None,
    port_file: Annotated[Path | None, typer.Option(help="Write the base URL here once ready.")] = None,
    default_replication: Annotated[int | None, typer.Option(help="Replication of new files.")] = None,
    default_block_size: Annotated[int | None, typer.Option(help="Block size of new files (bytes).")] = None,
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
    log_json: Annotated[bool | None, typer.Option("--log-json/--log-console", help="Log format.")] = None,
) -> None:
    """Serve the namespace on HOST:PORT until interrupted."""
    from namenode.app import create_app
    from server_common.logging import configure_logging
    from server_common.serve import run_app

    overrides: dict[str, Any] = {
        "host": host,
        "port": port,
        "data_dir": data_dir,
        "db_url": db,
        "port_file": port_file,
        "default_replication": default_replication,
        "default_block_size": default_block_size,
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
        "log_json": log_json,
    }
    try:
        settings = NameNodeSettings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as exc:
        raise typer.BadParameter(describe_validation_errors(exc.errors())) from None
    configure_logging("namenode", json=settings.log_json, level=settings.log_level)
    run_app(
        lambda _port: create_app(settings),
        host=settings.host,
        port=settings.port,
        port_file=settings.port_file,
        on_ready=lambda url: print(f"NameNode ready at {url}", flush=True),
    )
