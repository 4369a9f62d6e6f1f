"""What a DataNode has moved and what went wrong lately: plain counters and a bounded error log.

The data path bumps these once per packet (never per byte), on the event loop, so they
cost an integer add. They are cumulative since the process started: `/v1/info` and
`/metrics` show them, and heartbeats carry the byte counters so the NameNode can chart
cluster throughput. The error log keeps the last `MAX_RECENT_ERRORS` entries for the
status page: an operator sees what failed without reading the log file.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

MAX_RECENT_ERRORS = 100


class ErrorKind(StrEnum):
    """What kind of failure a recent-errors entry records."""

    CORRUPT_REPLICA = "corrupt_replica"  # a stored replica failed its checksums (read, copy, scan, cut)
    CORRUPT_PACKET = "corrupt_packet"  # a packet arrived with data not matching its checksums
    WRITE_FAILED = "write_failed"
    READ_FAILED = "read_failed"
    PIPELINE_ERROR = "pipeline_error"  # a downstream DataNode of a write pipeline failed
    REPLICATION_FAILED = "replication_failed"
    SCAN_FAILED = "scan_failed"
    HEARTBEAT_FAILED = "heartbeat_failed"
    NAMENODE_LOST = "namenode_lost"  # the control loop starts over with a new registration
    DISK_FULL = "disk_full"


@dataclass(frozen=True)
class RecentError:
    time: float  # unix seconds
    kind: ErrorKind
    message: str
    block_id: int | None = None


class DataNodeCounters:
    """Cumulative byte and checksum counters plus the recent-errors ring buffer of one DataNode."""

    def __init__(self, clock: Callable[[], float] = time.time, max_errors: int = MAX_RECENT_ERRORS) -> None:
        self.clock = clock
        #: Bytes received into replicas (client writes, pipeline copies and re-replication targets).
        self.bytes_received = 0
        #: Bytes of replica data served to readers.
        self.bytes_sent = 0
        #: Checksum mismatches detected: corrupt packets received and corrupt replicas found.
        self.checksum_failures = 0
        self.recent_errors: deque[RecentError] = deque(maxlen=max_errors)

    def record_error(self, kind: ErrorKind, message: str, block_id: int | None = None) -> None:
        self.recent_errors.append(RecentError(self.clock(), kind, message, block_id))

    def checksum_failure(self, kind: ErrorKind, message: str, block_id: int | None) -> None:
        """Count a mismatch and log it as a recent error."""
        self.checksum_failures += 1
        self.record_error(kind, message, block_id)

    def recent_errors_json(self) -> list[dict[str, Any]]:
        """The recent errors as JSON objects, newest first."""
        return [asdict(error) for error in reversed(self.recent_errors)]
