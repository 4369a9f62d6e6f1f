"""`dfs cluster up`: a NameNode and N DataNodes on this machine, in one command."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from client.cli.output import stderr
from client.local_cluster import LocalCluster, wait_until
from client.protocol.client_namenode import SafeModeState
from client.sync_client import DFSClient

app = typer.Typer(help="Run a local cluster.")


class _Stop(Exception):  # noqa: N818 - a signal, not an error
    pass


def _raise_stop(_signum: int, _frame: FrameType | None) -> None:
    raise _Stop()


@app.command("up")
def up(
    datanodes: Annotated[int, typer.Option("--datanodes", "-n", min=1, help="How many DataNodes.")] = 3,
    namenodes: Annotated[
        int, typer.Option(min=1, help="How many NameNodes, sharing the metadata database (one leads).")
    ] = 1,
    base_dir: Annotated[Path, typer.Option(help="Where metadata, blocks and logs go.")] = Path("dfs-data"),
    namenode_port: Annotated[int, typer.Option(help="NameNode HTTP port.")] = 9870,
    host: Annotated[str, typer.Option(help="Address every server binds.")] = "127.0.0.1",
    db: Annotated[str | None, typer.Option(help="Metadata database URL (default: SQLite in BASE_DIR).")] = None,
    replication: Annotated[int | None, typer.Option(help="Default replication of new files.")] = None,
    block_size: Annotated[int | None, typer.Option(help="Default block size of new files (bytes).")] = None,
    racks: Annotated[int, typer.Option(min=1, help="Spread the DataNodes over this many racks.")] = 1,
    heartbeat_interval: Annotated[float | None, typer.Option(help="Seconds between heartbeats.")] = None,
    stale_after: Annotated[float | None, typer.Option(help="Seconds of silence before a node is stale.")] = None,
    dead_after: Annotated[float | None, typer.Option(help="Seconds of silence before a node is dead.")] = None,
    replication_bandwidth: Annotated[
        float | None, typer.Option(help="Cluster-wide re-replication budget, MB/s (0: unlimited).")
    ] = None,
    scan_period: Annotated[
        float | None, typer.Option(help="Seconds in which each DataNode verifies every replica once.")
    ] = None,
    tls: Annotated[
        bool, typer.Option("--tls", help="Serve https: make a CA and a certificate under BASE_DIR/tls.")
    ] = False,
) -> None:
    """Start a NameNode and DataNodes as child processes; stop them all on Ctrl-C or SIGTERM."""
    namenode_args: list[str] = []
    if replication is not None:
        namenode_args += ["--default-replication", str(replication)]
    if block_size is not None:
        namenode_args += ["--default-block-size", str(block_size)]
    for flag, value in (
        ("--heartbeat-interval", heartbeat_interval),
        ("--stale-after", stale_after),
        ("--dead-after", dead_after),
        ("--replication-bandwidth", replication_bandwidth),
        ("--scan-period", scan_period),
    ):
        if value is not None:
            namenode_args += [flag, str(value)]
    cluster = LocalCluster(
        base_dir.resolve(),
        datanodes=datanodes,
        namenode_port=namenode_port,
        host=host,
        db_url=db,
        namenode_args=namenode_args,
        racks=racks,
        tls=tls,
        namenodes=namenodes,
    )
    # Our own handlers: a shell starting us in the background may have set SIGINT to "ignore".
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        plural = "DataNode" if datanodes == 1 else "DataNodes"
        nn_plural = "NameNode" if namenodes == 1 else f"{namenodes} NameNodes"
        stderr.print(f"Starting {nn_plural} and {datanodes} {plural} under {cluster.base_dir} ...", markup=False)
        cluster.start(wait_for_safemode=False)
        _wait_for_safemode(cluster)
        _print_urls(cluster)
        while True:
            time.sleep(1.0)
            for namenode in cluster.namenodes:
                if not namenode.alive:
                    stderr.print(f"{namenode.name} exited; stopping the cluster. Last log lines:", markup=False)
                    stderr.print(namenode.log_tail(), markup=False)
                    raise typer.Exit(1)
            for node in cluster.datanodes:
                if node.process is not None and not node.alive and node.process.returncode is not None:
                    stderr.print(
                        f"{node.name} exited (code {node.process.returncode}); log: {node.log_path}", markup=False
                    )
                    node.process = None
    except (KeyboardInterrupt, _Stop):
        stderr.print("Stopping the cluster ...", markup=False)
    finally:
        cluster.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _wait_for_safemode(cluster: LocalCluster, timeout: float = 30.0) -> None:
    """Give DataNodes time to report; if safe mode still holds, say why and how to leave it."""
    try:
        wait_until(lambda: cluster.report().safe_mode is SafeModeState.OFF, timeout, "safe mode to end")
    except TimeoutError:
        with DFSClient(cluster.url, ca_file=cluster.ca_file) as fs:
            status = fs.safemode()
        stderr.print(
            f"Warning: {status.message}\nReads work; to allow changes anyway run: "
            f"dfs --namenode {cluster.url} admin safemode leave",
            markup=False,
        )


def _print_urls(cluster: LocalCluster) -> None:
    out = sys.stdout
    for namenode in cluster.namenodes:
        label = "NameNode" if namenode is cluster.namenode else namenode.name
        out.write(f"{label:<11} {namenode.url}    (log: {namenode.log_path})\n")
    for node in cluster.datanodes:
        number = int(node.name.removeprefix("datanode"))
        rack = f"rack {cluster.rack_of(number)}    " if cluster.racks > 1 else ""
        out.write(f"{node.name:<11} {node.url}    {rack}(data: {cluster.base_dir / node.name})\n")
    if cluster.ca_file is not None:
        out.write(f"TLS CA      {cluster.ca_file}    (every node serves https with a certificate it signed)\n")
    out.write(f"\nUse it:  export DFS_NAMENODE={cluster.urls}\n")
    if cluster.ca_file is not None:
        out.write(f"         export DFS_CA_FILE={cluster.ca_file}\n")
    out.write("         dfs put README.md /demo/README.md && dfs ls -l /demo && dfs report\n")
    authority = cluster.url.split("://", 1)[1]
    out.write(f"WebHDFS: {cluster.url}/webhdfs/v1    pandas/fsspec: dfs://{authority}/demo/README.md\n")
    out.write("Press Ctrl-C to stop.\n")
    out.flush()
