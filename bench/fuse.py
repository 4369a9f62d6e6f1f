#!/usr/bin/env python3
"""The FUSE mount beside a local directory, same workload, same run.

    .venv/bin/python bench/fuse.py [--size-mib 1024] [--files 2000] [--file-kib 4] [--rounds 1]
                                   [--replication 3] [--datanodes 3] [--workload fsbench|own]
                                   [--fsbench PATH] [--json]

Starts a real cluster (NameNode + DataNodes as processes) and mounts it with `dfs mount`, both
under a temporary directory on the same disk as the local baseline directory. Rounds alternate
local and mount; medians are shown.

`--workload fsbench` (the default when the shared workload is there, `../shared/bench/fsbench.py`
beside the checkout, or `--fsbench PATH`) runs that file-system-agnostic script in a subprocess on
each directory, the same script that measured MooseFS and the Python FUSE passthroughs, so its
figures compare directly with theirs. `--workload own` runs the same phases in this process and
adds per-file latency percentiles:

  seq write     SIZE MiB in 1 MiB os.write() calls, then fsync and close (inside the timing)
  seq read      the same file in 1 MiB reads, page cache dropped first (root), sha256 checked
  create        FILES files of FILE KiB in one directory: open(O_CREAT), write, close
  stat cold     os.stat of each, caches dropped first (the mount's metadata cache expired too)
  listdir       os.listdir of that directory, cold
  small read    open, read, close of each, compared with what was written
  delete        os.unlink of each

Printed: MB/s (10^6 bytes/s) and ops/s, and the mount's figure as a share of the local one.
No assertions: the machine is shared, compare within a run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import MIB, drop_caches
from client.local_cluster import LocalCluster
from fuse_mount.mount import is_mounted

Result = dict[str, float]
SHARED_FSBENCH = Path(__file__).resolve().parent.parent.parent / "shared" / "bench" / "fsbench.py"
FSBENCH_SETTINGS = ("run", "n", "size_MiB", "small_KiB")  # echoed arguments, not figures


def seq_write(path: Path, size_mib: int, pool: list[bytes]) -> float:
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    start = time.perf_counter()
    try:
        for index in range(size_mib):
            os.write(fd, pool[index % len(pool)])
        os.fsync(fd)
    finally:
        os.close(fd)
    return size_mib * MIB / (time.perf_counter() - start) / 1e6


def seq_read(path: Path, expected_sha: str) -> float:
    drop_caches()
    digest = hashlib.sha256()
    buffer = bytearray(MIB)
    view = memoryview(buffer)
    total = 0
    start = time.perf_counter()
    with path.open("rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
            total += count
    elapsed = time.perf_counter() - start
    if digest.hexdigest() != expected_sha:
        raise SystemExit(f"{path}: read back different bytes")
    return total / elapsed / 1e6


def timed_each(items: list[Path], action: Callable[[Path], object]) -> tuple[float, list[float]]:
    """ops/s over all items, and each item's latency in ms."""
    latencies = []
    start = time.perf_counter()
    for item in items:
        began = time.perf_counter()
        action(item)
        latencies.append((time.perf_counter() - began) * 1000)
    return len(items) / (time.perf_counter() - start), latencies


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def small_files(directory: Path, count: int, size: int, cache_ttl: float) -> Result:
    payloads = [os.urandom(size) for _ in range(min(count, 64))]
    files = [directory / f"f{index:06d}" for index in range(count)]
    directory.mkdir()

    def create(path: Path) -> None:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
        os.write(fd, payloads[hash(path.name) % len(payloads)])
        os.close(fd)

    def read(path: Path) -> None:
        if path.read_bytes() != payloads[hash(path.name) % len(payloads)]:
            raise SystemExit(f"{path}: read back different bytes")

    result: Result = {}
    result["create_ops"], create_ms = timed_each(files, create)
    drop_caches()
    time.sleep(cache_ttl)  # the mount's own metadata cache expires too: a cold stat is a NameNode call
    result["stat_cold_ops"], _ = timed_each(files, Path.stat)
    result["stat_warm_ops"], _ = timed_each(files, Path.stat)
    drop_caches()
    time.sleep(cache_ttl)
    start = time.perf_counter()
    names = os.listdir(directory)
    result["listdir_ms"] = (time.perf_counter() - start) * 1000
    if len(names) != count:
        raise SystemExit(f"{directory}: listed {len(names)} of {count} files")
    drop_caches()
    result["small_read_ops"], read_ms = timed_each(files, read)
    result["delete_ops"], delete_ms = timed_each(files, lambda path: path.unlink())
    directory.rmdir()
    for name, latencies in (("create", create_ms), ("small_read", read_ms), ("delete", delete_ms)):
        result[f"{name}_p50_ms"] = percentile(latencies, 0.50)
        result[f"{name}_p99_ms"] = percentile(latencies, 0.99)
    return result


def workload(root: Path, args: argparse.Namespace, pool: list[bytes], expected_sha: str, ttl: float) -> Result:
    work = root / f"bench-{os.getpid()}"
    work.mkdir()
    try:
        result = {"seq_write_MBps": seq_write(work / "big.bin", args.size_mib, pool)}
        result["seq_read_MBps"] = seq_read(work / "big.bin", expected_sha)
        (work / "big.bin").unlink()
        result |= small_files(work / "small", args.files, args.file_kib * 1024, ttl)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def fsbench(script: Path, root: Path, args: argparse.Namespace, label: str, round_number: int) -> Result:
    """One run of the shared workload on ROOT; its verification flags must all hold."""
    command = [sys.executable, str(script), str(root), "--size-mib", str(args.size_mib), "--n", str(args.files)]
    command += ["--small-kib", str(args.file_kib), "--label", label, "--run", str(round_number)]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False)
    try:
        printed = json.loads(finished.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise SystemExit(f"fsbench on {label} printed no result: {finished.stderr.strip()}") from None
    if "error" in printed:
        raise SystemExit(f"fsbench on {label} failed: {printed['error']}")
    failed = [key for key, value in printed.items() if key.endswith("_ok") and value is not True]
    if failed:
        raise SystemExit(f"fsbench on {label}: verification failed: {failed}")
    numbers = {key: value for key, value in printed.items() if type(value) in (int, float)}  # not the flags
    return {key: float(value) for key, value in numbers.items() if key not in FSBENCH_SETTINGS}


def mount(url: str, mountpoint: Path, log: Path, cache_ttl: float) -> None:
    command = [sys.executable, "-m", "client.cli", "--namenode", url, "mount", str(mountpoint)]
    command += ["--log-file", str(log), "--cache-ttl", str(cache_ttl)]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def unmount(mountpoint: Path) -> None:
    if is_mounted(mountpoint):
        subprocess.run(["fusermount3", "-u", str(mountpoint)], check=False, timeout=120)
        deadline = time.monotonic() + 30
        while is_mounted(mountpoint) and time.monotonic() < deadline:
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--file-kib", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--replication", type=int, default=3)
    parser.add_argument("--datanodes", type=int, default=3)
    parser.add_argument("--cache-ttl", type=float, default=1.0)
    parser.add_argument("--workload", choices=["fsbench", "own"], default=None)
    parser.add_argument("--fsbench", type=Path, default=SHARED_FSBENCH, help="path of the shared fsbench.py")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of a table")
    args = parser.parse_args()
    if args.workload is None:
        args.workload = "fsbench" if args.fsbench.exists() else "own"
    if args.workload == "fsbench" and not args.fsbench.exists():
        parser.error(f"{args.fsbench} does not exist: pass --fsbench PATH or --workload own")

    pool = [os.urandom(MIB) for _ in range(17)]  # not sparse, not all equal
    expected = hashlib.sha256()
    for index in range(args.size_mib):
        expected.update(pool[index % len(pool)])
    base = Path(tempfile.mkdtemp(prefix="dfs-bench-fuse-", dir=os.environ.get("DFS_BENCH_DIR")))
    cluster = LocalCluster(
        base / "cluster",
        datanodes=args.datanodes,
        namenode_args=["--default-replication", str(args.replication)],
    )
    mountpoint = base / "mnt"
    local = base / "local"
    mountpoint.mkdir()
    local.mkdir()
    runs: dict[str, list[Result]] = {"local": [], "mount": []}
    try:
        cluster.start()
        mount(cluster.url, mountpoint, base / "mount.log", args.cache_ttl)
        for round_number in range(1, args.rounds + 1):
            if args.workload == "fsbench":
                runs["local"].append(fsbench(args.fsbench, local, args, "local", round_number))
                runs["mount"].append(fsbench(args.fsbench, mountpoint, args, "mount", round_number))
            else:
                runs["local"].append(workload(local, args, pool, expected.hexdigest(), 0.0))
                runs["mount"].append(workload(mountpoint, args, pool, expected.hexdigest(), args.cache_ttl))
    finally:
        unmount(mountpoint)
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
    medians = {
        where: {key: statistics.median(run[key] for run in results) for key in results[0]}
        for where, results in runs.items()
    }
    if args.json:
        print(json.dumps({"args": {**vars(args), "fsbench": str(args.fsbench)}, **medians}))
        return
    report(medians, args)


def report(medians: dict[str, Result], args: argparse.Namespace) -> None:
    table = Table(
        title=f"FUSE mount vs local directory ({args.workload}: {args.size_mib} MiB file, "
        f"{args.files} x {args.file_kib} KiB files, replication {args.replication}, {args.rounds} round(s), medians)"
    )
    table.add_column("measure")
    table.add_column("local dir", justify="right")
    table.add_column("mount", justify="right")
    table.add_column("mount / local", justify="right")
    for key, local_value in medians["local"].items():
        mount_value = medians["mount"][key]
        lower_is_better = key.endswith("_ms")
        share = (local_value / mount_value if lower_is_better else mount_value / local_value) if mount_value else 0
        table.add_row(key, f"{local_value:,.1f}", f"{mount_value:,.1f}", f"{share:.0%}")
    Console().print(table)


if __name__ == "__main__":
    main()
