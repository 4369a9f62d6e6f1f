"""The NameNode's Prometheus metrics: cluster report gauges, safe mode, throughput, DB query latency.

Block and DataNode numbers come from the same code path as `dfs report`
(`NameNode.report`), which counts rows in SQL. Collectors are synchronous and run on
the event loop, so the `/metrics` handler first awaits `refresh()`, which runs the report
on the reader pool at most once per `snapshot_ttl_s` (concurrent scrapers share one
run); `collect()` then only reads that snapshot and in-memory state. DB latency is
observed by SQLAlchemy cursor events on the NameNode's engines, per statement kind.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, event

from client.protocol.client_namenode import AdminState, ClusterReport, DatanodeState, SafeModeState
from namenode.service import NameNode
from namenode.work_queues import PRIORITY_NAMES

log = structlog.get_logger(__name__)

PREFIX = "dfs_namenode"
SNAPSHOT_TTL_S = 5.0
DB_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
STATEMENT_KINDS = ("select", "insert", "update", "delete")
_STARTED = "_dfs_metrics_started"

Family = CounterMetricFamily | GaugeMetricFamily


def statement_kind(statement: str) -> str:
    """select / insert / update / delete by the first keyword; everything else (BEGIN, PRAGMA, ...) is other."""
    word = statement.lstrip()[:6].lower()
    return word if word in STATEMENT_KINDS else "other"


class DbQueryTimer:
    """Observes every cursor execution on some engines into a histogram labelled by statement kind."""

    def __init__(self, registry: CollectorRegistry, engines: tuple[Engine, ...]) -> None:
        self.histogram = Histogram(
            f"{PREFIX}_db_query_duration_seconds",
            "Metadata database statement execution time, by statement kind",
            ["kind"],
            registry=registry,
            buckets=DB_BUCKETS,
        )
        self._children = {kind: self.histogram.labels(kind) for kind in (*STATEMENT_KINDS, "other")}
        self.engines = engines
        for engine in engines:
            event.listen(engine, "before_cursor_execute", self._before)
            event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, _conn: Any, _cursor: Any, _statement: str, _params: Any, context: Any, _many: bool) -> None:
        if context is not None:
            setattr(context, _STARTED, time.perf_counter())  # per execution: a failed one leaves nothing behind

    def _after(self, _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
        started = getattr(context, _STARTED, None)
        if started is not None:
            self._children[statement_kind(statement)].observe(time.perf_counter() - started)

    def close(self) -> None:
        for engine in self.engines:
            event.remove(engine, "before_cursor_execute", self._before)
            event.remove(engine, "after_cursor_execute", self._after)


class NameNodeMetrics(Collector):
    """Registered in the app's registry for the NameNode's lifetime; `close()` takes it out again."""

    def __init__(self, namenode: NameNode, registry: CollectorRegistry, snapshot_ttl_s: float = SNAPSHOT_TTL_S) -> None:
        self.namenode = namenode
        self.registry = registry
        self.snapshot_ttl_s = snapshot_ttl_s
        self.snapshot: ClusterReport | None = None
        self.snapshot_at = 0.0  # monotonic
        self._lock = asyncio.Lock()
        self.db_timer = DbQueryTimer(registry, namenode.db.engines)
        registry.register(self)

    def close(self) -> None:
        self.registry.unregister(self)
        self.registry.unregister(self.db_timer.histogram)
        self.db_timer.close()

    async def refresh(self) -> None:
        """Re-run the cluster report if the snapshot is older than the TTL; a failure keeps the old one."""
        if time.monotonic() - self.snapshot_at < self.snapshot_ttl_s:
            return
        async with self._lock:
            if time.monotonic() - self.snapshot_at < self.snapshot_ttl_s:
                return  # another scrape refreshed it while we waited
            try:
                self.snapshot = await self.namenode.report()
                self.snapshot_at = time.monotonic()
            except Exception as exc:
                log.warning("metrics: cluster report failed; serving the previous snapshot", error=str(exc))

    def collect(self) -> Iterator[Family]:
        yield from self._live()
        if self.snapshot is not None:
            yield _gauge(
                "report_age_seconds",
                "Age of the cluster report snapshot the gauges below come from",
                time.monotonic() - self.snapshot_at,
            )
            yield from self._cluster(self.snapshot)
            yield from self._datanodes(self.snapshot)

    def _live(self) -> Iterator[Family]:
        nn = self.namenode
        safe_mode = GaugeMetricFamily(f"{PREFIX}_safe_mode", "1 for the current safe mode state", labels=["state"])
        for state in SafeModeState:
            safe_mode.add_metric([state.value], int(nn.safemode.state is state))
        yield safe_mode
        throughput = nn.throughput
        yield _counter(
            "cluster_bytes_written",
            "Bytes DataNodes received into replicas, from heartbeat deltas since this NameNode started",
            throughput.bytes_written_total,
        )
        yield _counter(
            "cluster_bytes_read",
            "Bytes DataNodes served to readers, from heartbeat deltas since this NameNode started",
            throughput.bytes_read_total,
        )
        written, read = throughput.recent_rates()
        yield _gauge("cluster_write_bytes_per_second", "Cluster write throughput over the last minute", written)
        yield _gauge("cluster_read_bytes_per_second", "Cluster read throughput over the last minute", read)
        yield _counter("db_commits", "Metadata write transactions committed (group commits)", nn.db.batches_committed)
        yield _counter("db_committed_operations", "Metadata mutations carried by those commits", nn.db.items_committed)
        yield _gauge("uptime_seconds", "Seconds since this NameNode started", nn.clock() - nn.started_at)

    def _cluster(self, report: ClusterReport) -> Iterator[Family]:
        yield _gauge("files", "Files in the namespace", report.files)
        yield _gauge("directories", "Directories in the namespace, the root included", report.directories)
        yield _gauge("blocks", "Blocks in the block map", report.blocks)
        yield _gauge(
            "under_replicated_blocks",
            "Blocks with fewer good replicas than wanted (not missing)",
            report.under_replicated,
        )
        yield _gauge("corrupt_replicas", "Replicas marked corrupt", report.corrupt_replicas)
        yield _gauge("missing_blocks", "Blocks without a good replica on any non-dead DataNode", report.missing_blocks)
        yield _gauge("pending_deletions", "Replica deletions not yet handed to DataNodes", report.pending_deletions)
        yield _gauge("pending_replications", "Scheduled or in-flight replica copies", report.pending_replications)
        queue = GaugeMetricFamily(
            f"{PREFIX}_replication_queue", "Blocks queued for a replication check, by priority", labels=["priority"]
        )
        for name in PRIORITY_NAMES.values():
            queue.add_metric([name], report.replication_queue.get(name, 0))
        yield queue
        yield _gauge("capacity_bytes", "Capacity summed over non-dead DataNodes", report.capacity)
        yield _gauge("used_bytes", "Replica bytes summed over non-dead DataNodes", report.used)
        yield _gauge("remaining_bytes", "Free space summed over non-dead DataNodes", report.remaining)
        nodes = GaugeMetricFamily(f"{PREFIX}_datanodes", "DataNodes by state", labels=["state"])
        nodes.add_metric(["live"], report.live_datanodes)
        nodes.add_metric(["stale"], report.stale_datanodes)
        nodes.add_metric(["dead"], report.dead_datanodes)
        nodes.add_metric(["decommissioning"], report.decommissioning_datanodes)
        yield nodes

    def _datanodes(self, report: ClusterReport) -> Iterator[Family]:
        labels = ["datanode", "rack"]

        def per_node(name: str, documentation: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"{PREFIX}_datanode_{name}", documentation, labels=labels)

        age = per_node("heartbeat_age_seconds", "Seconds since the DataNode's last heartbeat")
        capacity = per_node("capacity_bytes", "DataNode capacity, from its last heartbeat")
        used = per_node("used_bytes", "DataNode replica bytes, from its last heartbeat")
        remaining = per_node("remaining_bytes", "DataNode free space, from its last heartbeat")
        blocks = per_node("blocks", "Replicas the NameNode knows on the DataNode")
        transfers = per_node("active_transfers", "DataNode transfers in progress, from its last heartbeat")
        state = GaugeMetricFamily(
            f"{PREFIX}_datanode_state", "1 for the DataNode's liveness state", labels=[*labels, "state"]
        )
        admin = GaugeMetricFamily(
            f"{PREFIX}_datanode_admin_state", "1 for the DataNode's admin state", labels=[*labels, "state"]
        )
        for node in report.datanodes:
            key = [node.id, node.rack]
            age.add_metric(key, node.last_heartbeat_age_s)
            capacity.add_metric(key, node.capacity)
            used.add_metric(key, node.used)
            remaining.add_metric(key, node.remaining)
            blocks.add_metric(key, node.blocks)
            transfers.add_metric(key, node.active_transfers)
            for liveness in DatanodeState:
                state.add_metric([*key, liveness.value], int(node.state is liveness))
            for admin_state in AdminState:
                admin.add_metric([*key, admin_state.value], int(node.admin_state is admin_state))
        yield from (age, capacity, used, remaining, blocks, transfers, state, admin)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", documentation, value=value)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=value)
