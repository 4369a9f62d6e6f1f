"""Administration commands: `dfs report` (like `hdfs dfsadmin -report`)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from client.cli.context import get_context
from client.cli.output import human_size, print_json
from client.protocol.client_namenode import ClusterReport

app = typer.Typer()


@app.command("report")
def report(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Cluster capacity, block health and every DataNode."""
    with get_context(ctx).client() as fs:
        summary = fs.report()
    if as_json:
        print_json(summary)
        return
    _print_report(summary)


def summary_age(at: float) -> float:
    return max(0.0, time.time() - at)


def _print_report(summary: ClusterReport) -> None:
    used_pct = 100 * summary.used / summary.capacity if summary.capacity else 0.0
    lines = [
        f"Cluster {summary.cluster_id}",
        f"Capacity: {human_size(summary.capacity)}   Used: {human_size(summary.used)} ({used_pct:.1f}%)   "
        f"Remaining: {human_size(summary.remaining)}",
        f"Files: {summary.files}   Directories: {summary.directories}   Blocks: {summary.blocks}",
        f"Under-replicated blocks: {summary.under_replicated}   Missing blocks: {summary.missing_blocks}   "
        f"Corrupt replicas: {summary.corrupt_replicas}   Pending deletions: {summary.pending_deletions}",
        f"DataNodes: {summary.live_datanodes} live, {summary.stale_datanodes} stale, {summary.dead_datanodes} dead, "
        f"{summary.decommissioning_datanodes} decommissioning",
        f"Safe mode: {summary.safe_mode.value}",
        "Replication queue: "
        + (", ".join(f"{name} {count}" for name, count in summary.replication_queue.items()) or "empty")
        + f"   copies pending: {summary.pending_replications}   budget: "
        + (f"{summary.replication_bandwidth_mbps:g} MB/s" if summary.replication_bandwidth_mbps else "unlimited"),
        "",
    ]
    for namenode in summary.namenodes:
        role = "LEADER" if namenode.leader else "follower"
        state = "" if namenode.alive else "   NOT SEEN for " + f"{summary_age(namenode.seen_at):.0f}s"
        lines.append(
            f"NameNode {namenode.url}  {role}   safe mode {namenode.safemode.value}{state}"
            + ("   (answered this report)" if namenode.this else "")
        )
    if summary.namenodes:
        lines.append("")
    for node in summary.datanodes:
        node_pct = 100 * node.used / node.capacity if node.capacity else 0.0
        lines += [
            f"{node.id}  {node.state.value.upper()}",
            f"    url {node.url}   rack {node.rack}   admin {node.admin_state.value}",
            f"    used {human_size(node.used)} of {human_size(node.capacity)} ({node_pct:.1f}%)   "
            f"remaining {human_size(node.remaining)}   blocks {node.blocks}   transfers {node.active_transfers}   "
            f"last heartbeat {node.last_heartbeat_age_s:.1f}s ago",
        ]
    print("\n".join(lines))
