#!/usr/bin/env python3
"""Throughput through every front end (SDK, fsspec ``dfs://``, WebHDFS via HdfsCLI and fsspec) and a
pyarrow column read of a parquet file, beside local-disk baselines measured in the same run.

    .venv/bin/python bench/ecosystem.py [--size-mib 1024] [--replication 3] [--datanodes 3]
                                         [--block-size-mib 128] [--parquet-mib N] [--row-group-mib 128]

Starts a real cluster (NameNode + DataNodes as processes) under a temporary directory on the same
disk as the baselines, and streams one random file (made once, 8 MiB at a time) through each front
end: written (the source read into the page cache first), read back with the page cache dropped
(when we may: root), deleted. Measured:

  local disk       1 MiB writes + fsync to a local file; 1 MiB reads of it
  SDK              DFSClient.put of the source file; DFSClient.get to /dev/null
  fsspec dfs://    fsspec.open("dfs://host:port/path", "wb"/"rb"), 1 MiB writes / reads
  HdfsCLI          hdfs.InsecureClient.write(data=file) / read(chunk_size=1 MiB), over WebHDFS
  fsspec webhdfs   fsspec's own "webhdfs" file system, 1 MiB writes / reads (its default buffers)
  parquet          pyarrow.parquet.read_table(columns=[one of 8 float64 columns]), local vs dfs://

Printed: MB/s (10^6 bytes/s); CPU seconds per GiB of this process (getrusage) and of the servers
(/proc); for reads, the bytes the DataNodes wrote to their sockets (`wchar` of /proc/<pid>/io,
which counts uvloop's socket writes: packet checksums and HTTP framing included) over the bytes
read, and the block reads the SDK clients of this process made (a counting httpx transport, which
also gives the response bytes they took in); the blocks of each file written. For the local
parquet read, the bytes fetched are this process's `rchar`. No assertions: the machine is shared,
so compare ratios within one run.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import fsspec
import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import requests
from hdfs import InsecureClient
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import drop_caches, make_source, proc_cpu
from client import DFSClient
from client.dfs_fsspec import DFSFileSystem
from client.local_cluster import LocalCluster

MIB = 1024 * 1024
GIB = 1024 * MIB
MB = 1_000_000
CHUNK = MIB
COLUMNS = 8
READ_COLUMN = "c3"


def proc_io(pid: int | str, field: str) -> int:
    """One counter of /proc/<pid>/io (0 if the process is gone)."""
    try:
        lines = Path(f"/proc/{pid}/io").read_text().splitlines()
    except (FileNotFoundError, PermissionError):
        return 0
    return next(int(line.split()[1]) for line in lines if line.startswith(field + ":"))


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Tally:
    """Block reads the SDK clients of this process made, and the response bytes they took in."""

    requests: int = 0
    received: int = 0


class CountedStream(httpx.AsyncByteStream):
    """A response body that adds its length to a tally as the client consumes it."""

    def __init__(self, inner: httpx.AsyncByteStream, tally: Tally) -> None:
        self.inner = inner
        self.tally = tally

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for piece in self.inner:
            self.tally.received += len(piece)
            yield piece

    async def aclose(self) -> None:
        await self.inner.aclose()


class CountingTransport(httpx.AsyncBaseTransport):
    """The SDK's HTTP transport (one per client: a pool belongs to one event loop), counting block reads."""

    def __init__(self, tally: Tally) -> None:
        self.inner = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=256, max_keepalive_connections=64))
        self.tally = tally

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "GET" and request.url.path.startswith("/v1/blocks/"):
            assert isinstance(response.stream, httpx.AsyncByteStream)
            self.tally.requests += 1
            response.stream = CountedStream(response.stream, self.tally)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Sample:
    """Counters at one instant; a measurement is the difference of two."""

    wall: float
    client_cpu: float
    cluster_cpu: float
    datanode_sent: int
    local_read: int
    block_reads: int
    received: int


class Probe:
    """Takes samples of this process and of the cluster's processes."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.datanode_pids = [node.pid for node in cluster.datanodes]
        self.server_pids = [cluster.namenode.pid, *self.datanode_pids]
        self.tally = Tally()

    def sample(self) -> Sample:
        return Sample(
            wall=time.perf_counter(),
            client_cpu=own_cpu(),
            cluster_cpu=proc_cpu(self.server_pids),
            datanode_sent=sum(proc_io(pid, "wchar") for pid in self.datanode_pids),
            local_read=proc_io("self", "rchar"),
            block_reads=self.tally.requests,
            received=self.tally.received,
        )


@dataclass
class Row:
    front_end: str
    operation: str
    seconds: float
    mb_per_s: float
    client_cpu_s_per_gib: float
    cluster_cpu_s_per_gib: float
    datanode_sent_ratio: float | None = None
    block_reads: int | None = None
    blocks: int | None = None


def measure(probe: Probe, front_end: str, operation: str, size: int, action: Callable[[], object]) -> Row:
    if operation == "read":
        drop_caches()
    before = probe.sample()
    action()
    after = probe.sample()
    seconds = after.wall - before.wall
    gib = size / GIB
    sent = after.datanode_sent - before.datanode_sent
    return Row(
        front_end,
        operation,
        round(seconds, 3),
        round(size / seconds / MB, 1),
        round((after.client_cpu - before.client_cpu) / gib, 2),
        round((after.cluster_cpu - before.cluster_cpu) / gib, 2),
        round(sent / size, 3) if operation == "read" else None,
        after.block_reads - before.block_reads if operation == "read" else None,
    )


# --- the front ends -----------------------------------------------------------------------------


def drain(handle: Any) -> None:
    while handle.read(CHUNK):
        pass


def drain_file(path: Path) -> None:
    with path.open("rb", buffering=0) as handle:
        drain(handle)


class FrontEnd(Protocol):
    name: str

    def write(self, source: Path, remote: str) -> None: ...

    def read(self, remote: str) -> None: ...

    def close(self) -> None: ...


class LocalDisk:
    name = "local disk"

    def __init__(self, base: Path) -> None:
        self.base = base

    def write(self, source: Path, remote: str) -> None:
        with source.open("rb") as src, (self.base / "baseline.bin").open("wb") as out:
            while chunk := src.read(CHUNK):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())

    def read(self, remote: str) -> None:
        buffer = bytearray(CHUNK)
        with (self.base / "baseline.bin").open("rb", buffering=0) as handle:
            while handle.readinto(buffer):
                pass

    def close(self) -> None:
        (self.base / "baseline.bin").unlink(missing_ok=True)


@dataclass
class Sdk:
    fs: DFSClient
    replication: int
    block_size: int
    name: str = "SDK (DFSClient put/get)"

    def write(self, source: Path, remote: str) -> None:
        self.fs.put(source, remote, overwrite=True, replication=self.replication, block_size=self.block_size)

    def read(self, remote: str) -> None:
        with Path(os.devnull).open("wb") as null:
            self.fs.get(remote, null)

    def close(self) -> None:
        """The client belongs to the caller."""


@dataclass
class FsspecDfs:
    base_url: str  # dfs://host:port
    options: dict[str, Any]
    name: str = "fsspec dfs://"

    def write(self, source: Path, remote: str) -> None:
        with source.open("rb") as src, fsspec.open(self.base_url + remote, "wb", **self.options) as out:
            shutil.copyfileobj(src, out, CHUNK)

    def read(self, remote: str) -> None:
        with fsspec.open(self.base_url + remote, "rb", **self.options) as handle:
            drain(handle)

    def close(self) -> None:
        """fsspec caches the file system instance, and with it an SDK client and its I/O thread."""
        fsspec.open(self.base_url + "/", **self.options).fs.close()


@dataclass
class HdfsCli:
    client: InsecureClient
    session: requests.Session
    replication: int
    block_size: int
    name: str = "WebHDFS: HdfsCLI"

    def write(self, source: Path, remote: str) -> None:
        with source.open("rb") as src:
            self.client.write(remote, data=src, overwrite=True, replication=self.replication, blocksize=self.block_size)

    def read(self, remote: str) -> None:
        with self.client.read(remote, chunk_size=CHUNK) as reader:
            for _ in reader:
                pass

    def close(self) -> None:
        self.session.close()


@dataclass
class FsspecWebHdfs:
    fs: Any  # fsspec.implementations.webhdfs.WebHDFS
    replication: int
    name: str = "WebHDFS: fsspec webhdfs"

    def write(self, source: Path, remote: str) -> None:
        with source.open("rb") as src, self.fs.open(remote, "wb", replication=self.replication) as out:
            shutil.copyfileobj(src, out, CHUNK)

    def read(self, remote: str) -> None:
        with self.fs.open(remote, "rb") as handle:
            drain(handle)

    def close(self) -> None:
        self.fs.session.close()


# --- parquet ------------------------------------------------------------------------------------


@dataclass
class ParquetRow:
    reader: str
    seconds: float
    useful_mb: float
    useful_mb_per_s: float
    fetched_mb: float
    fetched_of_file: float
    client_received_mb: float | None = None
    block_requests: int | None = None


def make_parquet(path: Path, size: int, row_group_bytes: int) -> None:
    """COLUMNS float64 columns of random values, uncompressed, one row group per write."""
    rows_per_group = row_group_bytes // (8 * COLUMNS)
    rng = np.random.default_rng(7)
    schema = pa.schema([(f"c{i}", pa.float64()) for i in range(COLUMNS)])
    with pq.ParquetWriter(path, schema, compression="none", use_dictionary=False) as writer:
        for _ in range(max(1, round(size / row_group_bytes))):
            table = pa.table({f"c{i}": rng.random(rows_per_group) for i in range(COLUMNS)}, schema=schema)
            writer.write_table(table, row_group_size=rows_per_group)


def column_bytes(path: Path, column: str) -> int:
    """Bytes of one column's chunks in the file: what a reader of that column needs."""
    metadata = pq.ParquetFile(path).metadata
    index = metadata.schema.names.index(column)
    return sum(metadata.row_group(g).column(index).total_compressed_size for g in range(metadata.num_row_groups))


def parquet_reads(probe: Probe, local: Path, remote: str, namenode: str) -> list[ParquetRow]:
    """One column read from the local file, then through dfs:// (both with the page cache dropped)."""
    file_size = local.stat().st_size
    useful = column_bytes(local, READ_COLUMN)
    drop_caches()
    before = probe.sample()
    rows_local = pq.read_table(local, columns=[READ_COLUMN]).num_rows
    after = probe.sample()
    results = [parquet_row("pyarrow, local file", before, after, after.local_read - before.local_read, useful)]
    fs = DFSFileSystem(
        namenode=namenode, client_options={"transport": CountingTransport(probe.tally)}, skip_instance_cache=True
    )
    try:
        drop_caches()
        before = probe.sample()
        # The same read as read_table(remote, filesystem=fs), but on a file we close ourselves:
        # given a path, pyarrow lets go of the file from an I/O thread ~0.1 s after returning,
        # which races fs.close() below (the SDK then logs errors from its loop's shutdown).
        with fs.open(remote, "rb") as handle:
            rows_remote = pq.read_table(handle, columns=[READ_COLUMN]).num_rows
        after = probe.sample()
    finally:
        fs.close()
    if rows_remote != rows_local:
        raise RuntimeError(f"dfs:// read {rows_remote} rows, the local file has {rows_local}")
    result = parquet_row("pyarrow, dfs://", before, after, after.datanode_sent - before.datanode_sent, useful)
    result.client_received_mb = round((after.received - before.received) / MB, 1)
    result.block_requests = after.block_reads - before.block_reads
    results.append(result)
    for row in results:
        row.fetched_of_file = round(row.fetched_mb * MB / file_size, 4)
    return results


def parquet_row(reader: str, before: Sample, after: Sample, fetched: int, useful: int) -> ParquetRow:
    seconds = after.wall - before.wall
    return ParquetRow(
        reader, round(seconds, 3), round(useful / MB, 1), round(useful / seconds / MB, 1), round(fetched / MB, 1), 0.0
    )


# --- the run ------------------------------------------------------------------------------------


def front_ends(
    args: argparse.Namespace, base: Path, cluster: LocalCluster, fs: DFSClient, probe: Probe
) -> list[FrontEnd]:
    block_size = args.block_size_mib * MIB
    port = cluster.namenode.port
    user = getpass.getuser()
    session = requests.Session()
    options = {
        "replication": args.replication,
        "default_block_size": block_size,
        "user": user,
        "client_options": {"transport": CountingTransport(probe.tally)},
    }
    return [
        LocalDisk(base),
        Sdk(fs, args.replication, block_size),
        FsspecDfs(f"dfs://127.0.0.1:{port}", options),
        HdfsCli(InsecureClient(cluster.url, user=user, session=session), session, args.replication, block_size),
        FsspecWebHdfs(fsspec.filesystem("webhdfs", host="127.0.0.1", port=port, user=user), args.replication),
    ]


def measure_front_end(
    probe: Probe, front_end: FrontEnd, fs: DFSClient, source: Path, remote: str, size: int
) -> list[Row]:
    """Write the source through `front_end`, read it back, and remove it (the disk fills otherwise)."""
    drain_file(source)  # into the page cache: the write figures are about the target, not the source
    write = measure(probe, front_end.name, "write", size, lambda: front_end.write(source, remote))
    if not isinstance(front_end, LocalDisk):
        write.blocks = len(fs.block_locations(remote).blocks)
    read = measure(probe, front_end.name, "read", size, lambda: front_end.read(remote))
    if not isinstance(front_end, Sdk | FsspecDfs):
        read.block_reads = None  # not through an SDK client of this process
    if isinstance(front_end, LocalDisk):
        read.datanode_sent_ratio = None
    else:
        fs.delete(remote)
    return [write, read]


def run(args: argparse.Namespace) -> tuple[list[Row], list[ParquetRow]]:
    size = args.size_mib * MIB
    base = Path(tempfile.mkdtemp(prefix="dfs-ecosystem-", dir=args.dir))
    cluster = LocalCluster(base / "cluster", datanodes=args.datanodes)
    rows: list[Row] = []
    try:
        cluster.start()
        probe = Probe(cluster)
        source = base / "source.bin"
        make_source(source, size)
        with DFSClient(cluster.url, transport=CountingTransport(probe.tally)) as fs:
            for number, front_end in enumerate(front_ends(args, base, cluster, fs, probe)):
                remote = f"/bench/ecosystem{number}.bin"
                try:
                    rows.extend(measure_front_end(probe, front_end, fs, source, remote, size))
                finally:
                    front_end.close()
            source.unlink()
            table = base / "table.parquet"
            make_parquet(table, args.parquet_mib * MIB, args.row_group_mib * MIB)
            fs.put(table, "/bench/table.parquet", replication=args.replication, block_size=args.block_size_mib * MIB)
            parquet = parquet_reads(probe, table, "/bench/table.parquet", cluster.url)
    finally:
        DFSFileSystem.clear_instance_cache()
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
    return rows, parquet


def render(title: str, headers: list[str], cells: list[list[str]], left: int = 1) -> Table:
    table = Table(title=title)
    for number, header in enumerate(headers):
        table.add_column(header, justify="left" if number < left else "right")
    for row in cells:
        table.add_row(*row)
    return table


def print_tables(args: argparse.Namespace, rows: list[Row], parquet: list[ParquetRow]) -> None:
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # a pipe or log file would otherwise get 80 columns
    console.print(
        f"{args.size_mib} MiB file, replication {args.replication}, {args.datanodes} DataNodes, "
        f"{args.block_size_mib} MiB blocks, cold reads (cache drop): {drop_caches()}"
    )
    disk = {row.operation: row.mb_per_s for row in rows if row.front_end == LocalDisk.name}
    headers = ["front end", "op", "seconds", "MB/s", "vs disk", "client CPU s/GiB", "servers CPU s/GiB"]
    cells = [
        [
            row.front_end,
            row.operation,
            f"{row.seconds:.2f}",
            f"{row.mb_per_s:,.1f}",
            f"{row.mb_per_s / disk[row.operation]:.2f}",
            f"{row.client_cpu_s_per_gib:.2f}",
            f"{row.cluster_cpu_s_per_gib:.2f}" if row.front_end != LocalDisk.name else "-",
            _or_dash(row.datanode_sent_ratio, ".3f"),
            _or_dash(row.block_reads, "d"),
            _or_dash(row.blocks, "d"),
        ]
        for row in rows
    ]
    console.print(
        render("Throughput (MB = 10^6 bytes)", [*headers, "DN sent / size", "block reads", "blocks"], cells, left=2)
    )
    headers = ["reader", "seconds", "column MB", "column MB/s", "fetched MB", "fetched / file"]
    cells = [
        [
            result.reader,
            f"{result.seconds:.2f}",
            f"{result.useful_mb:,.1f}",
            f"{result.useful_mb_per_s:,.1f}",
            f"{result.fetched_mb:,.1f}",
            f"{result.fetched_of_file:.3f}",
            _or_dash(result.client_received_mb, ",.1f"),
            _or_dash(result.block_requests, "d"),
        ]
        for result in parquet
    ]
    title = f"Parquet: one of {COLUMNS} float64 columns, {args.parquet_mib} MiB file"
    console.print(render(title, [*headers, "client received MB", "block reads"], cells))
    console.print(
        "fetched: local = bytes this process read from the file (rchar); dfs:// = bytes the DataNodes wrote to "
        "their sockets (wchar), packet checksums and HTTP framing included."
    )


def _or_dash(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--replication", type=int, default=3)
    parser.add_argument("--datanodes", type=int, default=3)
    parser.add_argument("--block-size-mib", type=int, default=128)
    parser.add_argument("--parquet-mib", type=int, default=None, help="Parquet file size (default: --size-mib).")
    parser.add_argument("--row-group-mib", type=int, default=128)
    parser.add_argument("--dir", default=None, help="Where the cluster and files live (default: $TMPDIR).")
    parser.add_argument("--json", action="store_true", help="Print one JSON line instead of tables.")
    args = parser.parse_args()
    args.parquet_mib = args.parquet_mib or args.size_mib
    args.row_group_mib = min(args.row_group_mib, args.parquet_mib)
    rows, parquet = run(args)
    if args.json:
        print(
            json.dumps(
                {"args": vars(args), "throughput": [asdict(r) for r in rows], "parquet": [asdict(p) for p in parquet]}
            )
        )
        return
    print_tables(args, rows, parquet)


if __name__ == "__main__":
    main()
