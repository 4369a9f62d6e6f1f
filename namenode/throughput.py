"""Cluster throughput history from the byte counters DataNodes send with their heartbeats.

Each heartbeat carries a DataNode's cumulative `bytes_received` and `bytes_sent`. The
delta from that node's previous heartbeat is added to the 10-second bucket the heartbeat
falls in; the last hour of buckets is kept in memory (a bounded deque), for a chart. A
counter smaller than before means the DataNode restarted: its new value is all new
bytes. The first heartbeat seen from a node only sets its baseline, so a NameNode
restart does not book a DataNode's whole lifetime into one bucket. Nothing is persisted:
the history starts again with each NameNode process.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

BUCKET_S = 10
HISTORY_S = 3600
#: The rate gauges average over this many seconds (recent buckets, the current one included).
RATE_WINDOW_S = 60


@dataclass
class _Bucket:
    start: int
    written: int = 0
    read: int = 0


class ThroughputHistory:
    """Bytes written to and read from DataNodes, summed per time bucket, plus running totals."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        bucket_s: int = BUCKET_S,
        history_s: int = HISTORY_S,
    ) -> None:
        self.clock = clock
        self.bucket_s = bucket_s
        self.slots = max(1, history_s // bucket_s)
        self.started_at = self._bucket_of(clock())
        #: Bytes written / read cluster-wide since this NameNode started (sums of the deltas).
        self.bytes_written_total = 0
        self.bytes_read_total = 0
        self._buckets: deque[_Bucket] = deque(maxlen=self.slots)
        self._last: dict[str, tuple[int, int]] = {}

    def _bucket_of(self, now: float) -> int:
        return int(now // self.bucket_s) * self.bucket_s

    def record(self, datanode_id: str, bytes_received: int, bytes_sent: int) -> None:
        """Book one heartbeat's counters (cumulative on the DataNode) as deltas into the current bucket."""
        previous = self._last.get(datanode_id)
        self._last[datanode_id] = (bytes_received, bytes_sent)
        if previous is None:
            return  # baseline only: we cannot tell when these bytes moved
        written = _delta(previous[0], bytes_received)
        read = _delta(previous[1], bytes_sent)
        if not written and not read:
            return
        self.bytes_written_total += written
        self.bytes_read_total += read
        start = self._bucket_of(self.clock())
        if not self._buckets or self._buckets[-1].start < start:
            self._buckets.append(_Bucket(start))
        bucket = self._buckets[-1]  # a clock stepping back books into the newest bucket
        bucket.written += written
        bucket.read += read

    def history(self) -> list[tuple[int, float, float]]:
        """`(bucket_start_unix, bytes_written_per_s, bytes_read_per_s)` per bucket, oldest first.

        Every bucket of the last hour since this NameNode started, without gaps (0.0 where
        nothing moved); the last one is the current, partial bucket, whose rate is over the
        seconds elapsed in it so far.
        """
        now = self.clock()
        current = self._bucket_of(now)
        first = max(current - (self.slots - 1) * self.bucket_s, min(self.started_at, current))
        by_start = {bucket.start: bucket for bucket in self._buckets}
        rows = []
        for start in range(first, current + 1, self.bucket_s):
            bucket = by_start.get(start)
            seconds = self.bucket_s if start < current else max(1.0, min(now - start, self.bucket_s))
            written, read = (bucket.written, bucket.read) if bucket else (0, 0)
            rows.append((start, written / seconds, read / seconds))
        return rows

    def recent_rates(self, window_s: int = RATE_WINDOW_S) -> tuple[float, float]:
        """Bytes written and read per second over the last `window_s` seconds (whole buckets)."""
        now = self.clock()
        since = self._bucket_of(now) - (max(1, window_s // self.bucket_s) - 1) * self.bucket_s
        recent = [bucket for bucket in self._buckets if bucket.start >= since]
        seconds = max(1.0, now - max(since, self.started_at))
        return sum(b.written for b in recent) / seconds, sum(b.read for b in recent) / seconds


def _delta(previous: int, current: int) -> int:
    """Growth of a cumulative counter; a smaller value means it restarted from zero."""
    return current - previous if current >= previous else current
