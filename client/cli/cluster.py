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
from client.local_cluster import LocalCluster

app = typer.Typer(help="Run a local cluster.")


class _Stop(Exception):  # noqa: N818 - a signal, not an error
    pass


def _raise_stop(_signum: int, _frame: FrameType | None) -> None:
    raise _Stop()


@app.command("up")
def up(
    datanodes: Annotated[int, typer.Option("--datanodes", "-n", min=1, help="How many DataNodes.")] = 3,
    base_dir: Annotated[Path, typer.Option(help="Where metadata, blocks and logs go.")] = Path("dfs-data"),
    namenode_port: Annotated[int, typer.Option(help="NameNode HTTP port.")] = 9870,
    host: Annotated[str, typer.Option(help="Address every server binds.")] = "127.0.0.1",
    db: Annotated[str | None, typer.Option(help="Metadata database URL (default: SQLite in BASE_DIR).")] = None,
    replication: Annotated[int | None, typer.Option(help="Default replication of new files.")] = None,
    block_size: Annotated[int | None, typer.Option(help="Default block size of new files (bytes).")] = None,
    heartbeat_interval: Annotated[float | None, typer.Option(help="Seconds between heartbeats.")] = None,
) -> None:
    """Start a NameNode and DataNodes as child processes; stop them all on Ctrl-C or SIGTERM."""
    namenode_args: list[str] = []
    if replication is not None:
        namenode_args += ["--default-replication", str(replication)]
    if block_size is not None:
        namenode_args += ["--default-block-size", str(block_size)]
    if heartbeat_interval is not None:
        namenode_args += ["--heartbeat-interval", str(heartbeat_interval)]
    cluster = LocalCluster(
        base_dir.resolve(),
        datanodes=datanodes,
        namenode_port=namenode_port,
        host=host,
        db_url=db,
        namenode_args=namenode_args,
    )
    # Our own handlers: a shell starting us in the background may have set SIGINT to "ignore".
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        plural = "DataNode" if datanodes == 1 else "DataNodes"
        stderr.print(f"Starting NameNode and {datanodes} {plural} under {cluster.base_dir} ...", markup=False)
        cluster.start()
        _print_urls(cluster)
        while True:
            time.sleep(1.0)
            if not cluster.namenode.alive:
                stderr.print("NameNode exited; stopping the cluster. Last log lines:", markup=False)
                stderr.print(cluster.namenode.log_tail(), markup=False)
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


def _print_urls(cluster: LocalCluster) -> None:
    out = sys.stdout
    out.write(f"NameNode    {cluster.url}    (log: {cluster.namenode.log_path})\n")
    for node in cluster.datanodes:
        out.write(f"{node.name:<11} {node.url}    (data: {cluster.base_dir / node.name})\n")
    out.write(f"\nUse it:  export DFS_NAMENODE={cluster.url}\n")
    out.write("         dfs put README.md /demo/README.md && dfs ls -l /demo && dfs report\n")
    out.write("Press Ctrl-C to stop.\n")
    out.flush()
