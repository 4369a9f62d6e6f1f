"""`dfs datanode` / `python -m datanode`: run a DataNode process."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from client.protocol.errors import describe_validation_errors
from datanode.config import DataNodeSettings
from server_common.cluster_secret import ClusterSecretError
from server_common.serve import advertised_url

app = typer.Typer(add_completion=False, help="Run a DataNode.")


@app.command()
def main(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (0 picks a free one).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Directory holding block replicas.")] = None,
    namenode: Annotated[str | None, typer.Option(help="NameNode base URL.")] = None,
    advertise_url: Annotated[str | None, typer.Option(help="URL others should use to reach this node.")] = None,
    rack: Annotated[str | None, typer.Option(help="Rack path, e.g. /dc1/rack1.")] = None,
    port_file: Annotated[Path | None, typer.Option(help="Write the base URL here once ready.")] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="Serve https with this certificate (PEM); needs --tls-key.")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="The private key of --tls-cert (PEM).")] = None,
    tls_ca: Annotated[
        Path | None, typer.Option(help="CA bundle to verify the servers this one calls (default: $DFS_CA_FILE).")
    ] = None,
    heartbeat_interval: Annotated[float | None, typer.Option(help="Seconds between heartbeats.")] = None,
    block_report_interval: Annotated[float | None, typer.Option(help="Seconds between full block reports.")] = None,
    transfer_timeout: Annotated[float | None, typer.Option(help="Seconds before a stalled transfer fails.")] = None,
    capacity: Annotated[int | None, typer.Option(help="Report at most this many bytes of capacity.")] = None,
    scan_period: Annotated[
        float | None, typer.Option(help="Seconds in which the scanner verifies every replica once.")
    ] = None,
    scan_rate: Annotated[float | None, typer.Option(help="Scanner read rate cap, MB/s.")] = None,
    replication_bandwidth: Annotated[
        float | None, typer.Option(help="Cap on re-replication/balancer copies sent, MB/s.")
    ] = None,
    max_transfers: Annotated[
        int | None, typer.Option(help="Concurrent block reads/writes served; more are answered 503 (busy).")
    ] = None,
    max_block_size: Annotated[int | None, typer.Option(help="Largest replica accepted (bytes).")] = None,
    direct_io: Annotated[
        bool | None,
        typer.Option(
            "--direct-io/--no-direct-io",
            help="Write block data past the page cache (O_DIRECT) where the file system allows it.",
        ),
    ] = None,
    cluster_secret_file: Annotated[
        Path | None,
        typer.Option(help="File holding the cluster secret (the NameNode's DATA_DIR/cluster.secret, mode 0600)."),
    ] = None,
    log_json: Annotated[bool | None, typer.Option("--log-json/--log-console", help="Log format.")] = None,
) -> None:
    """Store blocks in DATA_DIR and serve them on HOST:PORT until interrupted."""
    from datanode.app import create_app
    from server_common.logging import configure_logging
    from server_common.serve import run_app
    from server_common.tls import start_tls

    overrides: dict[str, Any] = {
        "host": host,
        "port": port,
        "data_dir": data_dir,
        "namenode_url": namenode,
        "advertise_url": advertise_url,
        "rack": rack,
        "port_file": port_file,
        "tls_cert_file": tls_cert,
        "tls_key_file": tls_key,
        "tls_ca_file": tls_ca,
        "heartbeat_interval_s": heartbeat_interval,
        "block_report_interval_s": block_report_interval,
        "transfer_timeout_s": transfer_timeout,
        "capacity_bytes": capacity,
        "scan_period_s": scan_period,
        "scan_rate_mbps": scan_rate,
        "replication_bandwidth_mbps": replication_bandwidth,
        "max_transfers": max_transfers,
        "max_block_size": max_block_size,
        "direct_io": direct_io,
        "cluster_secret_file": cluster_secret_file,
        "log_json": log_json,
    }
    try:
        settings = DataNodeSettings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as exc:
        raise typer.BadParameter(describe_validation_errors(exc.errors())) from None
    try:
        settings.resolve_cluster_secret()
    except ClusterSecretError as exc:
        typer.echo(f"dfs datanode: {exc}", err=True)
        raise typer.Exit(1) from None
    served_tls = start_tls(settings.tls_cert_file, settings.tls_key_file, settings.tls_ca_file, "datanode")
    configure_logging("datanode", json=settings.log_json, level=settings.log_level)
    run_app(
        lambda bound: create_app(
            settings, settings.advertise_url or advertised_url(settings.host, bound, tls=served_tls is not None)
        ),
        host=settings.host,
        port=settings.port,
        port_file=settings.port_file,
        on_ready=lambda url: print(f"DataNode ready at {url}", flush=True),
        ssl_context=served_tls,
    )
