#!/usr/bin/env python3
"""NameNode operation rates, as HDFS's NNThroughputBenchmark measures them, beside the ceiling of
the same HTTP stack measured in the same run.

    .venv/bin/python bench/metadata.py [--ops 2000] [--clients 1,8,32] [--postgres URL] [--json]

Starts a real NameNode process (SQLite in a temporary directory, WAL + synchronous=FULL, or
`--postgres URL` in a database of its own) without DataNodes, and `bench/empty_server.py`: the
servers' FastAPI + uvicorn set-up with routes that do nothing. For each number of concurrent
clients (httpx, one connection each, as user `bench`, not the superuser), `--ops` operations of
each kind:

  empty GET   GET /empty on the empty server: the ceiling for stat, open and list
  empty POST  POST /empty with a create-sized JSON body: the ceiling for the mutations
  create      create + complete of an empty file (two round trips, as HDFS's "create" counts them)
  mkdir       mkdirs of a new directory
  stat        status of a random one of 1,000 files
  open        block locations of a random one of those files
  list        one 1,000-entry page of their directory
  rename      rename of a file made by create
  delete      delete of a renamed file

and prints ops/s, p50/p99 latency, the server's CPU ms per operation, and each NameNode figure as a
share of its ceiling. No assertions: the machine is shared, compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from random import Random

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.namespace_scale import Latencies, Op, _check, _post, leave_safe_mode, run_kind
from client.local_cluster import NodeProcess
from client.protocol.client_namenode import (
    CompleteRequest,
    CreateRequest,
    DeleteRequest,
    MkdirsRequest,
    RenameRequest,
    Routes,
    SetAttributesRequest,
)
from client.protocol.common import HEADER_CLIENT_NAME, HEADER_USER
from namenode.db.schema import current_os_user

USER = "bench"
LISTED = 1000
#: Which ceiling each NameNode operation is measured against.
CEILING_OF = {
    "create": "empty POST",
    "mkdir": "empty POST",
    "stat": "empty GET",
    "open": "empty GET",
    "list": "empty GET",
    "rename": "empty POST",
    "delete": "empty POST",
}
KINDS = ["empty GET", "empty POST", *CEILING_OF]


@dataclass
class Round:
    clients: int
    kinds: dict[str, Latencies] = field(default_factory=dict)


def operations(root: str) -> dict[str, Op]:
    rng = Random(10)
    listed = f"{root}/listed"

    async def empty_get(http: httpx.AsyncClient, i: int) -> None:
        _check(await http.get("/empty", params={"path": f"{listed}/f{rng.randrange(LISTED)}"}))

    async def empty_post(http: httpx.AsyncClient, i: int) -> None:
        body = CreateRequest(path=f"{root}/c{i}", client_name=http.headers[HEADER_CLIENT_NAME])
        await _post(http, "/empty", body)

    async def create(http: httpx.AsyncClient, i: int) -> None:
        await create_empty(http, f"{root}/c{i}")

    async def mkdir(http: httpx.AsyncClient, i: int) -> None:
        await _post(http, Routes.MKDIRS, MkdirsRequest(path=f"{root}/m{i}"))

    async def stat(http: httpx.AsyncClient, i: int) -> None:
        _check(await http.get(Routes.STATUS, params={"path": f"{listed}/f{rng.randrange(LISTED)}"}))

    async def open_(http: httpx.AsyncClient, i: int) -> None:
        _check(await http.get(Routes.LOCATIONS, params={"path": f"{listed}/f{rng.randrange(LISTED)}", "offset": 0}))

    async def list_page(http: httpx.AsyncClient, i: int) -> None:
        answer = _check(await http.get(Routes.LIST, params={"path": listed, "limit": LISTED})).json()
        if len(answer["entries"]) != LISTED:
            raise RuntimeError(f"a page of {len(answer['entries'])} entries, expected {LISTED}")

    async def rename(http: httpx.AsyncClient, i: int) -> None:
        await _post(http, Routes.RENAME, RenameRequest(src=f"{root}/c{i}", dst=f"{root}/r{i}"))

    async def delete(http: httpx.AsyncClient, i: int) -> None:
        await _post(http, Routes.DELETE, DeleteRequest(path=f"{root}/r{i}"))

    ops = [empty_get, empty_post, create, mkdir, stat, open_, list_page, rename, delete]
    return dict(zip(KINDS, ops, strict=True))


async def create_empty(http: httpx.AsyncClient, path: str) -> None:
    client_name = http.headers[HEADER_CLIENT_NAME]
    status = (await _post(http, Routes.CREATE, CreateRequest(path=path, client_name=client_name))).json()
    complete = CompleteRequest(path=path, file_id=status["file_id"], client_name=client_name)
    if not (await _post(http, Routes.COMPLETE, complete)).json()["completed"]:
        raise RuntimeError(f"complete of empty {path} did not complete")


async def measure(namenode: NodeProcess, empty: NodeProcess, clients: int, ops: int) -> Round:
    assert namenode.url is not None and empty.url is not None
    root = f"/bench/c{clients}-{uuid.uuid4().hex[:6]}"
    result = Round(clients)
    async with contextlib.AsyncExitStack() as stack:

        async def connections(url: str) -> list[httpx.AsyncClient]:
            return [
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        base_url=url, timeout=120.0, headers={HEADER_USER: USER, HEADER_CLIENT_NAME: f"bench-{n}"}
                    )
                )
                for n in range(clients)
            ]

        admin = await stack.enter_async_context(
            httpx.AsyncClient(base_url=namenode.url, timeout=120.0, headers={HEADER_USER: current_os_user()})
        )
        await leave_safe_mode(admin)  # no DataNodes will ever report
        await _post(admin, Routes.MKDIRS, MkdirsRequest(path=f"{root}/listed"))
        await _post(admin, Routes.SET_ATTRIBUTES, SetAttributesRequest(path=root, owner=USER))
        await _post(admin, Routes.SET_ATTRIBUTES, SetAttributesRequest(path=f"{root}/listed", owner=USER))
        to_namenode, to_empty = await connections(namenode.url), await connections(empty.url)
        await run_kind(to_namenode, LISTED, lambda http, i: create_empty(http, f"{root}/listed/f{i}"), namenode.pid)
        kinds = operations(root)
        for kind, op in kinds.items():
            on_empty = kind.startswith("empty")
            https, pid = (to_empty, empty.pid) if on_empty else (to_namenode, namenode.pid)
            await run_kind(https, len(https), kinds["empty GET" if on_empty else "stat"], pid)  # connections warm
            result.kinds[kind] = await run_kind(https, ops, op, pid)
    return result


@contextlib.contextmanager
def database(postgres: str) -> Iterator[str | None]:
    """None (SQLite in the NameNode's data directory), or a fresh PostgreSQL database, dropped after."""
    if not postgres:
        yield None
        return
    name = f"dfs_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(args: argparse.Namespace) -> list[Round]:
    base = Path(tempfile.mkdtemp(prefix="dfs-bench-metadata-", dir=args.dir))
    try:
        with database(args.postgres) as db_url:
            nn_args = ["--data-dir", str(base / "namenode")]
            if db_url:
                nn_args += ["--db", db_url]
            namenode = NodeProcess(
                "namenode", "namenode", nn_args, base / "run" / "namenode.url", base / "logs" / "namenode.log"
            )
            empty = NodeProcess(
                "empty", "bench.empty_server", [], base / "run" / "empty.url", base / "logs" / "empty.log"
            )
            try:
                namenode.start()
                empty.start()
                return [asyncio.run(measure(namenode, empty, clients, args.ops)) for clients in args.clients]
            finally:
                empty.stop()
                namenode.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def table(rounds: list[Round]) -> list[str]:
    header = "| operation | " + " | ".join(f"{r.clients} client{'s' if r.clients > 1 else ''}" for r in rounds) + " |"
    lines = [header, "|---|" + "---:|" * len(rounds)]
    for kind in KINDS:
        cells = []
        for r in rounds:
            lat = r.kinds[kind]
            cell = f"{lat.ops_per_s:,.0f}/s, p50 {lat.percentile_ms(0.5):.1f} p99 {lat.percentile_ms(0.99):.1f} ms"
            if kind in CEILING_OF:
                cell += f" ({lat.ops_per_s / r.kinds[CEILING_OF[kind]].ops_per_s:.0%})"
            cell += f", {lat.cpu_ms_per_op:.2f} CPU ms"
            cells.append(cell)
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return lines


def as_json(rounds: list[Round]) -> list[dict[str, object]]:
    return [
        {
            "clients": r.clients,
            **{
                kind: {
                    "ops_per_s": lat.ops_per_s,
                    "p50_ms": lat.percentile_ms(0.5),
                    "p99_ms": lat.percentile_ms(0.99),
                    "server_cpu_ms_per_op": lat.cpu_ms_per_op,
                }
                for kind, lat in r.kinds.items()
            },
        }
        for r in rounds
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=2000, help="Operations of each kind per client count.")
    parser.add_argument("--clients", type=lambda v: [int(n) for n in v.split(",")], default=[1, 8, 32])
    parser.add_argument("--postgres", default="", help="SQLAlchemy URL of a PostgreSQL server (default: SQLite).")
    parser.add_argument("--dir", default=None, help="Where the NameNode's data lives (default: $TMPDIR).")
    parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    rounds = run(args)
    if args.json:
        print(json.dumps(as_json(rounds), indent=2))
        return
    backend = "PostgreSQL" if args.postgres else "SQLite (synchronous=FULL)"
    print(
        f"NameNode on {backend}, {args.ops:,} operations of each kind; "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; (share of the HTTP-stack ceiling)"
    )
    print("\n".join(table(rounds)))


if __name__ == "__main__":
    main()
