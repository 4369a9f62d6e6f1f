#!/usr/bin/env python3
"""Throughput of put/get through the SDK beside a local-disk baseline measured in the same run.

    .venv/bin/python bench/throughput.py [--size-mib 1024] [--replication 3] [--datanodes 3]
                                          [--block-size-mib 128] [--rounds 1] [--json]

Starts a real cluster (NameNode + DataNodes as processes, SQLite metadata) under a
temporary directory on the same disk as the baseline, then measures:

  disk write   the same bytes written to one local file in 1 MiB writes + one fsync
  disk read    that file read back in 1 MiB reads (page cache dropped first when possible)
  sdk put      DFSClient.put of the source file (replication R: R copies land on this disk)
  sdk get      DFSClient.get to a local file (cache dropped first when possible)
  sdk get null DFSClient.get to /dev/null (the read path without the local write)

and prints MB/s and CPU seconds per GiB (client + servers) for each. No assertions:
figures on a shared machine are noisy, so compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import drop_caches, make_source, proc_cpu
from client import DFSClient
from client.local_cluster import LocalCluster

MIB = 1024 * 1024


@dataclass
class Result:
    name: str
    seconds: float
    mb_per_s: float
    cpu_s_per_gib: float


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes and of this one."""
    return proc_cpu([os.getpid(), *pids])


def disk_write(source: Path, target: Path) -> None:
    with source.open("rb") as src, target.open("wb") as out:
        while chunk := src.read(MIB):
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())


def disk_read(path: Path) -> None:
    buffer = bytearray(MIB)
    with path.open("rb", buffering=0) as handle:
        while handle.readinto(buffer):
            pass


def measure(name: str, size: int, pids: list[int], action: Callable[[], object]) -> Result:
    cpu_before = cpu_seconds(pids)
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    cpu = cpu_seconds(pids) - cpu_before
    gib = size / (1024 * MIB)
    return Result(name, round(seconds, 3), round(size / seconds / 1e6, 1), round(cpu / gib, 2))


def run(args: argparse.Namespace) -> list[Result]:
    size = args.size_mib * MIB
    base = Path(tempfile.mkdtemp(prefix="dfs-bench-", dir=args.dir))
    cluster = LocalCluster(base / "cluster", datanodes=args.datanodes)
    results: list[Result] = []
    try:
        cluster.start()
        pids = [node.pid for node in [cluster.namenode, *cluster.datanodes]]
        source = base / "source.bin"
        make_source(source, size)
        with DFSClient(cluster.url) as fs:
            for round_number in range(args.rounds):
                copy = base / "baseline.bin"
                results.append(measure("disk write (1 MiB + fsync)", size, [], partial(disk_write, source, copy)))
                drop_caches()
                results.append(measure("disk read (cold)", size, [], partial(disk_read, copy)))
                copy.unlink()
                remote = f"/bench/file{round_number}"
                put = partial(
                    fs.put, source, remote, replication=args.replication, block_size=args.block_size_mib * MIB
                )
                results.append(measure(f"sdk put (replication {args.replication})", size, pids, put))
                drop_caches()
                target = base / "download.bin"
                results.append(measure("sdk get (to file, cold)", size, pids, partial(fs.get, remote, target)))
                target.unlink()
                with Path(os.devnull).open("wb") as null:
                    results.append(measure("sdk get (to /dev/null)", size, pids, partial(fs.get, remote, null)))
                fs.delete(remote)
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--replication", type=int, default=3)
    parser.add_argument("--datanodes", type=int, default=3)
    parser.add_argument("--block-size-mib", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--dir", default=None, help="Where the cluster and files live (default: $TMPDIR).")
    parser.add_argument("--json", action="store_true", help="Print one JSON line instead of a table.")
    args = parser.parse_args()
    results = run(args)
    if args.json:
        print(json.dumps({"size_mib": args.size_mib, "results": [asdict(r) for r in results]}))
        return
    print(
        f"{args.size_mib} MiB, replication {args.replication}, {args.datanodes} DataNodes, "
        f"{args.block_size_mib} MiB blocks, cache drop: {drop_caches()}"
    )
    print(f"{'measurement':<32}{'seconds':>9}{'MB/s':>9}{'CPU s/GiB':>11}")
    for result in results:
        print(f"{result.name:<32}{result.seconds:>9.2f}{result.mb_per_s:>9.1f}{result.cpu_s_per_gib:>11.2f}")


if __name__ == "__main__":
    main()
