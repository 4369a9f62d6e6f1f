#!/usr/bin/env python3
"""Throughput of put/get through the SDK beside a local-disk baseline measured in the same run.

    .venv/bin/python bench/throughput.py [--size-mib 1024] [--replication 3] [--datanodes 3]
                                          [--clients 1] [--block-size-mib 128] [--rounds 1] [--json]

Starts a real cluster (NameNode + DataNodes as processes, SQLite metadata) and the bare HTTP
server of bench/empty_server.py, under a temporary directory on the same disk as the baseline,
then measures:

  disk write   the same bytes written to one local file in 1 MiB writes + one fsync
  disk read    that file read back in 1 MiB reads (page cache dropped first when possible)
  http put     the bytes PUT in 1 MiB pieces to the bare server, which writes and fsyncs them:
               the ceiling of one hop of our HTTP stack (uvicorn + httptools, httpx)
  http get     that file GET back to /dev/null in 1 MiB pieces (from the page cache)
  sdk put      DFSClient.put of the source file (replication R: R copies land on this disk)
  sdk get      DFSClient.get to a local file (cache dropped first when possible)
  sdk get null DFSClient.get to /dev/null (the read path without the local write)

With `--clients N` the SDK figures come from N client processes at once, each moving SIZE/N
bytes of its own file; MB/s is the total over the wall time from the common start to the last
finish. Prints MB/s and CPU seconds per GiB (clients + servers) for each. No assertions:
figures on a shared machine are noisy, so compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Literal, TypedDict

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import drop_caches, make_source, proc_cpu
from client import DFSClient
from client.local_cluster import LocalCluster, NodeProcess

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


def http_put(url: str, source: Path) -> None:
    def pieces() -> Iterator[bytes]:
        with source.open("rb", buffering=0) as handle:
            while piece := handle.read(MIB):
                yield piece

    with httpx.Client(timeout=600) as http:
        http.put(url, content=pieces()).raise_for_status()


def http_get(url: str) -> None:
    with httpx.Client(timeout=600) as http, http.stream("GET", url) as response:
        response.raise_for_status()
        for _ in response.iter_raw(MIB):
            pass


Transfer = Literal["put", "get"]


class PutOptions(TypedDict):
    replication: int
    block_size: int


def client_process(url: str, job: Transfer, local: str, remote: str, options: PutOptions, pipe: Connection) -> None:
    """One client of a concurrent run: connect, say ready, wait for the go, move the bytes, and
    send back when it finished and the CPU seconds the transfer itself took."""
    with DFSClient(url) as fs:
        fs.status("/")  # connections and imports are warm before the clock starts
        pipe.send("ready")
        pipe.recv()
        cpu = time.process_time()
        if job == "put":
            fs.put(local, remote, **options)
        else:
            with Path(os.devnull).open("wb") as null:
                fs.get(remote, null)
        pipe.send((time.time(), time.process_time() - cpu))


def concurrent_clients(
    url: str, job: Transfer, pairs: list[tuple[Path, str]], options: PutOptions, server_pids: list[int]
) -> Result:
    """SIZE split over len(pairs) client processes started together; MB/s over the whole wall time."""
    context = multiprocessing.get_context("spawn")
    pipes, workers = [], []
    for local, remote in pairs:
        ours, theirs = context.Pipe()
        worker = context.Process(target=client_process, args=(url, job, str(local), remote, options, theirs))
        worker.start()
        pipes.append(ours)
        workers.append(worker)
    for pipe in pipes:
        if pipe.recv() != "ready":
            raise SystemExit("a client process did not start")
    server_cpu = proc_cpu(server_pids)
    started = time.time()
    for pipe in pipes:
        pipe.send("go")
    finishes = [pipe.recv() for pipe in pipes]
    for worker in workers:
        worker.join()
    seconds = max(finished for finished, _ in finishes) - started
    cpu = proc_cpu(server_pids) - server_cpu + sum(client_cpu for _, client_cpu in finishes)
    size = sum(local.stat().st_size for local, _ in pairs)
    name = f"sdk {job} ({len(pairs)} clients{', replication ' + str(options['replication']) if job == 'put' else ''})"
    return Result(name, round(seconds, 3), round(size / seconds / 1e6, 1), round(cpu / (size / (1024 * MIB)), 2))


def run(args: argparse.Namespace) -> list[Result]:
    size = args.size_mib * MIB
    base = Path(tempfile.mkdtemp(prefix="dfs-bench-", dir=args.dir))
    cluster = LocalCluster(base / "cluster", datanodes=args.datanodes)
    (base / "blobs").mkdir()
    bare = NodeProcess(
        "http", "bench.empty_server", ["--blob-dir", str(base / "blobs")], base / "http.url", base / "http.log"
    )
    results: list[Result] = []
    options: PutOptions = {"replication": args.replication, "block_size": args.block_size_mib * MIB}
    try:
        cluster.start()
        bare.start()
        assert bare.url is not None
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
                blob = f"{bare.url}/blob/round{round_number}"
                results.append(measure("http put (1 hop, + fsync)", size, [bare.pid], partial(http_put, blob, source)))
                results.append(measure("http get (to /dev/null)", size, [bare.pid], partial(http_get, blob)))
                (base / "blobs" / f"round{round_number}").unlink()
                if args.clients == 1:
                    results.extend(single_client(fs, source, f"/bench/file{round_number}", size, pids, options))
                else:
                    results.extend(many_clients(cluster.url, fs, base, round_number, args, pids, options))
    finally:
        bare.stop()
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
    return results


def single_client(
    fs: DFSClient, source: Path, remote: str, size: int, pids: list[int], options: PutOptions
) -> list[Result]:
    results = [
        measure(
            f"sdk put (replication {options['replication']})", size, pids, partial(fs.put, source, remote, **options)
        )
    ]
    drop_caches()
    target = source.with_name("download.bin")
    results.append(measure("sdk get (to file, cold)", size, pids, partial(fs.get, remote, target)))
    target.unlink()
    with Path(os.devnull).open("wb") as null:
        results.append(measure("sdk get (to /dev/null)", size, pids, partial(fs.get, remote, null)))
    fs.delete(remote)
    return results


def many_clients(
    url: str,
    fs: DFSClient,
    base: Path,
    round_number: int,
    args: argparse.Namespace,
    pids: list[int],
    options: PutOptions,
) -> list[Result]:
    share = args.size_mib * MIB // args.clients
    pairs = []
    for index in range(args.clients):
        local = base / f"part{index}.bin"
        if not local.exists():
            make_source(local, share)
        pairs.append((local, f"/bench/round{round_number}/part{index}"))
    results = [concurrent_clients(url, "put", pairs, options, pids)]
    drop_caches()
    results.append(concurrent_clients(url, "get", pairs, options, pids))
    fs.delete(f"/bench/round{round_number}", recursive=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--replication", type=int, default=3)
    parser.add_argument("--datanodes", type=int, default=3)
    parser.add_argument("--block-size-mib", type=int, default=128)
    parser.add_argument("--clients", type=int, default=1, help="concurrent client processes for the SDK figures")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--dir", default=None, help="Where the cluster and files live (default: $TMPDIR).")
    parser.add_argument("--json", action="store_true", help="Print one JSON line instead of a table.")
    args = parser.parse_args()
    results = run(args)
    if args.json:
        settings = {"size_mib": args.size_mib, "replication": args.replication, "clients": args.clients}
        print(json.dumps({**settings, "results": [asdict(r) for r in results]}))
        return
    print(
        f"{args.size_mib} MiB, replication {args.replication}, {args.datanodes} DataNodes, {args.clients} client(s), "
        f"{args.block_size_mib} MiB blocks, cache drop: {drop_caches()}"
    )
    print(f"{'measurement':<40}{'seconds':>9}{'MB/s':>9}{'CPU s/GiB':>11}")
    for result in results:
        print(f"{result.name:<40}{result.seconds:>9.2f}{result.mb_per_s:>9.1f}{result.cpu_s_per_gib:>11.2f}")


if __name__ == "__main__":
    main()
