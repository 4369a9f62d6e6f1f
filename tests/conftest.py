"""Shared fixtures: one MiniCluster per metadata backend for the whole session.

PostgreSQL runs when DFS_TEST_POSTGRES_URL names a server we may create databases on
(`.ci/run` starts one); each cluster gets a fresh database, dropped afterwards. With
DFS_REQUIRE_POSTGRES=1 a missing server is an error, not a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests import tls_mode
from tests.minicluster import MiniCluster

BACKENDS = ["sqlite", "postgresql"]

# No deadlines (a deadline is a timing assertion on a noisy machine); CI replays a fixed
# set of examples so a run cannot fail by luck, developers explore new ones.
settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_configure(config: pytest.Config) -> None:
    """Under DFS_TEST_TLS=1, trust the session CA before anything (a test, a `dfs` child) needs it."""
    if tls_mode.enabled():
        tls_mode.session_tls()


def pytest_report_header(config: pytest.Config) -> str:
    return f"dfs clusters: {'TLS (DFS_TEST_TLS=1)' if tls_mode.enabled() else 'plain HTTP'}"


def postgres_admin_url() -> str | None:
    url = os.environ.get("DFS_TEST_POSTGRES_URL")
    if not url and os.environ.get("DFS_REQUIRE_POSTGRES") == "1":
        raise RuntimeError("DFS_REQUIRE_POSTGRES=1 but DFS_TEST_POSTGRES_URL is not set")
    return url


class PostgresDatabase:
    """A throw-away database on the test PostgreSQL server."""

    def __init__(self, admin_url: str) -> None:
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.name = f"dfs_test_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = make_url(admin_url).set(database=self.name).render_as_string(hide_password=False)

    def drop(self) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


@contextlib.contextmanager
def backend_database(backend: str, sqlite_url: str | None) -> Iterator[str | None]:
    """`sqlite_url` for SQLite; for PostgreSQL a fresh database, dropped afterwards (skips without a server)."""
    if backend == "sqlite":
        yield sqlite_url
        return
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip("no PostgreSQL server (set DFS_TEST_POSTGRES_URL)")
    database = PostgresDatabase(admin)
    try:
        yield database.url
    finally:
        database.drop()


@pytest.fixture(scope="session", params=BACKENDS)
def db_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for the embedded SQLite default, else the URL of a fresh PostgreSQL database."""
    with backend_database(request.param, None) as url:
        yield url


@pytest.fixture(scope="session")
def cluster(db_url: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MiniCluster]:
    base = tmp_path_factory.mktemp("minicluster")
    mini = MiniCluster(base, datanodes=4, db_url=db_url)
    try:
        mini.start()
        yield mini
    finally:
        mini.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture()
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., MiniCluster]]:
    """Start small clusters of a test's own (SQLite), for work whose cost grows with the shared
    cluster's data (decommissioning, draining a dead node) or that needs special settings."""
    started: list[MiniCluster] = []
    with contextlib.ExitStack() as cleanup:

        def factory(backend: str = "sqlite", **kwargs: Any) -> MiniCluster:
            """`backend="postgresql"` gives the cluster a fresh database of its own."""
            url = cleanup.enter_context(backend_database(backend, None))
            mini = MiniCluster(tmp_path / f"cluster{len(started)}", db_url=url, **kwargs)
            started.append(mini)
            cleanup.callback(mini.stop)
            mini.start()
            return mini

        yield factory


@pytest.fixture()
def healthy_cluster(cluster: MiniCluster) -> Iterator[MiniCluster]:
    """The shared cluster, healed before and after a test that may break it."""
    cluster.heal()
    yield cluster
    cluster.heal()


@pytest.fixture()
def remote_dir(cluster: MiniCluster, request: pytest.FixtureRequest) -> str:
    """A fresh directory in the cluster's namespace for one test, writable by everyone: tests
    act as users of their own (`DFS_USER=alice`), and the directory is created by the superuser."""
    name = "".join(ch if ch.isalnum() else "_" for ch in request.node.name)[:80]
    path = f"/t/{name}_{uuid.uuid4().hex[:6]}"
    with cluster.client() as fs:
        fs.mkdirs(path)
        fs.set_permission(path, 0o777)
    return path


@pytest.fixture()
def local_tmp(tmp_path: Path) -> Path:
    return tmp_path
