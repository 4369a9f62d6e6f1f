"""`dfs datanode` / `python -m datanode`: run a DataNode process."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from datanode.config import DataNodeSettings

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
    heartbeat_interval: Annotated[float | None, typer.Option(help="Seconds between heartbeats.")] = None,
    block_report_interval: Annotated[float | None, typer.Option(help="Seconds between full block reports.")] = None,
    transfer_timeout: Annotated[float | None, typer.Option(help="Seconds before a stalled transfer fails.")] = None,
    log_json: Annotated[bool | None, typer.Option("--log-json/--log-console", help="Log format.")] = None,
) -> None:
    """Store blocks in DATA_DIR and serve them on HOST:PORT until interrupted."""
    from datanode.app import create_app
    from server_common.logging import configure_logging
    from server_common.serve import base_url, run_app

    overrides: dict[str, Any] = {
        "host": host,
        "port": port,
        "data_dir": data_dir,
        "namenode_url": namenode,
        "advertise_url": advertise_url,
        "rack": rack,
        "port_file": port_file,
        "heartbeat_interval_s": heartbeat_interval,
        "block_report_interval_s": block_report_interval,
        "transfer_timeout_s": transfer_timeout,
        "log_json": log_json,
    }
    settings = DataNodeSettings(**{key: value for key, value in overrides.items() if value is not None})
    configure_logging("datanode", json=settings.log_json, level=settings.log_level)
    run_app(
        lambda bound: create_app(settings, settings.advertise_url or base_url(settings.host, bound)),
        host=settings.host,
        port=settings.port,
        port_file=settings.port_file,
        on_ready=lambda url: print(f"DataNode ready at {url}", flush=True),
    )
