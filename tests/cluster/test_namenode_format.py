"""`dfs namenode format`, `upgrade` and `check` as an operator runs them (real subprocesses), and
NameNode start-ups racing on one fresh database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, inspect, select, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from namenode.db import schema
from namenode.db.models import ROOT_INODE_ID, ClusterRow, Inode
from tests.conftest import BACKENDS, backend_database

pytestmark = pytest.mark.cluster

#: A port nothing listens on (below 1024, and not PostgreSQL's): connecting is refused at once.
UNREACHABLE_URL = "postgresql+psycopg://dfs:secret@127.0.0.1:9/nowhere"


@dataclass
class Target:
    """A metadata database, and the `dfs namenode` options that name it."""

    url: str
    options: list[str]

    def engine(self) -> Engine:
        return create_engine(self.url, poolclass=NullPool)


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """SQLite through `--data-dir` (the default file in it), PostgreSQL through `--db`: a fresh database."""
    data_dir = tmp_path / "nn"
    data_dir.mkdir()
    with backend_database(request.param, f"sqlite:///{data_dir / 'metadata.db'}") as url:
        assert url is not None
        yield Target(url, ["--data-dir", str(data_dir)] if request.param == "sqlite" else ["--db", url])


def namenode(*args: str) -> subprocess.CompletedProcess[str]:
    """`dfs namenode ARGS...`, with no DFS_NAMENODE_* settings inherited from the test's environment."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("DFS_NAMENODE_")}
    return subprocess.run(
        [sys.executable, "-m", "client.cli", "namenode", *args], capture_output=True, text=True, env=env, timeout=120
    )


def succeeds(*args: str) -> str:
    result = namenode(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def fails(*args: str) -> str:
    """The one line a refused command prints on stderr (exit status 1, no traceback)."""
    result = namenode(*args)
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr


def stored_cluster_id(target: Target) -> str | None:
    engine = target.engine()
    try:
        with Session(engine) as session:
            return session.scalar(select(ClusterRow.cluster_id))
    finally:
        engine.dispose()


def inode_names(target: Target) -> list[str]:
    engine = target.engine()
    try:
        with Session(engine) as session:
            return list(session.scalars(select(Inode.name).order_by(Inode.id)))
    finally:
        engine.dispose()


def revision(target: Target) -> str | None:
    engine = target.engine()
    try:
        return schema.current_revision(engine)
    finally:
        engine.dispose()


def test_format_creates_the_schema_and_a_namespace(target: Target) -> None:
    cluster_id = succeeds("format", *target.options).strip()
    assert cluster_id.startswith("CID-") and len(cluster_id) == len("CID-") + 36
    assert stored_cluster_id(target) == cluster_id
    assert revision(target) == schema.head_revision()
    engine = target.engine()
    try:
        with Session(engine) as session:
            root = session.get(Inode, ROOT_INODE_ID)
            assert root is not None and root.is_dir and root.parent_id is None
            assert root.owner == schema.current_os_user() and root.group == "supergroup"
            assert session.scalar(select(func.count()).select_from(Inode)) == 1
    finally:
        engine.dispose()


def test_a_second_format_is_refused_and_changes_nothing(target: Target) -> None:
    cluster_id = succeeds("format", *target.options).strip()
    message = fails("format", *target.options, "--cluster-id", "CID-other")
    assert f"already holds namespace {cluster_id}" in message and "--force" in message
    assert message.startswith("dfs namenode format: ")
    assert stored_cluster_id(target) == cluster_id


def test_force_erases_every_table_and_formats_anew(target: Target) -> None:
    first = succeeds("format", *target.options).strip()
    engine = target.engine()
    try:
        with Session(engine) as session, session.begin():
            session.add(
                Inode(
                    parent_id=ROOT_INODE_ID, name="old", is_dir=True, mode=0o755, owner="u", group="g", mtime=0, atime=0
                )
            )
        with engine.begin() as connection:  # a table no revision knows: --force drops every table
            connection.execute(text("CREATE TABLE leftover (x INTEGER)"))
    finally:
        engine.dispose()

    second = succeeds("format", *target.options, "--force").strip()
    assert second != first and second.startswith("CID-")
    assert stored_cluster_id(target) == second
    assert inode_names(target) == [""]  # only the new root
    engine = target.engine()
    try:
        assert not inspect(engine).has_table("leftover")
    finally:
        engine.dispose()

    assert succeeds("format", *target.options, "--force", "--cluster-id", "CID-chosen") == "CID-chosen\n"
    assert stored_cluster_id(target) == "CID-chosen"


def test_format_checks_the_cluster_id(target: Target) -> None:
    result = namenode("format", *target.options, "--cluster-id", "has space")
    assert result.returncode == 2 and "--cluster-id" in result.stderr
    # Refused before touching the database (or, for SQLite, making its directory).
    if target.options[0] == "--data-dir":
        assert not (Path(target.options[1]) / "metadata.db").exists()
    else:
        assert revision(target) is None


def test_upgrade_brings_an_older_schema_to_head(target: Target) -> None:
    engine = target.engine()
    try:
        schema.upgrade(engine, "0004")
        with Session(engine) as session, session.begin():
            cluster_id = schema.format_namespace(session)
    finally:
        engine.dispose()
    assert revision(target) == "0004"

    head = schema.head_revision()
    assert succeeds("upgrade", *target.options) == f"upgraded schema from 0004 to {head}\n"
    assert revision(target) == head
    assert stored_cluster_id(target) == cluster_id  # the namespace is kept
    assert succeeds("upgrade", *target.options) == f"schema already at head ({head})\n"
    # An upgraded database is formatted: format still refuses it.
    assert f"already holds namespace {cluster_id}" in fails("format", *target.options)


def test_upgrade_refuses_a_schema_newer_than_the_code(target: Target) -> None:
    succeeds("format", *target.options)
    engine = target.engine()
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    assert "Can't locate revision identified by '9999'" in fails("upgrade", *target.options)
    assert revision(target) == "9999"


def test_upgrade_refuses_a_database_without_a_namespace(target: Target) -> None:
    message = fails("upgrade", *target.options)
    assert message.startswith("dfs namenode upgrade: ")
    assert "dfs namenode format" in message or "no metadata database" in message
    assert revision(target) is None


def test_upgrade_does_not_create_a_database_in_a_mistyped_directory(tmp_path: Path) -> None:
    message = fails("upgrade", "--data-dir", str(tmp_path / "typo"))
    assert message == f"dfs namenode upgrade: no metadata database at {tmp_path / 'typo' / 'metadata.db'}\n"
    assert not (tmp_path / "typo").exists()


def test_check_passes_a_fresh_namespace_and_lists_damage(target: Target) -> None:
    succeeds("format", *target.options)
    assert succeeds("check", *target.options).endswith(": consistent (1 inodes, 0 files, 0 blocks)\n")
    engine = target.engine()
    try:  # a file whose length its (missing) blocks do not add up to, as a torn write would leave
        with Session(engine) as session, session.begin():
            session.add(
                Inode(
                    parent_id=ROOT_INODE_ID,
                    name="torn",
                    is_dir=False,
                    mode=0o644,
                    owner="u",
                    group="g",
                    mtime=0,
                    atime=0,
                    replication=3,
                    block_size=1024,
                    length=10,
                )
            )
    finally:
        engine.dispose()
    result = namenode("check", *target.options)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert "length 10, but its blocks add up to 0" in lines[0]
    assert lines[-1].endswith(": 1 violations (2 inodes, 1 files, 0 blocks)")


def test_check_refuses_a_database_without_a_namespace(target: Target, tmp_path: Path) -> None:
    message = fails("check", *target.options)
    assert "holds no namespace" in message or "no metadata database" in message
    assert fails("check", "--data-dir", str(tmp_path / "typo")).startswith("dfs namenode check: no metadata database")
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("command", ["format", "upgrade", "check"])
def test_a_database_that_cannot_be_used_is_one_line(command: str, tmp_path: Path) -> None:
    unreachable = fails(command, "--db", UNREACHABLE_URL)
    assert unreachable.startswith(f"dfs namenode {command}: cannot use postgresql+psycopg://dfs:***@127.0.0.1:9/")
    assert "secret" not in unreachable
    assert "bad database URL" in fails(command, "--db", "not a url")
    assert "bad database URL" in fails(command, "--db", "nosuchdialect://host/db")
    # A malformed URL is not echoed back: it may carry a password.
    assert "hunter2" not in fails(command, "--db", "postgresql+psycopg://u:hunter2@host:port/db")
    if command == "format":
        assert "cannot use sqlite:///" in fails(command, "--db", f"sqlite:///{tmp_path}/no/such/dir/m.db")


def test_the_server_refuses_an_unreachable_database_in_one_line(tmp_path: Path) -> None:
    message = fails("--port", "0", "--data-dir", str(tmp_path), "--db", UNREACHABLE_URL)
    assert message.startswith("dfs namenode: cannot use postgresql+psycopg://dfs:***@127.0.0.1:9/")


def test_server_options_do_not_go_with_a_command(tmp_path: Path) -> None:
    result = namenode("--port", "0", "format", "--data-dir", str(tmp_path))
    assert result.returncode == 2 and "server options do not go with a command" in result.stderr
    assert not (tmp_path / "metadata.db").exists()


#: One NameNode's start-up (what `create_app`'s lifespan runs before serving), held at a barrier so
#: that every process reaches the database at the same moment.
STARTUP = """
import sys, time
from pathlib import Path
from namenode.app import prepare_database
from namenode.config import NameNodeSettings
from namenode.db.database import Database

url, ready, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
db = Database(url)
ready.touch()
deadline = time.monotonic() + 60
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.001)
try:
    print(prepare_database(db, NameNodeSettings(db_url=url)))
finally:
    db.close()
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_start_ups_agree_on_one_namespace(backend: str, tmp_path: Path) -> None:
    """Start-ups on one fresh database take turns under the schema lock: all succeed, the first
    upgrades and formats, the others read its cluster id."""
    processes = 3
    with backend_database(backend, f"sqlite:///{tmp_path / 'metadata.db'}") as url:
        assert url is not None
        go = tmp_path / "go"
        ready = [tmp_path / f"ready{i}" for i in range(processes)]
        env = {key: value for key, value in os.environ.items() if not key.startswith("DFS_NAMENODE_")}
        started = [
            subprocess.Popen(
                [sys.executable, "-c", STARTUP, url, str(ready[i]), str(go)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for i in range(processes)
        ]
        try:
            deadline = time.monotonic() + 60
            while not all(path.exists() for path in ready):
                assert time.monotonic() < deadline, "start-up processes never got ready"
                assert all(process.poll() is None for process in started)
                time.sleep(0.01)
            go.touch()
            outcomes = [process.communicate(timeout=120) for process in started]
        finally:
            for process in started:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        for process, (_, stderr) in zip(started, outcomes, strict=True):
            assert process.returncode == 0, stderr
        cluster_ids = {stdout.splitlines()[-1] for stdout, _ in outcomes}  # after any log lines
        assert len(cluster_ids) == 1
        (cluster_id,) = cluster_ids
        target = Target(url, [])
        assert stored_cluster_id(target) == cluster_id
        assert inode_names(target) == [""]
        assert revision(target) == schema.head_revision()
