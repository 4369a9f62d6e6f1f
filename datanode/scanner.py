"""Block scanner: re-verifies every finalised replica in the background, so rot is found before a read.

Each replica is verified at most once per `period_s` (three weeks by default), reading at
no more than `rate` bytes per second (8 MB/s by default) so scanning never competes with
clients. A replica that fails its checksums is reported to the NameNode at once, which
copies a good replica elsewhere and then deletes this one. A replica written here was
verified chunk by chunk as it arrived, so it counts as scanned when it is finalised. The
scan times live in memory: after a restart every replica is due again (at the same rate).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from client.protocol.common import ExtendedBlock
from client.protocol.datanode_namenode import ReplicaState
from client.protocol.errors import ChecksumMismatchError
from datanode.counters import DataNodeCounters, ErrorKind
from datanode.storage.block_store import BlockStore, ReplicaInfo
from datanode.storage.replica_reader import ReplicaReader

log = structlog.get_logger(__name__)

DEFAULT_PERIOD_S = 21 * 24 * 3600.0
DEFAULT_RATE = 8_000_000  # bytes per second (MB/s are 10^6 bytes throughout)
PACKET = 1024 * 1024
IDLE_SLEEP_S = 30.0


@dataclass
class ScanStats:
    blocks_scanned: int = 0
    bytes_scanned: int = 0
    corrupt_found: int = 0
    pass_blocks_total: int = 0
    pass_blocks_done: int = 0
    last_pass_finished_at: float | None = None


class BlockScanner:
    def __init__(
        self,
        store: BlockStore,
        disk: concurrent.futures.Executor,
        on_corrupt: Callable[[ExtendedBlock, str], Awaitable[None]],
        *,
        period_s: float | None = None,
        rate_bytes_per_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        counters: DataNodeCounters | None = None,
    ) -> None:
        self.store = store
        self.counters = counters or DataNodeCounters()
        self.disk = disk
        self.on_corrupt = on_corrupt
        self.clock = clock
        self._own_period, self._own_rate = period_s, rate_bytes_per_s
        self.period_s = period_s or DEFAULT_PERIOD_S
        self.rate = rate_bytes_per_s or DEFAULT_RATE
        self.last_scanned: dict[int, float] = {}
        self.stats = ScanStats()
        self._wake = asyncio.Event()

    def configure(self, period_s: float, rate_bytes_per_s: float) -> None:
        """Cluster defaults from the NameNode; this DataNode's own settings win."""
        self.period_s = self._own_period or period_s
        self.rate = self._own_rate or rate_bytes_per_s
        self._wake.set()

    def mark_verified(self, block_id: int) -> None:
        """A replica just verified chunk by chunk (on write) needs no scan for a period."""
        self.last_scanned[block_id] = self.clock()

    def _due(self) -> list[ReplicaInfo]:
        now = self.clock()
        replicas = [r for r in self.store.snapshot() if r.state is ReplicaState.FINALIZED]
        return [r for r in replicas if now - self.last_scanned.get(r.block_id, -1e18) >= self.period_s]

    async def run(self) -> None:
        while True:
            due = self._due()
            if not due:
                await self._sleep_until_next_due()
                continue
            self.stats.pass_blocks_total = len(due)
            self.stats.pass_blocks_done = 0
            for replica in due:
                await self._scan(replica)
                self.stats.pass_blocks_done += 1
            self.stats.last_pass_finished_at = time.time()

    async def _sleep_until_next_due(self) -> None:
        known = [self.last_scanned.get(r.block_id, 0.0) for r in self.store.snapshot()]
        wait = min(known, default=self.clock()) + self.period_s - self.clock()
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=min(max(wait, 0.05), IDLE_SLEEP_S))

    async def _scan(self, replica: ReplicaInfo) -> None:
        loop = asyncio.get_running_loop()
        started = self.clock()
        done = 0
        try:
            reader = await loop.run_in_executor(self.disk, ReplicaReader, replica)
        except (FileNotFoundError, ChecksumMismatchError) as exc:
            # Deleted meanwhile, or damaged beyond opening: either way this replica is done for a
            # period (a corrupt one is reported now; the NameNode replaces and deletes it).
            self.last_scanned[replica.block_id] = self.clock()
            if isinstance(exc, ChecksumMismatchError):
                await self._corrupt(replica, exc.message)
            return
        try:
            plan = reader.plan(0, None)
            for start, size in reader.packets(plan, max(plan.bytes_per_checksum, PACKET)):
                await loop.run_in_executor(self.disk, reader.read_packet, start, size)
                done += size
                ahead = done / self.rate - (self.clock() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        except ChecksumMismatchError as exc:
            await self._corrupt(replica, exc.message)
        except OSError as exc:
            log.warning("scan failed", block=replica.block_id, error=str(exc))
            self.counters.record_error(ErrorKind.SCAN_FAILED, f"scan failed: {exc}", replica.block_id)
        finally:
            reader.close()
        self.last_scanned[replica.block_id] = self.clock()
        self.stats.blocks_scanned += 1
        self.stats.bytes_scanned += done

    async def _corrupt(self, replica: ReplicaInfo, reason: str) -> None:
        self.stats.corrupt_found += 1
        log.error("scanner found a corrupt replica", block=replica.block_id, reason=reason)
        await self.on_corrupt(ExtendedBlock(block_id=replica.block_id, gen_stamp=replica.gen_stamp), reason)
