#!/usr/bin/env python3
"""NameNode operation costs at 1 thousand and at 1 million files: they should stay flat.

    .venv/bin/python bench/namespace_scale.py [--files 1000000] [--ops 2000] [--clients 8]
                                               [--postgres URL] [--quick] [--no-block-report] [--dir DIR]

Fills the namespace in stages: 1,000 files, then `--files` in all (1,000 directories of 1,000
files under /data, each file one complete block with finalized replicas on 3 DataNodes). Filling
through HTTP would take hours, so rows go straight into the NameNode's database with bulk
INSERTs while the NameNode is stopped; it is started again (schema at head) for each stage. The
3 DataNodes are fake: rows for the replicas, and a task that registers and heartbeats them with
the cluster secret, so block locations name live replicas. At each size, `--clients` concurrent
httpx clients (the SDK's headers, as user `bench`, not the superuser) run `--ops` operations of
each kind against the real NameNode process:

  stat        GET status of a random file
  open        GET block locations of a random file (the /v1 route the SDK reads with)
  create      create + complete of an empty file
  mkdir       mkdirs of a new directory
  rename      rename of a file created above, in its directory
  list page   one 1,000-entry page of /data/d00000

and prints ops/s, p50/p99 latency and the NameNode process's CPU time per operation (which, unlike
latency, a busy machine does not inflate) per kind and size, NameNode RSS (VmRSS and peak VmHWM of
the process), time to fill, to start, and the database's size. At the largest size one fake DataNode
then sends a full block report of every block (pages of 50,000, as a DataNode does) while the
clients stat; the stat latency during the report is printed beside the one just before it.

SQLite by default (in a temporary directory); `--postgres URL` uses that server instead, in a
database of its own (created and dropped here). `--quick` is 20,000 files and 500 operations.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

import httpx
from sqlalchemy import Connection, Engine, Table, create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import proc_cpu
from client.local_cluster import NodeProcess
from client.protocol.client_namenode import (
    AdminRoutes,
    CompleteRequest,
    CreateRequest,
    MkdirsRequest,
    RenameRequest,
    Routes,
    SafeModeAction,
    SafeModeRequest,
)
from client.protocol.common import HEADER_CLIENT_NAME, HEADER_USER
from client.protocol.datanode_namenode import MAX_REPORT_PAGE, HeartbeatRequest, RegisterRequest
from client.protocol.security import HEADER_CLUSTER_AUTH, cluster_request_key, sign_request
from namenode.db.models import ROOT_INODE_ID, Base, Block, Inode, Replica
from namenode.db.schema import current_os_user
from namenode.states import BLOCK_COMPLETE, REPLICA_FINALIZED, STATE_LIVE
from server_common.cluster_secret import read_secret_file

FILES_PER_DIR = 1000
SMALL = 1000
BATCH = 10_000
FILE_LENGTH = 1024 * 1024
USER = "bench"
DATANODES = [f"fake-dn-{n}" for n in range(1, 4)]
KINDS = ["stat", "open", "create", "mkdir", "rename", "list page"]
PG_DATABASE = "dfs_bench_namespace_scale"
INODES, BLOCKS, REPLICAS, DATANODE_ROWS = (
    Base.metadata.tables[t] for t in ("inodes", "blocks", "replicas", "datanodes")
)


def dir_path(d: int) -> str:
    return f"/data/d{d:05d}"


def file_path(i: int) -> str:
    return f"{dir_path(i // FILES_PER_DIR)}/f{i % FILES_PER_DIR:05d}"


# --- filling the database ----------------------------------------------------------------------


def _next_id(engine: Engine, column: Any) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.max(column))) or 0) + 1


def _inode(inode_id: int, parent: int, name: str, *, is_dir: bool, now_ms: int) -> dict[str, Any]:
    return {
        "id": inode_id,
        "parent_id": parent,
        "name": name,
        "is_dir": is_dir,
        "mode": 0o755 if is_dir else 0o644,
        "owner": USER,
        "group_name": "bench",
        "mtime": now_ms,
        "atime": now_ms,
        "replication": 0 if is_dir else len(DATANODES),
        "block_size": 0 if is_dir else 128 * 1024 * 1024,
        "length": 0 if is_dir else FILE_LENGTH,
        "under_construction": False,
    }


def fill(engine: Engine, start: int, stop: int) -> None:
    """Files [start, stop) (start: a multiple of FILES_PER_DIR) with their directories, one block
    each and its replicas on every fake DataNode, in batches of BATCH files per transaction."""
    now = time.time()
    now_ms = int(now * 1000)
    next_inode = _next_id(engine, Inode.id)
    next_block = _next_id(engine, Block.id)
    with engine.begin() as connection:
        if start == 0:
            connection.execute(insert(DATANODE_ROWS), [_datanode_row(node, now) for node in DATANODES])
            connection.execute(insert(INODES), [_inode(next_inode, ROOT_INODE_ID, "data", is_dir=True, now_ms=now_ms)])
            next_inode += 1
        data_id = connection.execute(
            select(Inode.id).where(Inode.parent_id == ROOT_INODE_ID, Inode.name == "data")
        ).scalar_one()
        dirs = range(start // FILES_PER_DIR, -(-stop // FILES_PER_DIR))
        dir_ids = {d: next_inode + k for k, d in enumerate(dirs)}
        next_inode += len(dir_ids)
        rows = [_inode(i, data_id, f"d{d:05d}", is_dir=True, now_ms=now_ms) for d, i in dir_ids.items()]
        for chunk in _chunks(rows):
            connection.execute(insert(INODES), chunk)
    for low in range(start, stop, BATCH):
        high = min(stop, low + BATCH)
        with engine.begin() as connection:
            _fill_batch(
                connection, range(low, high), dir_ids, next_inode + low - start, next_block + low - start, now_ms
            )
    if engine.dialect.name == "postgresql":  # explicit ids do not advance sequences
        with engine.begin() as connection:
            for table in ("inodes", "blocks"):
                connection.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}")
                )


def _fill_batch(
    connection: Connection, files: range, dir_ids: dict[int, int], inode0: int, block0: int, now_ms: int
) -> None:
    inodes: list[dict[str, Any]] = []
    blocks: list[dict[str, Any]] = []
    replicas: list[dict[str, Any]] = []
    for n, i in enumerate(files):
        inode_id, block_id = inode0 + n, block0 + n
        inodes.append(
            _inode(inode_id, dir_ids[i // FILES_PER_DIR], f"f{i % FILES_PER_DIR:05d}", is_dir=False, now_ms=now_ms)
        )
        blocks.append(
            {
                "id": block_id,
                "inode_id": inode_id,
                "idx": 0,
                "offset": 0,
                "length": FILE_LENGTH,
                "gen_stamp": 1,
                "state": BLOCK_COMPLETE,
                "pipeline": "",
            }
        )
        replicas.extend(
            {
                "block_id": block_id,
                "datanode_id": node,
                "gen_stamp": 1,
                "length": FILE_LENGTH,
                "state": REPLICA_FINALIZED,
                "report_id": None,
            }
            for node in DATANODES
        )
    for table, rows in ((INODES, inodes), (BLOCKS, blocks), (REPLICAS, replicas)):
        bulk_insert(connection, table, rows)


def bulk_insert(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Executemany INSERTs of BATCH rows; on PostgreSQL one COPY (several times faster)."""
    if connection.dialect.name != "postgresql":
        for chunk in _chunks(rows):
            connection.execute(insert(table), chunk)
        return
    columns = list(rows[0])
    quoted = ", ".join(f'"{column}"' for column in columns)  # "offset" is a keyword
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(f"COPY {table.name} ({quoted}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[column] for column in columns])


def _datanode_row(node: str, now: float) -> dict[str, Any]:
    return {
        "id": node,
        "url": f"http://127.0.0.1:9/{node}",
        "rack": "/default-rack",
        "capacity": 10**13,
        "used": 0,
        "remaining": 10**13,
        "active_transfers": 0,
        "failed_volumes": 0,
        "last_heartbeat": now,
        "registered_at": now,
        "state": STATE_LIVE,
        "admin_state": "normal",
        "current_report_id": None,
        "version": "",
    }


def _chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), BATCH):
        yield rows[start : start + BATCH]


def database_bytes(engine: Engine, sqlite_file: Path | None) -> int:
    """The metadata database's size on disk (SQLite: the file and its WAL)."""
    if sqlite_file is not None:
        return sum(p.stat().st_size for p in sqlite_file.parent.glob(sqlite_file.name + "*"))
    with engine.connect() as connection:
        return int(connection.scalar(text("SELECT pg_database_size(current_database())")) or 0)


# --- the NameNode and its fake DataNodes --------------------------------------------------------


def namenode_process(base: Path, db_url: str | None) -> NodeProcess:
    args = ["--host", "127.0.0.1", "--data-dir", str(base / "namenode"), "--replication-interval", "3"]
    if db_url:
        args += ["--db", db_url]
    return NodeProcess("namenode", "namenode", args, base / "namenode.url", base / "namenode.log")


def proc_memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in bytes, from /proc/PID/status."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values


class FakeDatanodes:
    """Registers the fake DataNodes and heartbeats them, signed with the cluster secret as a
    DataNode signs (datanode.namenode_link), so the NameNode counts their replicas as live."""

    def __init__(self, http: httpx.AsyncClient, secret_file: Path) -> None:
        self.http = http
        self.key = cluster_request_key(read_secret_file(secret_file))

    async def post(self, route: str, content: bytes, timeout: float = 30.0) -> None:
        headers = {
            "content-type": "application/json",
            HEADER_CLUSTER_AUTH: sign_request(self.key, "POST", route, content),
        }
        response = await self.http.post(route, content=content, headers=headers, timeout=timeout)
        response.raise_for_status()

    async def register(self) -> None:
        for node in DATANODES:
            request = RegisterRequest(
                datanode_id=node,
                url=f"http://127.0.0.1:9/{node}",
                capacity=10**13,
                used=0,
                remaining=10**13,
                version="bench",
            )
            await self.post(Routes.REGISTER, request.model_dump_json().encode())

    async def heartbeat_forever(self, interval: float = 3.0) -> None:
        while True:
            for node in DATANODES:
                request = HeartbeatRequest(datanode_id=node, capacity=10**13, used=0, remaining=10**13)
                await self.post(Routes.HEARTBEAT, request.model_dump_json().encode())
            await asyncio.sleep(interval)

    async def full_report(self, node: str, block_ids: list[int]) -> float:
        """Every block of `node`, in pages as a DataNode sends them; returns the seconds it took."""
        started = time.perf_counter()
        pages = [block_ids[i : i + MAX_REPORT_PAGE] for i in range(0, len(block_ids), MAX_REPORT_PAGE)] or [[]]
        for number, page in enumerate(pages):
            # Written out rather than built as 50,000 models: the NameNode validates them all anyway.
            replicas = ",".join(
                f'{{"block_id":{b},"gen_stamp":1,"length":{FILE_LENGTH},"state":"finalized"}}' for b in page
            )
            last = "true" if number == len(pages) - 1 else "false"
            body = f'{{"datanode_id":"{node}","report_id":"bench-report","page":{number},"last":{last},'
            await self.post(Routes.BLOCK_REPORT, f'{body}"replicas":[{replicas}]}}'.encode(), timeout=600.0)
        return time.perf_counter() - started


# --- the operations -----------------------------------------------------------------------------


@dataclass
class Workload:
    """What the operations act on at one stage (`tag` keeps the names of stages apart)."""

    files: int
    tag: str
    rng: Random = field(default_factory=lambda: Random(8))

    def random_file(self) -> str:
        return file_path(self.rng.randrange(self.files))

    def new_entry(self, kind: str, i: int) -> str:
        """A new name in one of the filled directories, spread over all of them."""
        return f"{dir_path(i % -(-self.files // FILES_PER_DIR))}/{self.tag}-{kind}{i}"


Op = Callable[[httpx.AsyncClient, int], Awaitable[None]]


def _check(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.method} {response.request.url}: {response.status_code} {response.text}")
    return response


async def _post(http: httpx.AsyncClient, route: str, body: Any) -> httpx.Response:
    headers = {"content-type": "application/json"}
    return _check(await http.post(route, content=body.model_dump_json(), headers=headers))


def operations(work: Workload) -> dict[str, Op]:
    async def stat(http: httpx.AsyncClient, i: int) -> None:
        _check(await http.get(Routes.STATUS, params={"path": work.random_file()}))

    async def open_(http: httpx.AsyncClient, i: int) -> None:
        answer = _check(await http.get(Routes.LOCATIONS, params={"path": work.random_file(), "offset": 0})).json()
        if len(answer["blocks"]) != 1 or len(answer["blocks"][0]["locations"]) != len(DATANODES):
            raise RuntimeError(f"expected one block on {len(DATANODES)} DataNodes: {answer}")

    async def create(http: httpx.AsyncClient, i: int) -> None:
        path, client_name = work.new_entry("c", i), http.headers[HEADER_CLIENT_NAME]
        status = (await _post(http, Routes.CREATE, CreateRequest(path=path, client_name=client_name))).json()
        complete = CompleteRequest(path=path, file_id=status["file_id"], client_name=client_name)
        if not (await _post(http, Routes.COMPLETE, complete)).json()["completed"]:
            raise RuntimeError(f"complete of empty {path} did not complete")

    async def mkdir(http: httpx.AsyncClient, i: int) -> None:
        await _post(http, Routes.MKDIRS, MkdirsRequest(path=work.new_entry("m", i)))

    async def rename(http: httpx.AsyncClient, i: int) -> None:
        await _post(http, Routes.RENAME, RenameRequest(src=work.new_entry("c", i), dst=work.new_entry("r", i)))

    async def list_page(http: httpx.AsyncClient, i: int) -> None:
        answer = _check(await http.get(Routes.LIST, params={"path": dir_path(0), "limit": 1000})).json()
        if len(answer["entries"]) != min(1000, work.files):
            raise RuntimeError(f"a page of {len(answer['entries'])} entries")

    return dict(zip(KINDS, [stat, open_, create, mkdir, rename, list_page], strict=True))


# --- measuring ----------------------------------------------------------------------------------


@dataclass
class Latencies:
    seconds: list[float]
    wall: float
    #: CPU seconds the NameNode process spent meanwhile: unlike latency, not inflated by a busy machine.
    namenode_cpu: float = 0.0

    @property
    def cpu_ms_per_op(self) -> float:
        return self.namenode_cpu / len(self.seconds) * 1000 if self.seconds else 0.0

    @property
    def ops_per_s(self) -> float:
        return len(self.seconds) / self.wall if self.wall else 0.0

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


@dataclass
class Stage:
    files: int
    fill_s: float
    start_s: float
    db_bytes: int = 0
    kinds: dict[str, Latencies] = field(default_factory=dict)
    memory: dict[str, int] = field(default_factory=dict)
    #: At the largest size: (seconds, blocks, stat latencies just before and during the report, memory after).
    report: tuple[float, int, Latencies, Latencies, dict[str, int]] | None = None


async def run_kind(https: list[httpx.AsyncClient], ops: int, op: Op, pid: int) -> Latencies:
    """`ops` operations spread over the clients, each client one at a time."""
    latencies: list[float] = []

    async def client(number: int, http: httpx.AsyncClient) -> None:
        for i in range(number, ops, len(https)):
            started = time.perf_counter()
            await op(http, i)
            latencies.append(time.perf_counter() - started)

    started, cpu = time.perf_counter(), proc_cpu([pid])
    await asyncio.gather(*(client(n, http) for n, http in enumerate(https)))
    return Latencies(latencies, time.perf_counter() - started, proc_cpu([pid]) - cpu)


async def run_until(https: list[httpx.AsyncClient], op: Op, done: asyncio.Event, pid: int) -> Latencies:
    """The clients run `op` back to back until `done` is set."""
    latencies: list[float] = []

    async def client(number: int, http: httpx.AsyncClient) -> None:
        i = number
        while not done.is_set():
            started = time.perf_counter()
            await op(http, i)
            latencies.append(time.perf_counter() - started)
            i += len(https)

    started, cpu = time.perf_counter(), proc_cpu([pid])
    await asyncio.gather(*(client(n, http) for n, http in enumerate(https)))
    return Latencies(latencies, time.perf_counter() - started, proc_cpu([pid]) - cpu)


async def leave_safe_mode(http: httpx.AsyncClient) -> None:
    """As an operator would after a restart whose replicas were never reported (they were filled in)."""
    body = SafeModeRequest(action=SafeModeAction.LEAVE).model_dump_json()
    headers = {HEADER_USER: current_os_user(), "content-type": "application/json"}
    _check(await http.post(AdminRoutes.SAFEMODE, content=body, headers=headers))


async def measure(
    stage: Stage, url: str, secret_file: Path, pid: int, args: argparse.Namespace, *, report_from: str | None
) -> None:
    """Every kind at this stage; with `report_from` (the database URL), the block-report check after."""
    work = Workload(stage.files, tag=f"s{stage.files}")
    ops = operations(work)
    async with contextlib.AsyncExitStack() as stack:
        plain = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=600.0))
        datanodes = FakeDatanodes(plain, secret_file)
        await datanodes.register()
        await leave_safe_mode(plain)
        heartbeats = asyncio.create_task(datanodes.heartbeat_forever())
        https = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=url, timeout=60.0, headers={HEADER_USER: USER, HEADER_CLIENT_NAME: f"bench-client-{n}"}
                )
            )
            for n in range(args.clients)
        ]
        await run_kind(https, len(https), ops["stat"], pid)  # connections open before anything is timed
        for kind in KINDS:
            stage.kinds[kind] = await run_kind(https, args.ops, ops[kind], pid)
        stage.memory = proc_memory(pid)
        if report_from is not None:
            stage.report = await _report_check(datanodes, https, ops["stat"], report_from, pid, args.ops)
        heartbeats.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeats


async def _report_check(
    datanodes: FakeDatanodes, https: list[httpx.AsyncClient], stat: Op, db_url: str, pid: int, ops: int
) -> tuple[float, int, Latencies, Latencies, dict[str, int]]:
    """A full report of every replica of one DataNode while the clients stat."""
    engine = create_engine(db_url)
    with engine.connect() as connection:
        query = select(Replica.block_id).where(Replica.datanode_id == DATANODES[0]).order_by(Replica.block_id)
        block_ids = list(connection.scalars(query))
    engine.dispose()
    without = await run_kind(https, ops, stat, pid)  # just before, as the machine is now
    done = asyncio.Event()
    stats = asyncio.create_task(run_until(https, stat, done, pid))
    try:
        seconds = await datanodes.full_report(DATANODES[0], block_ids)
    finally:
        done.set()
    return seconds, len(block_ids), without, await stats, proc_memory(pid)


# --- running and reporting ----------------------------------------------------------------------


@contextlib.contextmanager
def database(args: argparse.Namespace, base: Path) -> Iterator[tuple[str, str | None]]:
    """(URL to fill through, URL the NameNode is given): SQLite in `base`, or a fresh PostgreSQL
    database on the `--postgres` server, dropped afterwards."""
    if not args.postgres:
        yield f"sqlite:///{base / 'namenode' / 'metadata.db'}", None
        return
    server = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {PG_DATABASE}"))
    url = make_url(args.postgres).set(database=PG_DATABASE).render_as_string(hide_password=False)
    try:
        yield url, url
    finally:
        with server.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"))
        server.dispose()


def run(args: argparse.Namespace) -> list[Stage]:
    sizes = sorted({min(SMALL, args.files), args.files})
    base = Path(tempfile.mkdtemp(prefix="dfs-bench-scale-", dir=args.dir))
    stages: list[Stage] = []
    try:
        with database(args, base) as (fill_url, namenode_url):
            namenode = namenode_process(base, namenode_url)
            namenode.start()  # formats the namespace (schema at head, root directory), then stops
            namenode.stop()
            engine = create_engine(fill_url)
            try:
                filled = 0
                for size in sizes:
                    stages.append(_stage(args, namenode, engine, filled, size, fill_url, base))
                    filled = size
            finally:
                namenode.stop()
                engine.dispose()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return stages


def _stage(
    args: argparse.Namespace, namenode: NodeProcess, engine: Engine, filled: int, size: int, url: str, base: Path
) -> Stage:
    started = time.perf_counter()
    fill(engine, filled, size)
    fill_s = time.perf_counter() - started
    started = time.perf_counter()
    namenode_url = namenode.start(timeout=1800)
    stage = Stage(files=size, fill_s=fill_s, start_s=time.perf_counter() - started)
    try:
        report_from = url if size == args.files and not args.no_block_report else None
        secret = base / "namenode" / "cluster.secret"
        asyncio.run(measure(stage, namenode_url, secret, namenode.pid, args, report_from=report_from))
    finally:
        namenode.stop()
    sqlite_file = None if args.postgres else base / "namenode" / "metadata.db"
    stage.db_bytes = database_bytes(engine, sqlite_file)
    return stage


def _cells(latencies: Latencies) -> str:
    return (
        f"{latencies.ops_per_s:,.0f} | {latencies.percentile_ms(0.5):.1f} | {latencies.percentile_ms(0.99):.1f} "
        f"| {latencies.cpu_ms_per_op:.2f}"
    )


def _mib(value: int) -> str:
    return f"{value / 2**20:,.0f} MiB"


def table(stages: list[Stage]) -> list[str]:
    """The markdown table: per kind, ops/s and p50/p99 ms at each size; then RSS, fill and size."""
    head = " | ".join(f"{s.files:,} files: ops/s | p50 ms | p99 ms | CPU ms/op" for s in stages)
    lines = [f"| operation | {head} |", "|---|" + "---:|---:|---:|---:|" * len(stages)]
    for kind in KINDS:
        cells = [_cells(s.kinds[kind]) for s in stages]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    extra: list[tuple[str, Callable[[Stage], str]]] = [
        ("NameNode RSS (VmRSS after the operations)", lambda s: _mib(s.memory["VmRSS"])),
        ("NameNode peak RSS (VmHWM)", lambda s: _mib(s.memory["VmHWM"])),
        ("time to fill (bulk INSERT; COPY on PostgreSQL)", lambda s: f"{s.fill_s:,.1f} s"),
        ("NameNode start (to listening)", lambda s: f"{s.start_s:,.1f} s"),
        ("database size", lambda s: _mib(s.db_bytes)),
    ]
    for name, value in extra:
        lines.append(f"| {name} | " + " | ".join(f"{value(s)} |  |  | " for s in stages) + " |")
    return lines


def report_table(stage: Stage) -> list[str]:
    """Stat latency without and during a full block report of every block of one DataNode."""
    assert stage.report is not None
    seconds, blocks, without, during, memory = stage.report
    pages = -(-blocks // MAX_REPORT_PAGE)
    return [
        "| stat | ops/s | p50 ms | p99 ms | NameNode CPU ms/op |",
        "|---|---:|---:|---:|---:|",
        f"| without a block report (just before it) | {_cells(without)} |",
        f"| during a full block report of {blocks:,} blocks ({pages} page{'s' if pages > 1 else ''}, "
        f"{seconds:,.1f} s) | {_cells(during)} |",
        f"| NameNode RSS after the report: {_mib(memory['VmRSS'])} (peak {_mib(memory['VmHWM'])}) | | | | |",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--ops", type=int, default=2000, help="Operations of each kind at each size.")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--postgres", default="", help="SQLAlchemy URL of a PostgreSQL server to use instead of SQLite."
    )
    parser.add_argument("--quick", action="store_true", help="20,000 files and 500 operations: a smoke test.")
    parser.add_argument("--no-block-report", action="store_true", help="Skip the block-report check.")
    parser.add_argument("--dir", default=None, help="Where the NameNode's data lives (default: $TMPDIR).")
    args = parser.parse_args(argv)
    if args.quick:
        args.files, args.ops = 20_000, 500
    backend = "PostgreSQL" if args.postgres else "SQLite"
    load_before = os.getloadavg()[0]
    stages = run(args)
    print(
        f"{backend}, {args.clients} clients, {args.ops:,} operations of each kind per size; "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    print("\n".join(table(stages)))
    if stages[-1].report is not None:
        print()
        print("\n".join(report_table(stages[-1])))


if __name__ == "__main__":
    main()
