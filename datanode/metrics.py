"""The DataNode's Prometheus collector: reads counters and storage state at scrape time.

Nothing here runs between scrapes: `collect()` reads the plain counters the data path
keeps (`DataNode.counters`, the scanner's and replicator's stats) and the replica
index in memory, so a scrape costs one `statvfs` and no disk reads.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from datanode.service import DataNode

PREFIX = "dfs_datanode"


class DataNodeCollector(Collector):
    def __init__(self, datanode: DataNode) -> None:
        self.datanode = datanode

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        dn = self.datanode
        counters = dn.counters
        yield _counter(
            "bytes_written",
            "Bytes received into replicas (writes, pipeline and re-replication copies)",
            counters.bytes_received,
        )
        yield _counter("bytes_read", "Bytes of replica data served to readers", counters.bytes_sent)
        yield _counter(
            "checksum_failures",
            "Checksum mismatches detected (corrupt packets received, corrupt "
            "replicas found by reads, copies, checksums and the scanner)",
            counters.checksum_failures,
        )
        yield _counter(
            "replication_bytes_sent",
            "Bytes sent as the source of re-replication copies and moves",
            dn.replicator.bytes_sent,
        )
        yield _gauge(
            "registered",
            "1 while registered with the NameNode (full block report sent)",
            int(dn.link.registered.is_set()),
        )
        yield _gauge("replicas", "Replicas on disk (finalised and being written)", len(dn.store.snapshot()))
        capacity, free = dn.store.disk_usage()
        yield _gauge("used_bytes", "Bytes of the replicas on disk", dn.store.used_bytes())
        yield _gauge("capacity_bytes", "Size of the storage (file system or configured cap)", capacity)
        yield _gauge("remaining_bytes", "Free space left for replicas", free)
        yield _gauge(
            "active_transfers", "Transfers in progress (writes, reads, checksums, copies)", dn.active_transfers
        )
        yield _counter(
            "transfers_refused", "Requests answered 503 BUSY at the max_transfers limit", dn.transfers_refused
        )
        yield _gauge(
            "recent_errors", "Entries in the recent-errors log (bounded; see /v1/info)", len(counters.recent_errors)
        )
        yield from self._scanner()

    def _scanner(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self.datanode.scanner.stats
        yield _counter("scanner_blocks_scanned", "Replicas verified by the block scanner", stats.blocks_scanned)
        yield _counter("scanner_bytes_scanned", "Bytes verified by the block scanner", stats.bytes_scanned)
        yield _counter("scanner_corrupt_found", "Corrupt replicas found by the block scanner", stats.corrupt_found)
        yield _gauge(
            "scanner_pass_blocks_total", "Replicas due in the current (or last) scan pass", stats.pass_blocks_total
        )
        yield _gauge(
            "scanner_pass_blocks_done", "Replicas of the current (or last) scan pass done", stats.pass_blocks_done
        )
        finished = stats.last_pass_finished_at
        if finished is not None:
            yield _gauge("scanner_last_pass_finished_timestamp_seconds", "Unix time the last scan pass ended", finished)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", documentation, value=value)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=value)
