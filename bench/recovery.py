#!/usr/bin/env python3
"""Recovery after a DataNode dies: time to full replication at two bandwidth budgets, and what
a reading client feels meanwhile, beside the same client's latency with no recovery running.

    .venv/bin/python bench/recovery.py [--victim-gib 0.5] [--budgets 25,100] [--datanodes 4]

For each budget B a fresh cluster (replication 2, one rack, fast liveness settings) is
filled so that each DataNode holds about --victim-gib GiB; a client then reads random 1 MiB
ranges for a while (baseline), the fullest DataNode is killed, and the client keeps reading
while the NameNode declares the node dead and copies its blocks elsewhere. Printed per B:

  restore time     from the dead verdict until fsck reports every block healthy (and from the kill)
  copied, rate     bytes the DataNodes sent for re-replication, and their rate against B
  read latency     p50 / p99 of 1 MiB reads: baseline vs during recovery
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from client import DFSClient
from client.local_cluster import LocalCluster, wait_until
from client.protocol.client_namenode import DatanodeState

MIB = 1024 * 1024
MB = 1_000_000
FILE_MIB = 64
BLOCK_MIB = 16


class Reader(threading.Thread):
    """Reads random 1 MiB ranges in a loop, recording each read's latency under the current phase."""

    def __init__(self, url: str, files: list[str]) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.files = files
        self.phase = "baseline"
        self.latencies: dict[str, list[float]] = {"baseline": [], "recovery": []}
        self.errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        rng = random.Random(7)
        with DFSClient(self.url) as fs:
            while not self.stop.is_set():
                path = rng.choice(self.files)
                offset = rng.randrange(0, FILE_MIB - 1) * MIB
                started = time.perf_counter()
                try:
                    with fs.open(path, "rb") as stream:
                        stream.seek(offset)
                        stream.read(MIB)
                except OSError:
                    self.errors += 1
                    continue
                if self.phase in self.latencies:
                    self.latencies[self.phase].append(time.perf_counter() - started)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def sent_bytes(cluster: LocalCluster) -> int:
    return sum(int(cluster.datanode_info(n)["replication_bytes_sent"]) for n in cluster.datanodes if n.alive)


def run_budget(base: Path, budget_mbps: float, args: argparse.Namespace) -> dict[str, float]:
    cluster = LocalCluster(
        base,
        datanodes=args.datanodes,
        namenode_args=[
            "--replication-bandwidth",
            str(budget_mbps),
            "--heartbeat-interval",
            "0.5",
            "--stale-after",
            "2",
            "--dead-after",
            "5",
            "--replication-interval",
            "0.5",
        ],
    )
    try:
        cluster.start()
        total_mib = int(args.victim_gib * 1024 * args.datanodes / 2)  # replication 2 over N nodes
        files = [f"/data/f{n}" for n in range(max(1, total_mib // FILE_MIB))]
        payload = os.urandom(FILE_MIB * MIB)
        with DFSClient(cluster.url) as fs:
            for path in files:
                fs.write_bytes(path, payload, replication=2, block_size=BLOCK_MIB * MIB)
        reader = Reader(cluster.url, files)
        reader.start()
        time.sleep(args.baseline_s)
        victim = max(cluster.datanodes, key=lambda n: int(cluster.datanode_info(n)["used"]))
        victim_id, held = cluster.datanode_info(victim)["id"], int(cluster.datanode_info(victim)["used"])
        copied_before = sent_bytes(cluster)
        killed = time.monotonic()
        victim.kill()
        reader.phase = "failover"  # stale-node failover before the dead verdict is not recovery traffic
        wait_until(
            lambda: {n.id: n.state for n in cluster.report().datanodes}[victim_id] is DatanodeState.DEAD,
            120,
            "the dead verdict",
            interval=0.1,
        )
        dead = time.monotonic()
        reader.phase = "recovery"
        progress: list[tuple[float, int]] = []

        def healthy() -> bool:
            progress.append((time.monotonic(), sent_bytes(cluster)))
            with DFSClient(cluster.url) as fs:
                report = fs.fsck("/")
            return report.healthy == report.blocks

        wait_until(healthy, 3600, "full replication", interval=0.25)
        restored = time.monotonic()
        progress.append((restored, sent_bytes(cluster)))
        reader.stop.set()
        reader.join()
        moving = [t for t, b in progress if b > copied_before]
        final = progress[-1][1]
        done_at = min(t for t, b in progress if b == final)
        copied = final - copied_before
        start = max([t for t, b in progress if b == copied_before and t <= moving[0]] or [dead])
        return {
            "budget_mbps": budget_mbps,
            "victim_held_mib": round(held / MIB, 1),
            "restore_after_dead_s": round(restored - dead, 2),
            "restore_after_kill_s": round(restored - killed, 2),
            "copied_mib": round(copied / MIB, 1),
            "copy_rate_mbps": round(copied / MB / max(done_at - start, 1e-9), 2),
            "baseline_p50_ms": round(percentile(reader.latencies["baseline"], 0.5) * 1000, 1),
            "baseline_p99_ms": round(percentile(reader.latencies["baseline"], 0.99) * 1000, 1),
            "recovery_p50_ms": round(percentile(reader.latencies["recovery"], 0.5) * 1000, 1),
            "recovery_p99_ms": round(percentile(reader.latencies["recovery"], 0.99) * 1000, 1),
            "reads_baseline": len(reader.latencies["baseline"]),
            "reads_recovery": len(reader.latencies["recovery"]),
            "read_errors": reader.errors,
        }
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--victim-gib", type=float, default=0.5, help="Data each DataNode holds (GiB).")
    parser.add_argument("--budgets", default="25,100", help="Re-replication budgets to compare, MB/s.")
    parser.add_argument("--datanodes", type=int, default=4)
    parser.add_argument("--baseline-s", type=float, default=8.0, help="Seconds of reads before the kill.")
    parser.add_argument("--dir", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    for budget in [float(b) for b in args.budgets.split(",")]:
        base = Path(tempfile.mkdtemp(prefix="dfs-recovery-", dir=args.dir))
        try:
            results.append(run_budget(base, budget, args))
        finally:
            shutil.rmtree(base, ignore_errors=True)
    if args.json:
        print(json.dumps(results))
        return
    print(
        f"{'budget MB/s':>11} {'held MiB':>9} {'restore s':>10} {'(from kill)':>11} {'copied MiB':>11} "
        f"{'rate MB/s':>10} {'read p50/p99 ms: baseline':>26} {'recovery':>15}"
    )
    for r in results:
        print(
            f"{r['budget_mbps']:>11g} {r['victim_held_mib']:>9} {r['restore_after_dead_s']:>10} "
            f"{r['restore_after_kill_s']:>11} {r['copied_mib']:>11} {r['copy_rate_mbps']:>10} "
            f"{r['baseline_p50_ms']:>17}/{r['baseline_p99_ms']:<8} {r['recovery_p50_ms']:>8}/{r['recovery_p99_ms']:<6}"
        )
    print("median of", statistics.median([r["reads_recovery"] for r in results]), "reads during recovery per run")


if __name__ == "__main__":
    main()
