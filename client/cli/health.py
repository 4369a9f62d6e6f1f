"""Cluster health and maintenance: `dfs admin safemode|decommission|recommission`, `dfs fsck`, `dfs balancer`."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated

import typer

from client.cli.context import get_context, remote_path
from client.cli.output import human_size, print_json
from client.protocol.client_namenode import (
    AdminState,
    BalancerRequest,
    BalancerStatus,
    BlockHealth,
    DatanodeInfo,
    FsckReport,
    SafeModeAction,
)
from client.protocol.errors import DfsTimeoutError

app = typer.Typer()
admin = typer.Typer(help="Administration: safe mode, decommissioning.", no_args_is_help=True)
app.add_typer(admin, name="admin")


class SafeModeCommand(StrEnum):
    GET = "get"
    ENTER = "enter"
    LEAVE = "leave"
    WAIT = "wait"


@admin.command("safemode")
def safemode(
    ctx: typer.Context,
    command: Annotated[SafeModeCommand, typer.Argument(help="get, enter, leave, or wait (until it is off).")],
    timeout: Annotated[float, typer.Option(help="Seconds to wait with `wait`.")] = 600.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Show, enter, leave, or wait out the NameNode's safe mode (read-only namespace)."""
    with get_context(ctx).client() as fs:
        if command is SafeModeCommand.WAIT:
            deadline = time.monotonic() + timeout
            while (status := fs.safemode()).on:
                if time.monotonic() > deadline:
                    raise DfsTimeoutError(f"still in safe mode after {timeout:.0f}s: {status.message}")
                time.sleep(0.5)
        else:
            action = {SafeModeCommand.ENTER: SafeModeAction.ENTER, SafeModeCommand.LEAVE: SafeModeAction.LEAVE}
            status = fs.safemode(action.get(command))
    if as_json:
        print_json(status)
    else:
        print(status.message)


def _print_node(info: DatanodeInfo) -> None:
    print(f"{info.id}  {info.url}  {info.state.value}, {info.admin_state.value}, {info.blocks} blocks")


@admin.command("decommission")
def decommission(
    ctx: typer.Context,
    node: Annotated[str, typer.Argument(metavar="NODE", help="DataNode id, URL, host:port, or a unique id prefix.")],
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the node is decommissioned.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 3600.0,
) -> None:
    """Copy a DataNode's replicas elsewhere so it can be stopped; it keeps serving reads meanwhile."""
    with get_context(ctx).client() as fs:
        info = fs.decommission(node)
        _print_node(info)
        if wait:
            deadline = time.monotonic() + timeout
            while info.admin_state is not AdminState.DECOMMISSIONED:
                if time.monotonic() > deadline:
                    raise DfsTimeoutError(f"{info.id} is still {info.admin_state.value} after {timeout:.0f}s")
                time.sleep(1.0)
                info = next(n for n in fs.report().datanodes if n.id == info.id)
            _print_node(info)


@admin.command("recommission")
def recommission(
    ctx: typer.Context,
    node: Annotated[str, typer.Argument(metavar="NODE", help="DataNode id, URL, host:port, or a unique id prefix.")],
) -> None:
    """Put a (decommissioning or decommissioned) DataNode back in service."""
    with get_context(ctx).client() as fs:
        _print_node(fs.recommission(node))


@app.command("fsck")
def fsck(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="PATH")] = "/",
    files: Annotated[bool, typer.Option("--files", help="List every file checked.")] = False,
    blocks: Annotated[bool, typer.Option("--blocks", help="List each file's blocks.")] = False,
    locations: Annotated[bool, typer.Option("--locations", help="List where each block's replicas are.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check block health under PATH; exits 1 if any block is corrupt or missing."""
    with get_context(ctx).client() as fs:
        report = fs.fsck(remote_path(target), files=files, blocks=blocks or locations, locations=locations)
    if as_json:
        print_json(report)
    else:
        _print_fsck(report)
    if report.corrupt or report.missing:
        raise typer.Exit(1)


def _print_fsck(report: FsckReport) -> None:
    for entry in report.detail:
        problem = "" if entry.health is BlockHealth.HEALTHY else f"  {entry.health.value.upper()}"
        print(
            f"{entry.path} {entry.length} bytes, replication {entry.replication}, {entry.block_count} block(s){problem}"
        )
        for index, block in enumerate(entry.blocks):
            state = "OK" if block.health is BlockHealth.HEALTHY else block.health.value.upper()
            name = f"blk_{block.block_id}_{block.gen_stamp}"
            line = f"  {index}. {name} len={block.length} live={block.good_replicas} {state}"
            if block.replicas:
                line += " [" + ", ".join(f"{r.url} {r.rack} {r.state}" for r in block.replicas) + "]"
            print(line)
    print(
        f"\nStatus: {report.status}\n"
        f" Total size:             {report.total_bytes} B ({human_size(report.total_bytes)})\n"
        f" Total dirs:             {report.directories}\n"
        f" Total files:            {report.files} ({report.open_files} open for writing)\n"
        f" Total blocks:           {report.blocks}\n"
        f" Healthy blocks:         {report.healthy}\n"
        f" Under-replicated:       {report.under_replicated}\n"
        f" Mis-replicated (racks): {report.mis_replicated}\n"
        f" Corrupt blocks:         {report.corrupt}\n"
        f" Missing blocks:         {report.missing}\n"
        f" Corrupt replicas:       {report.corrupt_replicas}\n"
        f"The filesystem under path '{report.path}' is {report.status}"
    )


@app.command("balancer")
def balancer(
    ctx: typer.Context,
    threshold: Annotated[float, typer.Option(min=0.001, max=100, help="Percent from the average utilisation.")] = 10.0,
    bandwidth: Annotated[float, typer.Option(min=0.001, help="Budget for the moves, MB/s.")] = 10.0,
    timeout: Annotated[float, typer.Option(help="Give up (and stop the balancer) after this many seconds.")] = 86400.0,
) -> None:
    """Move replicas from over-used to under-used DataNodes until all are within THRESHOLD of the average.

    Safe to interrupt (Ctrl-C stops it; moves under way finish) and to run again.
    """
    with get_context(ctx).client() as fs:
        status = fs.balancer(BalancerRequest(threshold_pct=threshold, bandwidth_mbps=bandwidth))
        deadline = time.monotonic() + timeout
        last_line = ""
        try:
            while status.running:
                line = _progress_line(status)
                if line != last_line:
                    print(line, flush=True)
                    last_line = line
                if time.monotonic() > deadline:
                    fs.balancer(stop=True)
                    raise DfsTimeoutError(f"balancer stopped after {timeout:.0f}s")
                time.sleep(1.0)
                status = fs.balancer()
        except KeyboardInterrupt:
            fs.balancer(stop=True)
            print("Interrupted: the balancer is stopped; moves under way finish.", flush=True)
            raise typer.Exit(130) from None
        print(_progress_line(status))
        print(status.message)


def _progress_line(status: BalancerStatus) -> str:
    spread = [n.utilization_pct for n in status.nodes]
    low, high = (min(spread), max(spread)) if spread else (0.0, 0.0)
    return (
        f"average {status.average_utilization_pct:.2f}%, nodes {low:.2f}%..{high:.2f}%, "
        f"{status.moves_scheduled} moves scheduled, {status.moves_in_flight} in flight, "
        f"{human_size(status.bytes_moved)} moved"
    )
